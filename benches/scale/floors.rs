//! (a) The floors: what the same rows cost without acdsync. psql `\copy` of the window to /dev/null (the
//! server), the raw bulk ODBC fetch in a child process (the driver; the hidden `fetch-floor` command) and
//! psql `\copy` of those rows from CSV into an empty table (the write side).

use std::fs;
use std::process::Command;

use anyhow::{anyhow, bail, Context};

use crate::bench::Bench;
use crate::db::{
    odbc_connection_string, psql, psql_cmd, psql_i64, recreate_database, ts, SCRATCH_DB,
};
use crate::measure::Samples;
use crate::query::{literal_query, load_query, replace_placeholders, Bounds};
use crate::report::{thousands, Row};
use crate::FetchArgs;

/// The fetch buffer acdsync uses by default (batch_rows, max_text_bytes) and its time text buffers.
const BATCH_ROWS: usize = 10_000;
const TEXT_BYTES: usize = 255;
const TIME_TEXT_BYTES: usize = 48;

/// What the floors cost for the window: the ratios of the sync steps are over these.
pub struct Floors {
    /// Median seconds of the raw ODBC fetch.
    pub fetch: f64,
    /// Median seconds of `\copy ... from` CSV into an empty table.
    pub copy_in: f64,
    /// Rows in the window.
    pub window_rows: i64,
}

/// Fetches the query's rows as acdsync does (bound TIMESTAMP parameters sent as text, TextRowSet of 10,000
/// rows with buffers 255/255/48/48 bytes, truncation checked) and does nothing with them. Prints the row count.
pub fn fetch_floor(args: &FetchArgs) -> anyhow::Result<()> {
    use odbc_api::buffers::TextRowSet;
    use odbc_api::parameter::{VarCharBox, WithDataType};
    use odbc_api::{ConnectionOptions, Cursor, DataType};

    let bounds = Bounds::of(args.date);
    let mut params = Vec::new();
    let sql = replace_placeholders(&load_query(&args.sql_file)?, |name| {
        let t = bounds
            .get(name)
            .ok_or_else(|| anyhow!("unknown placeholder {{{name}}}"))?;
        params.push(WithDataType {
            value: VarCharBox::from_string(ts(t)),
            data_type: DataType::Timestamp { precision: 0 },
        });
        Ok("?".to_string())
    })?;
    let env = odbc_api::environment()?;
    let conn =
        env.connect_with_connection_string(&args.connection_string, ConnectionOptions::default())?;
    let mut cursor = conn
        .execute(&sql, &params[..], None)?
        .ok_or_else(|| anyhow!("the query returned no result set"))?;
    // The sessions query's 4 columns as acdsync binds them; another query's (the events shape's 6) as text.
    let columns = usize::try_from(odbc_api::ResultSetMetadata::num_result_cols(&mut cursor)?)?;
    let lens: Vec<usize> = match columns {
        4 => vec![TEXT_BYTES, TEXT_BYTES, TIME_TEXT_BYTES, TIME_TEXT_BYTES],
        n => vec![TEXT_BYTES; n],
    };
    let buffer = TextRowSet::from_max_str_lens(BATCH_ROWS, lens)?;
    let mut block = cursor.bind_buffer(buffer)?;
    let mut rows: u64 = 0;
    while let Some(batch) = block.fetch_with_truncation_check(true)? {
        rows += batch.num_rows() as u64;
    }
    println!("{rows}");
    Ok(())
}

impl Bench {
    /// Measures the floors of the synced day's window in `db` (`sessions` names its size in the table). With
    /// `all`, the three floors `--runs` times each; without (the memory section), one raw ODBC fetch only.
    pub fn floors(&mut self, db: &str, sessions: u64, all: bool) -> anyhow::Result<Floors> {
        let runs = self.args.runs as usize;
        let bounds = Bounds::of(self.args.date);
        let query = literal_query(&load_query(&self.sql_file("bench_sessions.sql"))?, &bounds)?;
        let n = thousands(sessions as i64);

        let copy_out = if all {
            self.copy_out_floor(db, &query, runs)?
        } else {
            Samples::default()
        };
        let (fetch, window_rows) = self.raw_fetch_floor(db, if all { runs } else { 1 })?;
        let mut row = Row::new(
            format!("floor: raw ODBC fetch (psqlODBC, TextRowSet 10k rows) N={n}"),
            "source",
        );
        row.secs = Some(fetch.median_secs());
        row.cpu = Some(fetch.median_cpu());
        row.rows_read = Some(window_rows);
        row.rss_mb = Some(fetch.rss_mb);
        if all {
            let mut r0 = Row::new("floor: psql \\copy (query) to /dev/null", "source");
            r0.secs = Some(copy_out.median_secs());
            r0.cpu = Some(copy_out.median_cpu());
            r0.rows_read = Some(window_rows);
            r0.rss_mb = Some(copy_out.rss_mb);
            self.rows.push(r0);
        }
        self.rows.push(row);
        if !all {
            return Ok(Floors {
                fetch: fetch.median_secs(),
                copy_in: f64::NAN,
                window_rows,
            });
        }

        let (copy_in, loaded) = self.copy_in_floor(db, &query, runs)?;
        let mut r = Row::new(
            "floor: psql \\copy CSV into an empty table, unique (started_at, agent_id)",
            "PostgreSQL",
        );
        r.secs = Some(copy_in.median_secs());
        r.cpu = Some(copy_in.median_cpu());
        r.written = thousands(loaded);
        r.rss_mb = Some(copy_in.rss_mb);
        self.rows.push(r);
        let mut r = Row::new(
            "floor: raw ODBC fetch + \\copy into an empty table",
            "PostgreSQL",
        );
        r.secs = Some(fetch.median_secs() + copy_in.median_secs());
        r.written = thousands(loaded);
        self.rows.push(r);
        Ok(Floors {
            fetch: fetch.median_secs(),
            copy_in: copy_in.median_secs(),
            window_rows,
        })
    }

    /// (a1) the server: psql \copy of the window to /dev/null, `runs` times.
    fn copy_out_floor(&mut self, db: &str, query: &str, runs: usize) -> anyhow::Result<Samples> {
        let mut copy_out = Samples::default();
        for _ in 0..runs {
            let label = self.label("floor-copy-out");
            let mut c = psql_cmd(db);
            c.args(["-c", &format!("\\copy ({query}) to '/dev/null'")]);
            let m = self.measure(&mut c, &label)?;
            if m.code != 0 {
                bail!("psql \\copy failed: {}", m.stderr_tail(3));
            }
            copy_out.add(&m);
        }
        self.say(&format!(
            "floor psql \\copy to /dev/null: median {:.3}s",
            copy_out.median_secs()
        ));
        Ok(copy_out)
    }

    /// (a2) the driver: raw bulk ODBC fetch in a child process, `runs` times. Returns the rows in the window
    /// too.
    fn raw_fetch_floor(&mut self, db: &str, runs: usize) -> anyhow::Result<(Samples, i64)> {
        let mut fetch = Samples::default();
        let mut window_rows: i64 = -1;
        for _ in 0..runs {
            let label = self.label("floor-odbc-fetch");
            let mut c = Command::new(&self.bench_exe);
            c.arg("fetch-floor")
                .arg("--connection-string")
                .arg(odbc_connection_string(db))
                .arg("--sql-file")
                .arg(self.sql_file("bench_sessions.sql"))
                .arg("--date")
                .arg(self.args.date.to_string());
            let m = self.measure(&mut c, &label)?;
            if m.code != 0 {
                bail!("raw ODBC fetch failed: {}", m.stderr_tail(5));
            }
            window_rows = m
                .stdout_text()
                .trim()
                .parse()
                .context("fetch-floor output")?;
            fetch.add(&m);
        }
        self.say(&format!(
            "floor raw ODBC fetch: {} rows, median {:.3}s",
            thousands(window_rows),
            fetch.median_secs()
        ));
        Ok((fetch, window_rows))
    }

    /// (a3) the write side: \copy the same rows from CSV into an empty table with unique (started_at,
    /// agent_id), `runs` times. Returns the rows loaded too.
    fn copy_in_floor(
        &mut self,
        db: &str,
        query: &str,
        runs: usize,
    ) -> anyhow::Result<(Samples, i64)> {
        let csv = self.work.join("window.csv");
        let mut c = psql_cmd(db);
        c.args([
            "-c",
            &format!("\\copy ({query}) to '{}' with (format csv)", csv.display()),
        ]);
        let label = self.label("floor-csv-export");
        let m = self.measure(&mut c, &label)?;
        if m.code != 0 {
            bail!("psql \\copy to CSV failed: {}", m.stderr_tail(3));
        }
        recreate_database(SCRATCH_DB, None)?;
        let mut copy_in = Samples::default();
        for _ in 0..runs {
            psql(
                SCRATCH_DB,
                "DROP TABLE IF EXISTS bench_copy_target;
                 CREATE TABLE bench_copy_target (agent_id text, activity_code text, started_at timestamp,
                     ended_at timestamp, UNIQUE (started_at, agent_id));
                 CHECKPOINT;",
            )?;
            let label = self.label("floor-copy-in");
            let mut c = psql_cmd(SCRATCH_DB);
            c.args([
                "-c",
                &format!(
                    "\\copy bench_copy_target from '{}' with (format csv)",
                    csv.display()
                ),
            ]);
            let m = self.measure(&mut c, &label)?;
            if m.code != 0 {
                bail!("psql \\copy from CSV failed: {}", m.stderr_tail(3));
            }
            copy_in.add(&m);
        }
        let loaded = psql_i64(SCRATCH_DB, "SELECT count(*) FROM bench_copy_target;")?;
        psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE);"),
        )?;
        let _ = fs::remove_file(&csv);
        self.say(&format!(
            "floor \\copy CSV into an empty table: median {:.3}s",
            copy_in.median_secs()
        ));
        Ok((copy_in, loaded))
    }
}

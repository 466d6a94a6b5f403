//! The source side: run a system's SQL file over ODBC and hand its rows on in bulk, batch by batch.
//!
//! One ODBC environment per process; rows are fetched into bound columnar text buffers (no per-row driver
//! call, no per-row allocation), in a thread of their own with two buffers: the driver fills one while the
//! sync works through the other. Times are fetched as text and parsed by `sessions`, because drivers turn
//! text they cannot parse into NULL without an error (SQLite ODBC), and we want the row and value named.
//!
//! `open` connects and runs the query; the caller then pulls batches with `Rows::next_batch`, so that a
//! source that cannot be reached or a query that fails never opens a WFM transaction.

mod fetch;
pub mod query;
mod read_only;

use anyhow::{anyhow, Context};
use odbc_api::buffers::TextRowSet;
use odbc_api::{BlockCursor, Connection, ConnectionOptions, Cursor, ResultSetMetadata};

use crate::error::Failure;
use crate::sessions::{RawRow, TooLong};
use crate::window::Window;
use query::{SourceQuery, Watermark, WindowParameters};

/// Bytes for a timestamp read as text: `YYYY-MM-DD HH:MM:SS.fffffffff+HH:MM` and some slack.
const TIME_TEXT_BYTES: usize = 48;

/// What a system's query returns (`shape` in the config): sessions, or agent events acdsync pairs into
/// sessions (`crate::events`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    #[default]
    Sessions,
    Events,
}

/// The columns of the events query, in order (see sql/sources/README.md).
pub const EVENT_COLUMNS: [&str; 6] = [
    "agent_id",
    "event_time",
    "event",
    "activity_code",
    "scope",
    "sequence",
];

/// What the source needs to know of a system to read it.
pub struct Spec<'a> {
    /// The system's name, for messages.
    pub system: &'a str,
    /// The ODBC connection string (may hold a password: only for connecting).
    pub connection_string: String,
    pub window_parameters: WindowParameters,
    pub batch_rows: usize,
    pub max_text_bytes: usize,
    pub query_timeout_seconds: Option<usize>,
    /// Whether the queries return a 5th column, the change key (incremental systems).
    pub change_key: bool,
    pub shape: Shape,
    /// Connecting again when the source cannot be reached.
    pub retry: crate::retry::Retry,
}

/// What to read.
pub enum Read<'a> {
    /// A window query, for the window.
    Window {
        query: &'a SourceQuery,
        window: &'a Window,
    },
    /// A changes query, for the rows changed after the watermark (its window placeholders, if it has
    /// any, are today's).
    Changes {
        query: &'a SourceQuery,
        window: &'a Window,
        watermark: Watermark,
    },
}

/// One fetched batch of rows: as the driver returned them, or sessions paired from events.
pub struct Batch<'a> {
    rows: BatchRows<'a>,
    change_key: bool,
    /// Some value of the batch is longer than its buffer (`too_long` then names the rows).
    any_too_long: bool,
    /// The 1-based number of its first row in the whole result.
    first_row: u64,
}

enum BatchRows<'a> {
    Fetched(&'a TextRowSet),
}

/// One event as the driver returned it: raw bytes, `None` for SQL NULL (columns of `EVENT_COLUMNS`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RawEvent<'a> {
    pub values: [Option<&'a [u8]>; 6],
    /// A value of the event longer than its fetch buffer (that value is then cut).
    pub too_long: Option<TooLong>,
}

impl<'a> Batch<'a> {
    pub fn len(&self) -> usize {
        match self.rows {
            BatchRows::Fetched(rows) => rows.num_rows(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of row `i` in the whole result (for paired sessions, of the event that opened it).
    pub fn row_no(&self, i: usize) -> u64 {
        match self.rows {
            BatchRows::Fetched(_) => self.first_row + i as u64,
        }
    }

    pub fn row(&self, i: usize) -> RawRow<'a> {
        match self.rows {
            BatchRows::Fetched(rows) => RawRow {
                agent_id: rows.at(0, i),
                activity_code: rows.at(1, i),
                started_at: rows.at(2, i),
                ended_at: rows.at(3, i),
                change_key: if self.change_key { rows.at(4, i) } else { None },
                too_long: self.too_long(i),
            },
        }
    }

    /// Row `i` of an events query.
    pub fn event(&self, i: usize) -> RawEvent<'a> {
        match self.rows {
            BatchRows::Fetched(rows) => RawEvent {
                values: std::array::from_fn(|k| rows.at(k, i)),
                too_long: self.too_long(i),
            },
        }
    }

    /// The first value of row `i` longer than its buffer (the driver kept only the start of it).
    fn too_long(&self, i: usize) -> Option<TooLong> {
        if !self.any_too_long {
            return None;
        }
        let BatchRows::Fetched(rows) = self.rows;
        (0..rows.num_cols()).find_map(|column| {
            let buffer = rows.max_len(column);
            let length = match rows.indicator_at(column, i) {
                odbc_api::buffers::Indicator::Length(n) if n > buffer => Some(n),
                odbc_api::buffers::Indicator::NoTotal => None,
                _ => return None,
            };
            Some(TooLong {
                column,
                length,
                buffer,
            })
        })
    }
}

/// The result of a source query, read batch by batch (`next_batch`).
pub struct Rows {
    fetcher: fetch::Fetcher,
    current: TextRowSet,
    change_key: bool,
    /// Rows handed on so far.
    read: u64,
    system: String,
    sql_file: String,
    /// Time spent waiting for the driver (debug log).
    waited: std::time::Duration,
}

/// Connects to the system's source and runs `what`. A system in incremental mode returns a 5th column, its
/// change key, from both of its queries.
pub fn open(spec: Spec<'_>, what: Read<'_>) -> anyhow::Result<Rows> {
    let (query, window, watermark) = match what {
        Read::Window { query, window } => (query, window, None),
        Read::Changes {
            query,
            window,
            watermark,
        } => (query, window, Some(watermark)),
    };
    let (sql, params) = query.render(spec.window_parameters, window, watermark);
    let expected: u16 = match (spec.shape, spec.change_key) {
        (Shape::Events, _) => 6,
        (Shape::Sessions, true) => 5,
        (Shape::Sessions, false) => 4,
    };
    let sql_file = query.path().display().to_string();
    let system = spec.system;
    sqlite_file_exists(system, &spec.connection_string)?;
    let env = odbc_api::environment().map_err(|e| {
        Failure::Unavailable(format!("cannot set up ODBC (is unixODBC installed?): {e}"))
    })?;
    let conn = crate::retry::connecting(
        &format!("the source of system {system:?}"),
        spec.retry,
        || {
            env.connect_with_connection_string(
                &spec.connection_string,
                ConnectionOptions::default(),
            )
        },
        crate::retry::odbc_unreachable,
    )
    .map_err(|e| {
        Failure::Unavailable(format!(
            "system {system:?}: cannot connect to its ODBC source: {e}"
        ))
    })?;
    read_only(&conn, system)?;
    crate::failpoint::hit("source_connected")?;
    tracing::debug!(system, sql_file = %sql_file, parameters = params.len(), "running source query");
    let failed = || format!("system {system:?}: the query in {sql_file} failed");
    let mut statement = conn.into_preallocated().with_context(failed)?;
    if let Some(seconds) = spec.query_timeout_seconds {
        statement
            .set_query_timeout_sec(seconds)
            .with_context(failed)?;
    }
    // SIGTERM and SIGINT cancel the query (and later the fetches): the run stops even while the server works.
    let cancel = fetch::cancel_on_signal(&mut statement);
    let mut cursor = statement
        .into_cursor(&sql, &params[..])
        .with_context(failed)?
        .ok_or_else(|| {
            Failure::Config(format!(
                "system {system:?}: the query in {sql_file} returned no result set"
            ))
        })?;
    let at = || format!("system {system:?}: reading the result of {sql_file}");
    let columns = cursor.num_result_cols().with_context(at)?;
    if columns != i16::try_from(expected).unwrap_or(i16::MAX) {
        let names = cursor
            .column_names()
            .map(|n| n.collect::<Result<Vec<_>, _>>().unwrap_or_default())
            .unwrap_or_default();
        let want = match (spec.shape, spec.change_key) {
            (Shape::Events, _) => "6: agent_id, event_time, event, activity_code, scope, sequence (shape = \"events\")",
            (Shape::Sessions, true) => "5: agent_id, activity_code, started_at, ended_at, change_key (the system has [system.incremental])",
            (Shape::Sessions, false) => "4: agent_id, activity_code, started_at, ended_at",
        };
        return Err(Failure::Config(format!(
            "system {system:?}: the query in {sql_file} returns {columns} column(s) ({}); it must return {want} (see sql/sources/README.md)",
            names.join(", ")
        ))
        .into());
    }
    let text = spec.max_text_bytes;
    let lens = match spec.shape {
        Shape::Sessions => [
            text,
            text,
            TIME_TEXT_BYTES,
            TIME_TEXT_BYTES,
            TIME_TEXT_BYTES,
            0,
        ],
        Shape::Events => [text, TIME_TEXT_BYTES, text, text, text, TIME_TEXT_BYTES],
    };
    let buffer = || {
        TextRowSet::from_max_str_lens(spec.batch_rows, lens[..usize::from(expected)].iter().copied())
            .with_context(|| {
                format!(
                    "system {system:?}: allocating the fetch buffer of batch_rows = {} rows of max_text_bytes = {text} (lower them)",
                    spec.batch_rows
                )
            })
    };
    let (first, current) = (buffer()?, buffer()?);
    let block: BlockCursor<_, _> = cursor.bind_buffer(first).with_context(at)?;
    Ok(Rows {
        // The driver fetches the next batch in its own thread while this one is merged.
        fetcher: fetch::Fetcher::new(block, cancel),
        current,
        change_key: spec.change_key,
        read: 0,
        system: system.to_owned(),
        sql_file,
        waited: std::time::Duration::ZERO,
    })
}

/// The SQLite ODBC driver creates the file `Database=` names when it does not exist, and the query then
/// fails with "no such table": a path that names no file (a typo, a relative path from another working
/// directory) is refused before connecting, naming the file. Other drivers are left alone.
fn sqlite_file_exists(system: &str, connection_string: &str) -> Result<(), Failure> {
    let value = |key: &str| {
        connection_string.split(';').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then(|| {
                v.trim()
                    .trim_start_matches('{')
                    .trim_end_matches('}')
                    .to_owned()
            })
        })
    };
    let sqlite = value("Driver").is_some_and(|d| d.to_ascii_lowercase().contains("sqlite"));
    let Some(database) = value("Database").filter(|d| sqlite && !d.is_empty() && d != ":memory:")
    else {
        return Ok(());
    };
    let path = std::path::Path::new(&database);
    if path.exists() {
        return Ok(());
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    Err(Failure::Config(format!(
        "system {system:?}: its SQLite source file {} does not exist (Database= of its connection string; a relative path is relative to the working directory {}); the SQLite ODBC driver would create it empty",
        cwd.join(path).display(),
        cwd.display()
    )))
}

/// Puts the connection in read-only mode where acdsync knows how (see `read_only.rs`).
fn read_only(conn: &Connection<'_>, system: &str) -> anyhow::Result<()> {
    let dbms = conn.database_management_system_name().unwrap_or_default();
    match read_only::session_statement(&dbms) {
        Some(sql) => {
            conn.execute(sql, (), None).with_context(|| {
                format!("system {system:?}: making the source connection ({dbms}) read-only")
            })?;
        }
        None => tracing::debug!(
            system,
            dbms,
            "no read-only session statement known for this engine: the SQL file check applies"
        ),
    }
    Ok(())
}

impl Rows {
    /// The next batch, or `None` at the end of the result.
    pub fn next_batch(&mut self) -> anyhow::Result<Option<Batch<'_>>> {
        // A safe point: SIGTERM or SIGINT stops the run here, before the next batch is waited for.
        crate::stop::check()?;
        let fetcher = &mut self.fetcher;
        let wait_started = std::time::Instant::now();
        let fetched = fetcher.fetch_into(&mut self.current).map_err(|e| {
            let at = (self.system.as_str(), self.sql_file.as_str(), self.read);
            fetch_error(at, e)
        })?;
        self.waited += wait_started.elapsed();
        let Some(any_too_long) = fetched else {
            tracing::debug!(
                system = %self.system,
                rows = self.read,
                waiting_for_driver_s = self.waited.as_secs_f64(),
                "source result read"
            );
            return Ok(None);
        };
        let batch = Batch {
            rows: BatchRows::Fetched(&self.current),
            change_key: self.change_key,
            any_too_long,
            first_row: self.read + 1,
        };
        self.read += batch.len() as u64;
        crate::failpoint::hit("batch_fetched")?;
        Ok(Some(batch))
    }

    /// Rows handed on so far.
    pub fn read(&self) -> u64 {
        self.read
    }
}

/// A fetch that failed, named: `at` is the system, the SQL file and the rows read before.
fn fetch_error((system, sql_file, read): (&str, &str, u64), e: odbc_api::Error) -> anyhow::Error {
    anyhow!("system {system:?}: fetching rows of {sql_file} after row {read} failed: {e}")
}

//! The scale benchmark of acdsync: `bash scripts/bench.sh` (see BENCHMARKS.md).
//!
//! It builds a PostgreSQL source database with a generated day of agent states, measures the floors (what
//! the server, the ODBC driver and a bulk `COPY` cost for the same rows), then times the release binary of
//! acdsync (`target/release/acdsync`, a separate process) on a fresh WFM store: the first sync of the day, a
//! re-run with nothing changed, a re-run after 1 % / 0.5 % / 0.1 % of the sessions were changed / added /
//! removed, the incremental mode at the start and at the end of the day, and (with `--memory`) the peak
//! resident memory at 1.5M and 6M sessions. Every measured step is a child process: its time is the wall
//! time from spawn to exit and its memory is the child's own `ru_maxrss` from `wait4`.
//!
//! A Cargo bench target with `harness = false` and `test = false`. `cargo test --all-targets` still builds
//! and runs it (without `--bench`): `main` then prints one line and does nothing.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use clap::{Args, Parser, Subcommand, ValueEnum};

const PG_HOST: &str = "127.0.0.1";
const PG_PORT: &str = "5432";
const PG_USER: &str = "postgres";
/// The generated source (dropped and created by each run).
const SRC_DB: &str = "acdsync_bench_src";
/// A copy of the freshly generated source for the incremental section.
const INC_DB: &str = "acdsync_bench_inc";
/// The PostgreSQL WFM store.
const WFM_DB: &str = "acdsync_bench_wfm";
/// Where the `\copy ... from` floor loads its CSV.
const SCRATCH_DB: &str = "acdsync_bench_scratch";
const TIME_ZONE: &str = "Europe/Paris";
/// The fetch buffer acdsync uses by default (batch_rows, max_text_bytes) and its time text buffers.
const BATCH_ROWS: usize = 10_000;
const TEXT_BYTES: usize = 255;
const TIME_TEXT_BYTES: usize = 48;
/// Targets of the issue, on the PostgreSQL store.
const TARGET_FIRST_SYNC: f64 = 1.5;
const TARGET_UNCHANGED: f64 = 1.2;
const TARGET_INCREMENTAL: f64 = 2.0;
/// Memory: peak RSS at the largest size over the smallest (the bench's reading of "bounded by the batch
/// size": it does not grow with the number of sessions).
const TARGET_MEMORY_GROWTH: f64 = 1.25;

#[derive(Parser)]
#[command(
    name = "scale",
    about = "acdsync scale benchmark (run it with scripts/bench.sh; see BENCHMARKS.md)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true, global = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Sub {
    /// The raw ODBC fetch floor (run by the benchmark in a child process to measure its RSS).
    #[command(hide = true)]
    FetchFloor(FetchArgs),
}

#[derive(Args, Clone)]
struct FetchArgs {
    #[arg(long)]
    connection_string: String,
    #[arg(long)]
    sql_file: PathBuf,
    #[arg(long)]
    date: NaiveDate,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreChoice {
    Postgres,
    Sqlite,
    Both,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Sessions (agent states) of the synced day.
    #[arg(long, default_value_t = 1_500_000)]
    sessions: u64,
    /// Agents working that day.
    #[arg(long, default_value_t = 50_000)]
    agents: u64,
    /// Activity codes (C01, C02, ...), Zipf-like frequencies.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=99))]
    codes: u64,
    /// WFM store(s) to measure.
    #[arg(long, value_enum, default_value_t = StoreChoice::Both)]
    store: StoreChoice,
    /// The local day synced (Europe/Paris).
    #[arg(long, default_value = "2026-01-15")]
    date: NaiveDate,
    /// Days of history in the source, ending with --date (each with --sessions states); the sync reads one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=31))]
    days: u64,
    /// Repetitions of the cheap steps (floors, unchanged re-run, incremental runs); the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    runs: u64,
    /// Also measure peak RSS of the first sync and the unchanged re-run at each of --memory-sizes.
    #[arg(long)]
    memory: bool,
    /// Sizes (sessions) for --memory; agents are sessions / 30 (50,000 for 1.5M, 200,000 for 6M).
    #[arg(long, value_delimiter = ',', default_value = "1500000,6000000")]
    memory_sizes: Vec<u64>,
    /// Agents for every size of --memory (default: sessions / 30). A fixed number shows what the day's
    /// size alone costs: the system's agent IDs are held in memory, its sessions are not.
    #[arg(long)]
    memory_agents: Option<u64>,
    /// Skip the incremental-mode section.
    #[arg(long)]
    no_incremental: bool,
    /// The markdown table is written here too.
    #[arg(long, default_value = "target/bench/results.md")]
    out: PathBuf,
    /// The acdsync binary (default: `acdsync` in the target directory the bench was built in).
    #[arg(long)]
    acdsync: Option<PathBuf>,
    /// Scratch files: configs, SQLite store, CSV, logs of every measured process.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    // `test = false` does not keep this target out of `cargo test --all-targets` (it selects every target
    // with `bench = true`), which runs it without `--bench`, maybe with test-name filters. Run only when
    // `cargo bench` (`--bench`) or scripts/bench.sh (ACDSYNC_BENCH_COMMAND) asked, or as our own child.
    let asked = args.iter().any(|a| a == "--bench")
        || std::env::var_os("ACDSYNC_BENCH_COMMAND").is_some()
        || args.get(1).is_some_and(|a| a == "fetch-floor");
    if !asked {
        println!(
            "scale bench: not run (no --bench); run it with `bash scripts/bench.sh` (see BENCHMARKS.md)"
        );
        return;
    }
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Some(Sub::FetchFloor(f)) => fetch_floor(&f),
        None => Bench::new(cli.run).and_then(|mut b| b.run()),
    };
    if let Err(e) = result {
        eprintln!("scale bench: error: {e:#}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------------------------------------------
// Child processes: wall time and peak RSS through wait4
// ------------------------------------------------------------------------------------------------------

struct Measured {
    secs: f64,
    /// ru_maxrss of the child, in KiB (Linux).
    rss_kib: i64,
    /// User + system CPU seconds of the child.
    cpu_secs: f64,
    /// Exit code, or 128 + signal.
    code: i32,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Measured {
    fn rss_mb(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
    fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }
    /// The last non-empty lines of stderr, for messages.
    fn stderr_tail(&self, lines: usize) -> String {
        let text = strip_ansi(&fs::read_to_string(&self.stderr).unwrap_or_default());
        let v: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }
}

fn tv_secs(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// Runs `cmd` to its end with stdout and stderr in files under `log_dir`, and measures it.
fn measure(cmd: &mut Command, log_dir: &Path, label: &str) -> anyhow::Result<Measured> {
    let stdout = log_dir.join(format!("{label}.out"));
    let stderr = log_dir.join(format!("{label}.err"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&stdout)?)
        .stderr(File::create(&stderr)?);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child, which std has not reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pointers to live locals; pid is a child of this process.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok(Measured {
        secs,
        rss_kib: usage.ru_maxrss,
        cpu_secs: tv_secs(usage.ru_utime) + tv_secs(usage.ru_stime),
        code,
        stdout,
        stderr,
    })
}

/// acdsync's text logs keep their colours when written to a file.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The 1-minute load average.
fn load_average() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

// ------------------------------------------------------------------------------------------------------
// PostgreSQL through psql (unmeasured helper calls)
// ------------------------------------------------------------------------------------------------------

fn psql_cmd(db: &str) -> Command {
    let mut c = Command::new("psql");
    c.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        PG_HOST,
        "-p",
        PG_PORT,
        "-U",
        PG_USER,
        "-d",
        db,
    ])
    .env("PGCONNECT_TIMEOUT", "10")
    .env_remove("PGPASSWORD")
    .env_remove("PGOPTIONS");
    c
}

/// Runs SQL (one or more statements) in `db` and returns what it printed (unaligned, tuples only).
fn psql(db: &str, sql: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let mut c = psql_cmd(db);
    c.args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().context("cannot run psql (postgresql-client)")?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(sql.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let first = sql.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        bail!(
            "psql -d {db} failed ({}): {}\nSQL starting with: {first}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn psql_i64(db: &str, sql: &str) -> anyhow::Result<i64> {
    let out = psql(db, sql)?;
    let last = out.lines().last().unwrap_or("").trim();
    last.parse()
        .with_context(|| format!("expected a number from psql, got {out:?}"))
}

fn recreate_database(db: &str, template: Option<&str>) -> anyhow::Result<()> {
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE);"),
    )?;
    match template {
        Some(t) => psql(
            "postgres",
            &format!("CREATE DATABASE {db} TEMPLATE {t} ENCODING 'UTF8';"),
        )?,
        None => psql(
            "postgres",
            &format!("CREATE DATABASE {db} ENCODING 'UTF8';"),
        )?,
    };
    Ok(())
}

fn odbc_connection_string(db: &str) -> String {
    format!(
        "Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port={PG_PORT};Uid={PG_USER};Database={db};UseDeclareFetch=1;Fetch=10000;"
    )
}

fn ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

// ------------------------------------------------------------------------------------------------------
// The data generator
// ------------------------------------------------------------------------------------------------------

/// Creates `db` with the source table and fills it with `days` days of agent states ending on `day`, plus
/// the night shifts of the evening before the first day (they cross into it).
///
/// Every agent works one shift a day: 92 % start between 06:00 and 14:00, 8 % are night agents who start
/// between 20:00 and 23:00 and work across midnight. A shift is tiled by consecutive states (the end of one
/// is the start of the next) of 2 minutes to an hour, about sessions/agents of them; the day has exactly
/// `sessions` states. Codes C01..Cnn follow a Zipf-like law (C01 the most frequent), 3 % of the states have
/// no code, and the last state of 1 % of the agents on `day` is still open (ended_at NULL). Rows are
/// inserted in started_at order, as an ACD appends them; change_id comes from a sequence, on insert by the
/// column default and on update by a trigger. All values come from a seeded random(): the same arguments
/// give the same rows.
fn generate_source(
    db: &str,
    sessions: u64,
    agents: u64,
    codes: u64,
    day: NaiveDate,
    days: u64,
) -> anyhow::Result<()> {
    if agents == 0 || sessions < agents {
        bail!(
            "need at least one agent and at least one session per agent (--sessions >= --agents)"
        );
    }
    recreate_database(db, None)?;
    psql(
        db,
        "CREATE SEQUENCE acd_change_seq;
         CREATE TABLE acd_agent_states (
             id bigserial PRIMARY KEY,
             agent_id text NOT NULL,
             activity_code text,
             started_at timestamp NOT NULL,
             ended_at timestamp,
             change_id bigint NOT NULL DEFAULT nextval('acd_change_seq'));
         CREATE FUNCTION acd_touch_change_id() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN NEW.change_id := nextval('acd_change_seq'); RETURN NEW; END $$;
         CREATE TRIGGER acd_agent_states_change_id BEFORE UPDATE ON acd_agent_states
             FOR EACH ROW EXECUTE FUNCTION acd_touch_change_id();",
    )?;
    let per_agent = sessions as f64 / agents as f64;
    // Mean state length so that a shift lasts about 8 hours: 2 minutes plus an exponential part, capped
    // at an hour.
    let extra_secs = ((8.0 * 3600.0 / per_agent) - 120.0).max(30.0);
    let first_shift_day = day - Duration::days(days as i64);
    let sql = format!(
        "SET work_mem = '256MB';
         SET jit = off;
         SELECT setseed(0.42);
         CREATE TEMP TABLE bench_agents AS
         SELECT a,
                'A' || lpad(a::text, 6, '0') AS agent_id,
                random() < 0.08 AS night,
                random() < 0.01 AS left_open,
                (floor({sessions}::numeric * a / {agents}) - floor({sessions}::numeric * (a - 1) / {agents}))::int AS k
         FROM generate_series(1, {agents}) AS a;
         INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at)
         SELECT agent_id, code, started_at, CASE WHEN open_end THEN NULL ELSE ended_at END
         FROM (
           SELECT st.a, st.agent_id, st.code, st.open_end,
                  st.shift_start + make_interval(secs => sum(st.dur) OVER w - st.dur) AS started_at,
                  st.shift_start + make_interval(secs => sum(st.dur) OVER w) AS ended_at
           FROM (
             SELECT sh.a, sh.agent_id, sh.shift_start, sh.day, i,
                    least(3600, 120 + floor(-ln(1 - random()) * {extra_secs}))::int AS dur,
                    CASE WHEN random() < 0.03 THEN NULL
                         ELSE 'C' || lpad(least({codes}, floor(exp(random() * ln({codes} + 1))))::int::text, 2, '0')
                    END AS code,
                    (i = sh.k AND sh.day = DATE '{day}' AND sh.left_open) AS open_end
             FROM (
               SELECT ag.a, ag.agent_id, ag.k, ag.left_open, d::date AS day,
                      date_trunc('second', d + CASE WHEN ag.night
                                                    THEN interval '20 hours' + random() * interval '3 hours'
                                                    ELSE interval '6 hours' + random() * interval '8 hours' END) AS shift_start
               FROM bench_agents ag
               CROSS JOIN generate_series(DATE '{first_shift_day}', DATE '{day}', interval '1 day') AS d
               WHERE d::date > DATE '{first_shift_day}' OR ag.night
             ) sh
             CROSS JOIN LATERAL generate_series(1, sh.k) AS i
           ) st
           WINDOW w AS (PARTITION BY st.a, st.day ORDER BY st.i)
         ) x
         ORDER BY started_at, a;
         CREATE INDEX ON acd_agent_states (started_at);
         CREATE INDEX ON acd_agent_states (change_id);"
    );
    psql(db, &sql)?;
    // Hint bits and statistics now, so that no measured read pays for them.
    psql(db, "VACUUM (FREEZE, ANALYZE) acd_agent_states;")?;
    Ok(())
}

// ------------------------------------------------------------------------------------------------------
// The extraction query
// ------------------------------------------------------------------------------------------------------

/// The local bounds acdsync uses for one day (max_session_hours = 24). 2026-01-15 has no DST change.
struct Bounds {
    lookback_start: NaiveDateTime,
    window_start: NaiveDateTime,
    window_end: NaiveDateTime,
}

impl Bounds {
    fn of(day: NaiveDate) -> Bounds {
        let start = day.and_hms_opt(0, 0, 0).expect("midnight");
        Bounds {
            lookback_start: start - Duration::hours(24),
            window_start: start,
            window_end: start + Duration::days(1),
        }
    }
    fn get(&self, name: &str) -> Option<NaiveDateTime> {
        match name {
            "lookback_start" => Some(self.lookback_start),
            "window_start" => Some(self.window_start),
            "window_end" => Some(self.window_end),
            _ => None,
        }
    }
}

/// The SQL file's statement without `--` comments (the bench's own files have no `--` inside literals).
fn load_query(path: &Path) -> anyhow::Result<String> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let sql: Vec<&str> = text
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .filter(|l| !l.trim().is_empty())
        .collect();
    Ok(sql.join("\n").trim().trim_end_matches(';').to_string())
}

/// Replaces each `{placeholder}` through `f`, in order of appearance.
fn replace_placeholders(
    sql: &str,
    mut f: impl FnMut(&str) -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| anyhow!("unclosed {{ in query"))?;
        out.push_str(&rest[..open]);
        out.push_str(&f(&rest[open + 1..close])?);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The query on one line with the window bounds as literals (for psql `\copy`).
fn literal_query(sql: &str, b: &Bounds) -> anyhow::Result<String> {
    let q = replace_placeholders(sql, |name| {
        b.get(name)
            .map(|t| format!("'{}'", ts(t)))
            .ok_or_else(|| anyhow!("unknown placeholder {{{name}}}"))
    })?;
    Ok(q.split_whitespace().collect::<Vec<_>>().join(" "))
}

// ------------------------------------------------------------------------------------------------------
// The raw ODBC fetch floor (child process)
// ------------------------------------------------------------------------------------------------------

/// Fetches the query's rows as acdsync does (bound TIMESTAMP parameters sent as text, TextRowSet of 10,000
/// rows with buffers 255/255/48/48 bytes, truncation checked) and does nothing with them. Prints the row count.
fn fetch_floor(args: &FetchArgs) -> anyhow::Result<()> {
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
    let cursor = conn
        .execute(&sql, &params[..], None)?
        .ok_or_else(|| anyhow!("the query returned no result set"))?;
    let buffer = TextRowSet::from_max_str_lens(
        BATCH_ROWS,
        [TEXT_BYTES, TEXT_BYTES, TIME_TEXT_BYTES, TIME_TEXT_BYTES],
    )?;
    let mut block = cursor.bind_buffer(buffer)?;
    let mut rows: u64 = 0;
    while let Some(batch) = block.fetch_with_truncation_check(true)? {
        rows += batch.num_rows() as u64;
    }
    println!("{rows}");
    Ok(())
}

// ------------------------------------------------------------------------------------------------------
// WFM stores
// ------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    Postgres,
    Sqlite,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Postgres => "PostgreSQL",
            Store::Sqlite => "SQLite",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Store::Postgres => "pg",
            Store::Sqlite => "sqlite",
        }
    }
}

/// The counts of one `import_runs` row.
#[derive(Debug, Default, Clone)]
struct ImportRun {
    status: String,
    rows_read: i64,
    inserted: i64,
    updated: i64,
    deleted: i64,
    unchanged: i64,
    rejected: i64,
}

impl ImportRun {
    fn written(&self) -> i64 {
        self.inserted + self.updated + self.deleted
    }
    fn describe(&self) -> String {
        let rejected = if self.rejected > 0 {
            format!(", {} rejected", thousands(self.rejected))
        } else {
            String::new()
        };
        format!(
            "{} (ins {}, upd {}, del {}{rejected})",
            thousands(self.written()),
            thousands(self.inserted),
            thousands(self.updated),
            thousands(self.deleted)
        )
    }
}

const LAST_RUN_SQL: &str =
    "SELECT status, rows_read, sessions_inserted, sessions_updated, sessions_deleted, \
     sessions_unchanged, rows_rejected FROM import_runs ORDER BY id DESC LIMIT 1;";

fn parse_run(line: &str) -> anyhow::Result<ImportRun> {
    let f: Vec<&str> = line.trim().split('|').collect();
    if f.len() != 7 {
        bail!("unexpected import_runs row {line:?}");
    }
    let n = |i: usize| -> anyhow::Result<i64> { Ok(f[i].trim().parse()?) };
    Ok(ImportRun {
        status: f[0].to_string(),
        rows_read: n(1)?,
        inserted: n(2)?,
        updated: n(3)?,
        deleted: n(4)?,
        unchanged: n(5)?,
        rejected: n(6)?,
    })
}

// ------------------------------------------------------------------------------------------------------
// The table
// ------------------------------------------------------------------------------------------------------

struct Row {
    measurement: String,
    store: String,
    secs: Option<f64>,
    /// User + system CPU seconds of the measured process.
    cpu: Option<f64>,
    rows_read: Option<i64>,
    written: String,
    rss_mb: Option<f64>,
    ratio: Option<f64>,
    target: String,
    verdict: String,
}

impl Row {
    fn new(measurement: impl Into<String>, store: &str) -> Row {
        Row {
            measurement: measurement.into(),
            store: store.into(),
            secs: None,
            cpu: None,
            rows_read: None,
            written: "—".into(),
            rss_mb: None,
            ratio: None,
            target: "—".into(),
            verdict: "—".into(),
        }
    }
}

fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn verdict(pass: bool) -> String {
    if pass { "PASS" } else { "FAIL" }.to_string()
}

// ------------------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------------------

struct Floors {
    /// Median seconds of the raw ODBC fetch.
    fetch: f64,
    /// Median seconds of `\copy ... from` CSV into an empty table.
    copy_in: f64,
    /// Rows in the window.
    window_rows: i64,
}

struct Bench {
    args: RunArgs,
    repo: PathBuf,
    work: PathBuf,
    logs: PathBuf,
    acdsync: PathBuf,
    bench_exe: PathBuf,
    started: Instant,
    rows: Vec<Row>,
    notes: Vec<String>,
    step: u32,
    /// 1-minute load average when the bench started (later ones include the bench's own work).
    load_start: f64,
}

impl Bench {
    fn new(args: RunArgs) -> anyhow::Result<Bench> {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                repo.join(p)
            }
        };
        let work = abs(&args.work_dir);
        let logs = work.join("logs");
        let bench_exe = std::env::current_exe()?;
        let acdsync = match &args.acdsync {
            Some(p) => abs(p),
            // target/release/deps/scale-HASH -> target/release/acdsync
            None => bench_exe
                .parent()
                .and_then(Path::parent)
                .map(|d| d.join("acdsync"))
                .filter(|p| p.exists())
                .unwrap_or_else(|| repo.join("target/release/acdsync")),
        };
        if !acdsync.exists() {
            bail!(
                "acdsync binary not found at {} (cargo build --release, or --acdsync PATH)",
                acdsync.display()
            );
        }
        if work.to_string_lossy().contains('\'') {
            bail!("--work-dir must not contain a quote");
        }
        if let Some(dir) = abs(&args.out).parent() {
            fs::create_dir_all(dir)?;
        }
        if logs.exists() {
            fs::remove_dir_all(&logs)?;
        }
        fs::create_dir_all(&logs)?;
        Ok(Bench {
            args,
            repo,
            work,
            logs,
            acdsync,
            bench_exe,
            started: Instant::now(),
            rows: Vec::new(),
            notes: Vec::new(),
            step: 0,
            load_start: load_average(),
        })
    }

    fn say(&self, msg: &str) {
        eprintln!("[{:7.1}s] {msg}", self.started.elapsed().as_secs_f64());
    }

    fn measure(&mut self, cmd: &mut Command, label: &str) -> anyhow::Result<Measured> {
        measure(cmd, &self.logs, label)
    }

    fn label(&mut self, name: &str) -> String {
        self.step += 1;
        format!("{:03}-{name}", self.step)
    }

    fn stores(&self) -> Vec<Store> {
        match self.args.store {
            StoreChoice::Postgres => vec![Store::Postgres],
            StoreChoice::Sqlite => vec![Store::Sqlite],
            StoreChoice::Both => vec![Store::Postgres, Store::Sqlite],
        }
    }

    fn sql_file(&self, name: &str) -> PathBuf {
        self.repo.join("benches/sql").join(name)
    }

    fn run(&mut self) -> anyhow::Result<()> {
        let a = self.args.clone();
        self.say(&format!(
            "acdsync scale bench: {} sessions, {} agents, {} codes, day {} ({} day(s) in the source), acdsync = {}",
            thousands(a.sessions as i64),
            thousands(a.agents as i64),
            a.codes,
            a.date,
            a.days,
            self.acdsync.display()
        ));
        self.say(&format!("generating the source database {SRC_DB}"));
        let t = Instant::now();
        generate_source(SRC_DB, a.sessions, a.agents, a.codes, a.date, a.days)?;
        let total = psql_i64(SRC_DB, "SELECT count(*) FROM acd_agent_states;")?;
        self.say(&format!(
            "generated {} rows in {:.1}s",
            thousands(total),
            t.elapsed().as_secs_f64()
        ));
        self.notes.push(format!(
            "Source: {} rows in `acd_agent_states` ({} day(s) of shifts ending {} plus the night shifts of the evening before), generated in {:.1} s.",
            thousands(total),
            a.days,
            a.date,
            t.elapsed().as_secs_f64()
        ));
        if !a.no_incremental {
            recreate_database(INC_DB, Some(SRC_DB))?;
        }

        let floors = self.floors(SRC_DB, a.sessions, true)?;

        let stores = self.stores();
        for &store in &stores {
            self.first_and_unchanged(store, &floors)?;
        }
        let changes = self.apply_changes(a.sessions, a.agents, a.date)?;
        for &store in &stores {
            self.changed_rerun(store, &floors, &changes)?;
        }
        if !a.no_incremental {
            let total = self.prepare_incremental()?;
            for &store in &stores {
                self.incremental(store, total)?;
            }
        }
        if a.memory {
            self.memory()?;
        }
        self.report()
    }

    // --- floors ---------------------------------------------------------------------------------------

    fn floors(&mut self, db: &str, sessions: u64, all: bool) -> anyhow::Result<Floors> {
        let runs = self.args.runs as usize;
        let bounds = Bounds::of(self.args.date);
        let query = literal_query(&load_query(&self.sql_file("bench_sessions.sql"))?, &bounds)?;
        let n = thousands(sessions as i64);

        // (a1) the server: psql \copy of the window to /dev/null.
        let mut copy_out = Vec::new();
        let mut copy_out_cpu = Vec::new();
        let mut copy_out_rss: f64 = 0.0;
        if all {
            for _ in 0..runs {
                let label = self.label("floor-copy-out");
                let mut c = psql_cmd(db);
                c.args(["-c", &format!("\\copy ({query}) to '/dev/null'")]);
                let m = self.measure(&mut c, &label)?;
                if m.code != 0 {
                    bail!("psql \\copy failed: {}", m.stderr_tail(3));
                }
                copy_out.push(m.secs);
                copy_out_cpu.push(m.cpu_secs);
                copy_out_rss = copy_out_rss.max(m.rss_mb());
            }
            self.say(&format!(
                "floor psql \\copy to /dev/null: median {:.3}s",
                median(&copy_out)
            ));
        }

        // (a2) the driver: raw bulk ODBC fetch in a child process.
        let mut fetch = Vec::new();
        let mut fetch_cpu = Vec::new();
        let mut fetch_rss: f64 = 0.0;
        let mut window_rows: i64 = -1;
        for _ in 0..if all { runs } else { 1 } {
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
            fetch.push(m.secs);
            fetch_cpu.push(m.cpu_secs);
            fetch_rss = fetch_rss.max(m.rss_mb());
        }
        self.say(&format!(
            "floor raw ODBC fetch: {} rows, median {:.3}s",
            thousands(window_rows),
            median(&fetch)
        ));
        let mut row = Row::new(
            format!("floor: raw ODBC fetch (psqlODBC, TextRowSet 10k rows) N={n}"),
            "source",
        );
        row.secs = Some(median(&fetch));
        row.cpu = Some(median(&fetch_cpu));
        row.rows_read = Some(window_rows);
        row.rss_mb = Some(fetch_rss);
        if all {
            let mut r0 = Row::new("floor: psql \\copy (query) to /dev/null", "source");
            r0.secs = Some(median(&copy_out));
            r0.cpu = Some(median(&copy_out_cpu));
            r0.rows_read = Some(window_rows);
            r0.rss_mb = Some(copy_out_rss);
            self.rows.push(r0);
        }
        self.rows.push(row);
        if !all {
            return Ok(Floors {
                fetch: median(&fetch),
                copy_in: f64::NAN,
                window_rows,
            });
        }

        // (a3) the write side: \copy the same rows from CSV into an empty table with unique (started_at, agent_id).
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
        let mut copy_in = Vec::new();
        let mut copy_in_cpu = Vec::new();
        let mut copy_in_rss: f64 = 0.0;
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
            copy_in.push(m.secs);
            copy_in_cpu.push(m.cpu_secs);
            copy_in_rss = copy_in_rss.max(m.rss_mb());
        }
        let loaded = psql_i64(SCRATCH_DB, "SELECT count(*) FROM bench_copy_target;")?;
        psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE);"),
        )?;
        let _ = fs::remove_file(&csv);
        self.say(&format!(
            "floor \\copy CSV into an empty table: median {:.3}s",
            median(&copy_in)
        ));
        let mut r = Row::new(
            "floor: psql \\copy CSV into an empty table, unique (started_at, agent_id)",
            "PostgreSQL",
        );
        r.secs = Some(median(&copy_in));
        r.cpu = Some(median(&copy_in_cpu));
        r.written = thousands(loaded);
        r.rss_mb = Some(copy_in_rss);
        self.rows.push(r);
        let mut r = Row::new(
            "floor: raw ODBC fetch + \\copy into an empty table",
            "PostgreSQL",
        );
        r.secs = Some(median(&fetch) + median(&copy_in));
        r.written = thousands(loaded);
        self.rows.push(r);
        Ok(Floors {
            fetch: median(&fetch),
            copy_in: median(&copy_in),
            window_rows,
        })
    }

    // --- stores and acdsync ---------------------------------------------------------------------------

    fn store_dir(&self) -> PathBuf {
        self.work.join("store")
    }

    fn sqlite_file(&self) -> PathBuf {
        self.store_dir().join("wfm.db")
    }

    fn database_url(&self, store: Store) -> String {
        match store {
            Store::Postgres => format!("postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{WFM_DB}"),
            Store::Sqlite => format!("sqlite://{}", self.sqlite_file().display()),
        }
    }

    /// Drops and creates the store (empty, not migrated).
    fn fresh_store(&self, store: Store) -> anyhow::Result<()> {
        match store {
            Store::Postgres => recreate_database(WFM_DB, None),
            Store::Sqlite => {
                let dir = self.store_dir();
                if dir.exists() {
                    fs::remove_dir_all(&dir)?;
                }
                fs::create_dir_all(&dir)?;
                Ok(())
            }
        }
    }

    fn last_run(&self, store: Store) -> anyhow::Result<ImportRun> {
        let out = match store {
            Store::Postgres => psql(WFM_DB, LAST_RUN_SQL)?,
            Store::Sqlite => {
                let o = Command::new("sqlite3")
                    .arg("-readonly")
                    .arg(self.sqlite_file())
                    .arg(LAST_RUN_SQL)
                    .output()
                    .context("cannot run sqlite3")?;
                if !o.status.success() {
                    bail!("sqlite3: {}", String::from_utf8_lossy(&o.stderr));
                }
                String::from_utf8_lossy(&o.stdout).trim().to_string()
            }
        };
        parse_run(&out)
    }

    /// Writes a config file for `store` and returns its path.
    fn write_config(
        &self,
        store: Store,
        src_db: &str,
        incremental: bool,
    ) -> anyhow::Result<PathBuf> {
        let q = |p: PathBuf| format!("{:?}", p.display().to_string());
        let mut cfg = format!(
            "# Written by benches/scale.rs\n[wfm]\ndatabase_url = {:?}\n\n[[system]]\nname = \"bench\"\ntime_zone = \"{TIME_ZONE}\"\nsql_file = {}\nconnection_string = {:?}\nwindow_parameters = \"bound\"\n",
            self.database_url(store),
            q(self.sql_file(if incremental {
                "bench_sessions_incremental.sql"
            } else {
                "bench_sessions.sql"
            })),
            odbc_connection_string(src_db),
        );
        if incremental {
            write!(
                cfg,
                "\n[system.incremental]\nsql_file = {}\nwatermark = \"integer\"\nfull_sync_every = \"1h\"\n",
                q(self.sql_file("bench_changes.sql"))
            )?;
        }
        let path = self.work.join(format!(
            "bench-{}{}.toml",
            store.short(),
            if incremental { "-incremental" } else { "" }
        ));
        fs::write(&path, cfg)?;
        Ok(path)
    }

    fn acdsync_cmd(&self, config: &Path) -> Command {
        let mut c = Command::new(&self.acdsync);
        c.arg("--config").arg(config);
        // The bench's config decides: never a WFM URL or config from the caller's environment.
        for v in [
            "ACDSYNC_DATABASE_URL",
            "ACDSYNC_CONFIG",
            "ACDSYNC_LOG_FORMAT",
            "RUST_LOG",
        ] {
            c.env_remove(v);
        }
        c
    }

    fn migrate(&mut self, store: Store, config: &Path) -> anyhow::Result<Measured> {
        let label = self.label(&format!("{}-migrate", store.short()));
        let mut c = self.acdsync_cmd(config);
        c.arg("migrate");
        self.measure(&mut c, &label)
    }

    /// `acdsync sync --date D`, measured; the run's counts from import_runs.
    fn sync(
        &mut self,
        store: Store,
        config: &Path,
        name: &str,
    ) -> anyhow::Result<(Measured, Option<ImportRun>)> {
        self.sync_with(store, config, name, true)
    }

    /// `acdsync sync` (with `--date D` when `dated`): an incremental system with a watermark and a recent
    /// full sync reads only its changes when no day is named.
    fn sync_with(
        &mut self,
        store: Store,
        config: &Path,
        name: &str,
        dated: bool,
    ) -> anyhow::Result<(Measured, Option<ImportRun>)> {
        let label = self.label(&format!("{}-{name}", store.short()));
        let mut c = self.acdsync_cmd(config);
        c.arg("sync");
        if dated {
            c.args(["--date", &self.args.date.to_string()]);
        }
        let m = self.measure(&mut c, &label)?;
        let run = self.last_run(store).ok();
        self.say(&format!(
            "{} {name}: exit {}, {:.3}s, {:.1} MB, {}",
            store.name(),
            m.code,
            m.secs,
            m.rss_mb(),
            run.as_ref()
                .map(|r| format!(
                    "{} read, {} written, {} unchanged",
                    r.rows_read,
                    r.describe(),
                    r.unchanged
                ))
                .unwrap_or_else(|| "no import run".into())
        ));
        Ok((m, run))
    }

    fn sync_failed(m: &Measured, run: &Option<ImportRun>) -> Option<String> {
        if m.code != 0 {
            return Some(format!("FAIL (exit {}: {})", m.code, m.stderr_tail(1)));
        }
        match run {
            Some(r) if r.status == "succeeded" => None,
            Some(r) => Some(format!("FAIL (import run {})", r.status)),
            None => Some("FAIL (no import run)".into()),
        }
    }

    fn first_and_unchanged(&mut self, store: Store, floors: &Floors) -> anyhow::Result<()> {
        let config = self.write_config(store, SRC_DB, false)?;
        let n = thousands(self.args.sessions as i64);

        // (b) first full sync of the day, `--runs` times, each into a fresh store (the median is reported;
        // the last run's store is the one (c) and (d) go on with).
        let mut firsts = Vec::new();
        for _ in 0..self.args.runs.max(1) {
            self.fresh_store(store)?;
            let m = self.migrate(store, &config)?;
            if m.code != 0 {
                bail!(
                    "acdsync migrate ({}) failed: {}",
                    store.name(),
                    m.stderr_tail(3)
                );
            }
            firsts.push(self.sync(store, &config, "first-sync")?);
        }
        let secs: Vec<f64> = firsts.iter().map(|(m, _)| m.secs).collect();
        let cpu: Vec<f64> = firsts.iter().map(|(m, _)| m.cpu_secs).collect();
        let rss = firsts.iter().map(|(m, _)| m.rss_mb()).fold(0.0, f64::max);
        // The verdict is the first failed run's, else the last run's.
        let pick = firsts
            .iter()
            .position(|(m, run)| Self::sync_failed(m, run).is_some())
            .unwrap_or(firsts.len() - 1);
        let (m, run) = firsts.swap_remove(pick);
        let mut r = Row::new(format!("(b) first full sync N={n}"), store.name());
        r.secs = Some(median(&secs));
        r.cpu = Some(median(&cpu));
        r.rss_mb = Some(rss);
        r.ratio = Some(median(&secs) / (floors.fetch + floors.copy_in));
        if let Some(run) = &run {
            r.rows_read = Some(run.rows_read);
            r.written = run.describe();
        }
        if store == Store::Postgres {
            r.target = format!("≤ {TARGET_FIRST_SYNC} × (fetch + \\copy in)");
        }
        r.verdict = match Self::sync_failed(&m, &run) {
            Some(f) => f,
            None => {
                let run = run.as_ref().expect("checked");
                let complete =
                    run.inserted == floors.window_rows && run.rows_read == floors.window_rows;
                let fast =
                    store != Store::Postgres || r.ratio.unwrap_or(f64::NAN) <= TARGET_FIRST_SYNC;
                match (complete, store) {
                    (false, _) => format!(
                        "FAIL (inserted {} of {} rows)",
                        run.inserted, floors.window_rows
                    ),
                    (true, Store::Postgres) if fast => "PASS".into(),
                    (true, Store::Postgres) => "FAIL (time; rows OK)".into(),
                    (true, Store::Sqlite) => "rows OK".into(),
                }
            }
        };
        self.rows.push(r);

        // (c) re-run with nothing changed: it changes no state, so it is repeated.
        let mut secs = Vec::new();
        let mut cpu = Vec::new();
        let mut rss: f64 = 0.0;
        let mut fail = None;
        let mut last = None;
        for _ in 0..self.args.runs {
            let (m, run) = self.sync(store, &config, "unchanged-rerun")?;
            secs.push(m.secs);
            cpu.push(m.cpu_secs);
            rss = rss.max(m.rss_mb());
            if let Some(f) = Self::sync_failed(&m, &run) {
                fail.get_or_insert(f);
            }
            if let Some(run) = run {
                if run.written() != 0 && fail.is_none() {
                    fail = Some(format!("FAIL (wrote {} rows)", run.written()));
                }
                last = Some(run);
            }
        }
        let mut r = Row::new(format!("(c) re-run, nothing changed N={n}"), store.name());
        r.secs = Some(median(&secs));
        r.cpu = Some(median(&cpu));
        r.rss_mb = Some(rss);
        r.ratio = Some(median(&secs) / floors.fetch);
        if let Some(run) = &last {
            r.rows_read = Some(run.rows_read);
            r.written = run.describe();
        }
        if store == Store::Postgres {
            r.target = format!("≤ {TARGET_UNCHANGED} × fetch, 0 rows");
        } else {
            r.target = "0 rows".into();
        }
        r.verdict = match fail {
            Some(f) => f,
            None if store == Store::Postgres => {
                if r.ratio.unwrap_or(f64::NAN) <= TARGET_UNCHANGED {
                    "PASS".into()
                } else {
                    "FAIL (time; 0 rows OK)".into()
                }
            }
            None => "PASS".into(),
        };
        self.rows.push(r);
        Ok(())
    }

    // --- (d) changes ----------------------------------------------------------------------------------

    /// Applies 1 % updates, 0.5 % inserts and 0.1 % deletes (of the day's sessions) to rows of the synced
    /// day, and returns the numbers actually changed.
    fn apply_changes(
        &mut self,
        sessions: u64,
        agents: u64,
        day: NaiveDate,
    ) -> anyhow::Result<Changes> {
        let n_upd = (sessions as f64 * 0.01).round() as i64;
        let n_ins = (sessions as f64 * 0.005).round() as i64;
        let n_del = (sessions as f64 * 0.001).round() as i64;
        let d0 = day.and_hms_opt(0, 0, 0).expect("midnight");
        let (d0, d1) = (ts(d0), ts(d0 + Duration::days(1)));
        let before = psql_i64(SRC_DB, "SELECT max(change_id) FROM acd_agent_states;")?;
        let t = Instant::now();
        // Updates: half get an end 37 seconds later (an open one gets closed), half another code.
        let updated = psql_i64(
            SRC_DB,
            &format!(
                "SET jit = off; SELECT setseed(0.17);
                 WITH pick AS (
                   SELECT id FROM acd_agent_states
                   WHERE started_at >= '{d0}' AND started_at < '{d1}'
                   ORDER BY random() LIMIT {n_upd}
                 ), u AS (
                   UPDATE acd_agent_states s
                   SET ended_at = CASE WHEN s.id % 2 = 0
                                       THEN coalesce(s.ended_at, s.started_at) + interval '37 seconds'
                                       ELSE s.ended_at END,
                       activity_code = CASE WHEN s.id % 2 = 1
                                            THEN CASE WHEN s.activity_code = 'C01' THEN 'C02' ELSE 'C01' END
                                            ELSE s.activity_code END
                   FROM pick WHERE s.id = pick.id
                   RETURNING 1)
                 SELECT count(*) FROM u;"
            ),
        )?;
        // Inserts: new states of existing agents at start times no row of the agent has.
        let inserted = psql_i64(
            SRC_DB,
            &format!(
                "SET jit = off; SELECT setseed(0.23);
                 WITH cand AS (
                   SELECT DISTINCT ON (agent_id, started_at) agent_id, started_at FROM (
                     SELECT 'A' || lpad((1 + floor(random() * {agents}))::int::text, 6, '0') AS agent_id,
                            TIMESTAMP '{d0}' + make_interval(secs => floor(random() * 86400)) AS started_at
                     FROM generate_series(1, {n_ins} * 2 + 100)) c
                 ), ok AS (
                   SELECT c.agent_id, c.started_at FROM cand c
                   WHERE c.started_at < '{d1}'
                     AND NOT EXISTS (SELECT 1 FROM acd_agent_states s
                                     WHERE s.agent_id = c.agent_id AND s.started_at = c.started_at)
                   LIMIT {n_ins}
                 ), i AS (
                   INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at)
                   SELECT agent_id, 'C03', started_at, started_at + interval '4 minutes' FROM ok
                   ORDER BY started_at
                   RETURNING 1)
                 SELECT count(*) FROM i;"
            ),
        )?;
        // Deletes: rows of the day that were neither updated nor inserted above.
        let deleted = psql_i64(
            SRC_DB,
            &format!(
                "SET jit = off; SELECT setseed(0.31);
                 WITH pick AS (
                   SELECT id FROM acd_agent_states
                   WHERE started_at >= '{d0}' AND started_at < '{d1}' AND change_id <= {before}
                   ORDER BY random() LIMIT {n_del}
                 ), d AS (DELETE FROM acd_agent_states s USING pick WHERE s.id = pick.id RETURNING 1)
                 SELECT count(*) FROM d;"
            ),
        )?;
        psql(SRC_DB, "VACUUM (ANALYZE) acd_agent_states;")?;
        self.say(&format!(
            "source changed: {updated} updated, {inserted} inserted, {deleted} deleted ({:.1}s)",
            t.elapsed().as_secs_f64()
        ));
        if inserted != n_ins {
            self.notes.push(format!(
                "Only {inserted} of {n_ins} planned inserts found a free (agent, start)."
            ));
        }
        Ok(Changes {
            updated,
            inserted,
            deleted,
        })
    }

    fn changed_rerun(&mut self, store: Store, floors: &Floors, ch: &Changes) -> anyhow::Result<()> {
        let config = self.work.join(format!("bench-{}.toml", store.short()));
        let (m, run) = self.sync(store, &config, "changed-rerun")?;
        let n = thousands(self.args.sessions as i64);
        let mut r = Row::new(
            format!("(d) re-run after 1 % changed, 0.5 % new, 0.1 % removed N={n}"),
            store.name(),
        );
        r.secs = Some(m.secs);
        r.cpu = Some(m.cpu_secs);
        r.rss_mb = Some(m.rss_mb());
        r.ratio = Some(m.secs / floors.fetch);
        r.target = format!(
            "ins {} / upd {} / del {}",
            thousands(ch.inserted),
            thousands(ch.updated),
            thousands(ch.deleted)
        );
        if let Some(run) = &run {
            r.rows_read = Some(run.rows_read);
            r.written = run.describe();
        }
        r.verdict = match Self::sync_failed(&m, &run) {
            Some(f) => f,
            None => {
                let run = run.as_ref().expect("checked");
                verdict(
                    run.inserted == ch.inserted
                        && run.updated == ch.updated
                        && run.deleted == ch.deleted,
                )
            }
        };
        self.rows.push(r);
        Ok(())
    }

    // --- incremental mode -----------------------------------------------------------------------------

    /// Moves the synced day's rows of the incremental source (a copy of the generated source) into
    /// `bench_day`, numbered in start order, and drops the rows of later days (they do not exist yet at the
    /// end of the day). Returns the number of rows of the day.
    fn prepare_incremental(&self) -> anyhow::Result<i64> {
        let day = self.args.date.and_hms_opt(0, 0, 0).expect("midnight");
        let (d0, d1) = (ts(day), ts(day + Duration::days(1)));
        psql_i64(
            INC_DB,
            &format!(
                "DELETE FROM acd_agent_states WHERE started_at >= '{d1}';
                 CREATE TABLE bench_day AS
                   SELECT row_number() OVER (ORDER BY id) AS ord, agent_id, activity_code, started_at, ended_at
                   FROM acd_agent_states WHERE started_at >= '{d0}';
                 CREATE UNIQUE INDEX ON bench_day (ord);
                 SELECT count(*) FROM bench_day;"
            ),
        )
    }

    fn incremental(&mut self, store: Store, total: i64) -> anyhow::Result<()> {
        let n = self.args.sessions as i64;
        let step = ((n as f64) * 0.005).round().max(1.0) as i64;
        let start_rows = ((n as f64) * 0.01).round().max(1.0) as i64;
        let reps = self.args.runs as i64;
        let day = self.args.date.and_hms_opt(0, 0, 0).expect("midnight");
        let d0 = ts(day);
        self.fresh_store(store)?;
        let config = self.write_config(store, INC_DB, true)?;
        let m = self.migrate(store, &config)?;
        let label = format!(
            "incremental mode: end of day / start of day, N={}",
            thousands(n)
        );
        if m.code != 0 {
            return self.incremental_unavailable(store, &label, &m);
        }
        // The source holds the rows that started before the day; the day's rows wait in bench_day.
        psql(
            INC_DB,
            &format!(
                "DELETE FROM acd_agent_states WHERE started_at >= '{d0}';
                 VACUUM (ANALYZE) acd_agent_states;"
            ),
        )?;
        if start_rows + 2 * reps * step > total {
            bail!("too few sessions for the incremental section");
        }
        let mut loaded: i64 = 0;
        let load_to = |loaded: &mut i64, upto: i64| -> anyhow::Result<()> {
            psql(
                INC_DB,
                &format!(
                    "INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at)
                     SELECT agent_id, activity_code, started_at, ended_at FROM bench_day
                     WHERE ord > {loaded} AND ord <= {upto} ORDER BY ord;
                     ANALYZE acd_agent_states;"
                ),
            )?;
            *loaded = upto;
            Ok(())
        };

        // Start of day: the first 1 % of the day's rows, one full sync, then increments of 0.5 %.
        load_to(&mut loaded, start_rows)?;
        let (m, run) = self.sync(store, &config, "incremental-start-full")?;
        if m.code == 78 {
            return self.incremental_unavailable(store, &label, &m);
        }
        if let Some(f) = Self::sync_failed(&m, &run) {
            let mut r = Row::new(label, store.name());
            r.verdict = format!("{f} at the first (full) sync of the start of the day");
            self.rows.push(r);
            return Ok(());
        }
        let mut start = Vec::new();
        for _ in 0..reps {
            let upto = loaded + step;
            load_to(&mut loaded, upto)?;
            start.push(self.sync_with(store, &config, "incremental-start", false)?);
        }

        // End of day: a fresh store synced in full with all but the last 0.5 % increments of the day.
        self.fresh_store(store)?;
        let m = self.migrate(store, &config)?;
        if m.code != 0 {
            bail!("acdsync migrate failed: {}", m.stderr_tail(3));
        }
        load_to(&mut loaded, total - reps * step)?;
        psql(INC_DB, "VACUUM (ANALYZE) acd_agent_states;")?;
        let (m, run) = self.sync(store, &config, "incremental-end-full")?;
        if let Some(f) = Self::sync_failed(&m, &run) {
            let mut r = Row::new(label, store.name());
            r.verdict = format!("{f} at the full sync of the end of the day");
            self.rows.push(r);
            return Ok(());
        }
        let mut end = Vec::new();
        for _ in 0..reps {
            let upto = loaded + step;
            load_to(&mut loaded, upto)?;
            end.push(self.sync_with(store, &config, "incremental-end", false)?);
        }

        let mut rows = Vec::new();
        let mut all_ok = true;
        for (name, runs) in [("start", &start), ("end", &end)] {
            let secs: Vec<f64> = runs.iter().map(|(m, _)| m.secs).collect();
            let cpu: Vec<f64> = runs.iter().map(|(m, _)| m.cpu_secs).collect();
            let mut r = Row::new(
                format!(
                    "incremental run at the {name} of the day, +{} new rows (0.5 %)",
                    thousands(step)
                ),
                store.name(),
            );
            r.secs = Some(median(&secs));
            r.cpu = Some(median(&cpu));
            r.rss_mb = Some(runs.iter().map(|(m, _)| m.rss_mb()).fold(0.0, f64::max));
            let mut fail = None;
            for (m, run) in runs.iter() {
                if let Some(f) = Self::sync_failed(m, run) {
                    fail.get_or_insert(f);
                } else if let Some(run) = run {
                    if run.inserted != step || run.updated != 0 || run.deleted != 0 {
                        fail.get_or_insert(format!("FAIL (wrote {})", run.describe()));
                    }
                }
            }
            if let Some((_, Some(run))) = runs.last() {
                r.rows_read = Some(run.rows_read);
                r.written = run.describe();
            }
            r.target = format!("ins {}", thousands(step));
            all_ok &= fail.is_none();
            r.verdict = fail.unwrap_or_else(|| "rows OK".into());
            // An incremental run reads the changes, not the day: say so when it read far more.
            if r.rows_read.is_some_and(|read| read > 2 * step) {
                r.verdict
                    .push_str(" (read the whole window: ran as a full sync?)");
            }
            rows.push((r, median(&secs)));
        }
        let ratio = rows[1].1 / rows[0].1;
        let mut r = Row::new(label, store.name());
        r.ratio = Some(ratio);
        r.target = format!("≤ {TARGET_INCREMENTAL}");
        r.verdict = if all_ok {
            verdict(ratio <= TARGET_INCREMENTAL)
        } else {
            "FAIL (rows)".into()
        };
        for (row, _) in rows {
            self.rows.push(row);
        }
        self.rows.push(r);
        Ok(())
    }

    fn incremental_unavailable(
        &mut self,
        store: Store,
        label: &str,
        m: &Measured,
    ) -> anyhow::Result<()> {
        let why = m.stderr_tail(1);
        self.say(&format!(
            "{}: incremental mode not available (exit {}): {why}",
            store.name(),
            m.code
        ));
        let mut r = Row::new(label, store.name());
        r.target = format!("≤ {TARGET_INCREMENTAL}");
        r.verdict = format!("not available (acdsync exit {})", m.code);
        self.rows.push(r);
        self.notes.push(format!(
            "Incremental mode ({}): acdsync rejected the `[system.incremental]` config (exit {}): `{}`",
            store.name(),
            m.code,
            why.replace('`', "'")
        ));
        Ok(())
    }

    // --- memory ----------------------------------------------------------------------------------------

    fn memory(&mut self) -> anyhow::Result<()> {
        let sizes = self.args.memory_sizes.clone();
        let stores = self.stores();
        // (store, step) -> [(sessions, rss MB)]
        let mut seen: Vec<(String, String, u64, f64)> = Vec::new();
        for &size in &sizes {
            let agents = self.args.memory_agents.unwrap_or((size / 30).max(1));
            self.say(&format!(
                "memory: generating {} sessions over {} agents",
                thousands(size as i64),
                thousands(agents as i64)
            ));
            generate_source(SRC_DB, size, agents, self.args.codes, self.args.date, 1)?;
            let floors = self.floors(SRC_DB, size, false)?;
            seen.push((
                "source".into(),
                "raw ODBC fetch".into(),
                size,
                self.rows.last().and_then(|r| r.rss_mb).unwrap_or(f64::NAN),
            ));
            let n = thousands(size as i64);
            for &store in &stores {
                self.fresh_store(store)?;
                let config = self.write_config(store, SRC_DB, false)?;
                let m = self.migrate(store, &config)?;
                if m.code != 0 {
                    bail!("acdsync migrate failed: {}", m.stderr_tail(3));
                }
                for (step, name) in [
                    ("memory-first-sync", "first sync"),
                    ("memory-unchanged", "unchanged re-run"),
                ] {
                    let (m, run) = self.sync(store, &config, step)?;
                    let mut r = Row::new(format!("memory: {name} N={n}"), store.name());
                    r.secs = Some(m.secs);
                    r.cpu = Some(m.cpu_secs);
                    r.rss_mb = Some(m.rss_mb());
                    r.ratio = Some(m.secs / floors.fetch);
                    if let Some(run) = &run {
                        r.rows_read = Some(run.rows_read);
                        r.written = run.describe();
                    }
                    r.verdict = Self::sync_failed(&m, &run).unwrap_or_else(|| "ran".into());
                    seen.push((store.name().into(), name.into(), size, m.rss_mb()));
                    self.rows.push(r);
                }
            }
        }
        // Growth of peak RSS from the smallest to the largest size.
        let (Some(&lo), Some(&hi)) = (sizes.iter().min(), sizes.iter().max()) else {
            return Ok(());
        };
        if lo == hi {
            return Ok(());
        }
        let keys: Vec<(String, String)> = seen
            .iter()
            .map(|(s, w, _, _)| (s.clone(), w.clone()))
            .fold(Vec::new(), |mut v, k| {
                if !v.contains(&k) {
                    v.push(k);
                }
                v
            });
        for (store, what) in keys {
            let at = |size: u64| {
                seen.iter()
                    .find(|(s, w, n, _)| *s == store && *w == what && *n == size)
                    .map(|x| x.3)
            };
            if let (Some(a), Some(b)) = (at(lo), at(hi)) {
                let mut r = Row::new(
                    format!(
                        "memory growth: {what}, peak RSS N={} / N={} ({b:.1} / {a:.1} MB)",
                        thousands(hi as i64),
                        thousands(lo as i64)
                    ),
                    &store,
                );
                r.ratio = Some(b / a);
                r.target = format!("≤ {TARGET_MEMORY_GROWTH} (flat in N)");
                r.verdict = verdict(b / a <= TARGET_MEMORY_GROWTH);
                self.rows.push(r);
            }
        }
        Ok(())
    }

    // --- report ----------------------------------------------------------------------------------------

    fn machine(&self) -> Vec<(String, String)> {
        let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "?".into());
        let cores = std::thread::available_parallelism()
            .map(|n| n.get().to_string())
            .unwrap_or_else(|_| "?".into());
        let ram = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|| "?".into());
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
        let os = read("/etc/os-release")
            .lines()
            .find(|l| l.starts_with("PRETTY_NAME="))
            .map(|l| {
                l.trim_start_matches("PRETTY_NAME=")
                    .trim_matches('"')
                    .to_string()
            })
            .unwrap_or_default();
        let pg = psql("postgres", "SHOW server_version;").unwrap_or_else(|e| e.to_string());
        let cmd_out = |prog: &str, args: &[&str]| {
            Command::new(prog)
                .args(args)
                .output()
                .ok()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .trim()
                        .replace('\n', ", ")
                })
                .unwrap_or_default()
        };
        let drivers = cmd_out(
            "dpkg-query",
            &["-W", "odbc-postgresql", "libsqliteodbc", "unixodbc"],
        )
        .replace('\t', " ");
        let acd_version = cmd_out(self.acdsync.to_str().unwrap_or("acdsync"), &["--version"]);
        let git = cmd_out(
            "git",
            &[
                "-C",
                self.repo.to_str().unwrap_or("."),
                "log",
                "-1",
                "--format=%h %s",
            ],
        );
        let dirty = !cmd_out(
            "git",
            &[
                "-C",
                self.repo.to_str().unwrap_or("."),
                "status",
                "--porcelain",
                "--untracked-files=no",
            ],
        )
        .is_empty();
        vec![
            ("CPU".into(), format!("{cpu}, {cores} cores")),
            ("RAM".into(), ram),
            ("OS / kernel".into(), format!("{os}, Linux {kernel}")),
            ("PostgreSQL".into(), pg),
            ("ODBC packages".into(), drivers),
            (
                "acdsync".into(),
                format!(
                    "{acd_version}, commit {git}{}",
                    if dirty { " (uncommitted changes)" } else { "" }
                ),
            ),
        ]
    }

    fn report(&mut self) -> anyhow::Result<()> {
        let a = &self.args;
        let command = std::env::var("ACDSYNC_BENCH_COMMAND").unwrap_or_else(|_| {
            std::env::args()
                .filter(|x| x != "--bench")
                .collect::<Vec<_>>()
                .join(" ")
        });
        let mut md = String::new();
        writeln!(md, "## acdsync scale benchmark\n")?;
        writeln!(md, "Command: `{command}`\n")?;
        writeln!(md, "| | |\n|---|---|")?;
        writeln!(
            md,
            "| sessions / agents / codes | {} / {} / {} (day {}, {TIME_ZONE}; {} day(s) in the source) |",
            thousands(a.sessions as i64),
            thousands(a.agents as i64),
            a.codes,
            a.date,
            a.days
        )?;
        for (k, v) in self.machine() {
            writeln!(md, "| {k} | {v} |")?;
        }
        writeln!(
            md,
            "| bench wall time | {:.0} s |",
            self.started.elapsed().as_secs_f64()
        )?;
        writeln!(
            md,
            "| load average (1 min) before the bench | {:.2} |",
            self.load_start
        )?;
        writeln!(md)?;
        writeln!(
            md,
            "| measurement | store | seconds | CPU s | rows read | rows written | peak RSS MB | ratio | target | verdict |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---|---:|---:|---|---|")?;
        for r in &self.rows {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.measurement,
                r.store,
                r.secs
                    .map(|s| format!("{s:.3}"))
                    .unwrap_or_else(|| "—".into()),
                r.cpu
                    .map(|s| format!("{s:.2}"))
                    .unwrap_or_else(|| "—".into()),
                r.rows_read.map(thousands).unwrap_or_else(|| "—".into()),
                r.written,
                r.rss_mb
                    .map(|m| format!("{m:.1}"))
                    .unwrap_or_else(|| "—".into()),
                r.ratio
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or_else(|| "—".into()),
                r.target,
                r.verdict.replace('|', "/")
            )?;
        }
        writeln!(md)?;
        writeln!(
            md,
            "Seconds: wall time of the measured process, median of {} runs for the floors, the unchanged re-run and the incremental runs, one run otherwise. Peak RSS: `ru_maxrss` of that process (the server's memory is not included). Ratios: first sync / (raw ODBC fetch + \\copy in); re-runs and memory rows / raw ODBC fetch (of the same size); incremental: end of day / start of day; memory growth: peak RSS at the largest size / at the smallest. Targets and verdicts are for the PostgreSQL store; SQLite rows are checked for rows written only.",
            a.runs
        )?;
        if self.load_start > 0.5 {
            self.notes.insert(
                0,
                format!(
                    "**The machine was busy when the bench started** (1-minute load average {:.2}): other processes may have shared the cores, so the seconds may be high and noisy. Compare the CPU column, or rerun on an idle machine.",
                    self.load_start
                ),
            );
        }
        if !self.notes.is_empty() {
            writeln!(md)?;
            for n in &self.notes {
                writeln!(md, "- {n}")?;
            }
        }
        writeln!(
            md,
            "\nLogs of every measured process: `{}`",
            self.logs
                .strip_prefix(&self.repo)
                .unwrap_or(&self.logs)
                .display()
        )?;
        println!("{md}");
        let out = if a.out.is_absolute() {
            a.out.clone()
        } else {
            self.repo.join(&a.out)
        };
        fs::write(&out, &md).with_context(|| format!("cannot write {}", out.display()))?;
        self.say(&format!("table written to {}", out.display()));
        Ok(())
    }
}

struct Changes {
    updated: i64,
    inserted: i64,
    deleted: i64,
}

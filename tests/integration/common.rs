//! Real engines for the tests: a fresh PostgreSQL database or SQLite file per test for the WFM store, and
//! sources reached through the real ODBC drivers (SQLite, PostgreSQL, MariaDB). Every database gets a unique
//! name and is dropped at the end, so tests run in parallel and after a crash.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use acdsync::config::{DatabaseUrl, ExternalSystemConfig, WatermarkKind, WindowParameters};
use acdsync::demo::GENERIC_SESSIONS_SQL;
use acdsync::source::query::{QueryKind, SourceQuery};
use acdsync::store::{schema, Create, Store};
use acdsync::sync::{self, Days, RunReport, Target};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use odbc_api::{ConnectionOptions, Cursor, IntoParameter};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other test (or earlier crashed run) uses.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

pub fn pg_admin_url() -> String {
    std::env::var("ACDSYNC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn pg_odbc_base() -> String {
    std::env::var("ACDSYNC_TEST_PG_ODBC").unwrap_or_else(|_| {
        "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Uid=postgres;".into()
    })
}

pub fn mariadb_odbc_base() -> String {
    std::env::var("ACDSYNC_TEST_MARIADB_ODBC").unwrap_or_else(|_| {
        "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Uid=root;Pwd=;".into()
    })
}

/// A PostgreSQL database that exists for the life of the value.
pub struct PgDatabase {
    pub name: String,
}

impl PgDatabase {
    pub fn new(prefix: &str) -> PgDatabase {
        let name = unique(prefix);
        let mut admin = PgConnection::establish(&pg_admin_url())
            .expect("PostgreSQL must answer at ACDSYNC_TEST_PG_URL (scripts/test.sh starts it)");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        PgDatabase { name }
    }

    pub fn url(&self) -> String {
        let mut u = url::Url::parse(&pg_admin_url()).unwrap();
        u.set_path(&self.name);
        u.to_string()
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&pg_admin_url()) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Which WFM store a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum StoreKind {
    Postgres,
    Sqlite,
}

/// A migrated WFM database for one test.
pub struct TestStore {
    pub url: String,
    _pg: Option<PgDatabase>,
    _dir: tempfile::TempDir,
}

impl TestStore {
    pub fn new(kind: StoreKind) -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = match kind {
            StoreKind::Postgres => {
                let db = PgDatabase::new("acdsync_wfm");
                (db.url(), Some(db))
            }
            StoreKind::Sqlite => (
                format!("sqlite://{}", dir.path().join("wfm.db").display()),
                None,
            ),
        };
        let t = TestStore {
            url,
            _pg: pg,
            _dir: dir,
        };
        t.open_create().migrate().unwrap();
        t
    }

    pub fn database_url(&self) -> DatabaseUrl {
        DatabaseUrl::new(self.url.clone()).unwrap()
    }

    fn open_create(&self) -> Store {
        Store::open(&self.database_url(), Create::IfMissing).unwrap()
    }

    pub fn open(&self) -> Store {
        Store::open(&self.database_url(), Create::Never).unwrap()
    }

    /// A new store with every migration applied (for tests that run the binary, which does not migrate).
    pub fn migrated(kind: StoreKind) -> TestStore {
        let store = TestStore::new(kind);
        store.open_create().migrate().unwrap();
        store
    }

    /// One sync, under the run lock, as `acdsync sync` does it.
    pub fn sync(&self, system: &ExternalSystemConfig, days: Days) -> anyhow::Result<RunReport> {
        let mut store = self.open();
        store.check_schema()?;
        store.lock(false)?;
        sync::sync(&mut store, system, Target::Days(days))
    }

    /// A sync of today as `acdsync sync` runs it for an incremental system: by changes (or in full), then
    /// the full reads it asks for. Every run's report, the requested one first.
    pub fn sync_today(&self, system: &ExternalSystemConfig) -> Vec<RunReport> {
        let mut store = self.open();
        store.lock(false).unwrap();
        sync::sync_and_reconcile(&mut store, system, Target::Today)
            .into_iter()
            .map(|r| r.unwrap())
            .collect()
    }

    /// Every rejected row as (source row, agent, code, start, end, reason), for messages.
    pub fn rejected_reasons(&self) -> Vec<RejectedRow> {
        use schema::rejected_rows::dsl as r;
        let q = r::rejected_rows
            .select((
                r::source_row,
                r::agent_id,
                r::activity_code,
                r::started_at,
                r::ended_at,
                r::reason,
            ))
            .order(r::id);
        match &mut self.dba() {
            Dba::Postgres(c) => q.load(c),
            Dba::Sqlite(c) => q.load(c),
        }
        .unwrap()
    }

    /// A connection of the test's own, as a DBA would open one (not acdsync's `Store`).
    pub fn dba(&self) -> Dba {
        Dba::open(&self.url)
    }

    /// Plain SQL, as a DBA would type it.
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        match &mut self.dba() {
            Dba::Postgres(c) => c.batch_execute(sql),
            Dba::Sqlite(c) => c.batch_execute(sql),
        }
        .map_err(|e| e.to_string())
    }

    pub fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let q = diesel::sql_query(format!("SELECT CAST(({sql}) AS BIGINT) AS n"));
        match &mut self.dba() {
            Dba::Postgres(c) => q.get_result::<N>(c),
            Dba::Sqlite(c) => q.get_result::<N>(c),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
    }

    /// The text value `sql` selects (one row, one column named `t`).
    pub fn text(&self, sql: &str) -> String {
        #[derive(QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Text)]
            t: String,
        }
        let q = diesel::sql_query(sql);
        match &mut self.dba() {
            Dba::Postgres(c) => q.get_result::<T>(c),
            Dba::Sqlite(c) => q.get_result::<T>(c),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .t
    }

    /// The `external_activity` view, ordered by agent and start.
    pub fn view(&self) -> Vec<ViewRow> {
        use schema::external_activity::dsl as v;
        let q = v::external_activity
            .select((
                v::external_agent_id,
                v::employee_id,
                v::activity_code,
                v::activity_id,
                v::started_at,
                v::ended_at,
            ))
            .order((v::external_agent_id, v::started_at));
        match &mut self.dba() {
            Dba::Postgres(c) => q.load::<ViewRow>(c),
            Dba::Sqlite(c) => q.load::<ViewRow>(c),
        }
        .unwrap()
    }

    /// Session ids by (agent, start), to prove rows were left untouched.
    pub fn session_ids(&self) -> Vec<i64> {
        use schema::agent_sessions::dsl as s;
        let q = s::agent_sessions.select(s::id).order(s::id);
        match &mut self.dba() {
            Dba::Postgres(c) => q.load::<i64>(c),
            Dba::Sqlite(c) => q.load::<i64>(c),
        }
        .unwrap()
    }
}

/// A row of `rejected_rows`: source row, agent, code, start, end (as read), reason.
pub type RejectedRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// A plain Diesel connection to a WFM database, opened from its URL.
pub enum Dba {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

impl Dba {
    pub fn open(url: &str) -> Dba {
        match url.strip_prefix("sqlite://") {
            Some(path) => {
                let mut c = SqliteConnection::establish(path).unwrap();
                c.batch_execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000")
                    .unwrap();
                Dba::Sqlite(c)
            }
            None => Dba::Postgres(PgConnection::establish(url).unwrap()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ViewRow {
    pub agent: String,
    pub employee_id: Option<i64>,
    pub code: Option<String>,
    pub activity_id: i64,
    pub started_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
}

pub fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

pub fn day(s: &str) -> Days {
    Days::one(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
}

/// A row of the source table `acd_agent_states` (local times as text, `None` = NULL).
#[derive(Clone, Debug)]
pub struct Row {
    pub agent: Option<&'static str>,
    pub code: Option<&'static str>,
    pub start: Option<&'static str>,
    pub end: Option<&'static str>,
}

pub fn row(
    agent: &'static str,
    code: Option<&'static str>,
    start: &'static str,
    end: Option<&'static str>,
) -> Row {
    Row {
        agent: Some(agent),
        code,
        start: Some(start),
        end,
    }
}

/// Which ODBC driver a source is read through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// SQLite file, TEXT timestamps, SQLite3 ODBC driver.
    Sqlite,
    /// PostgreSQL database, TIMESTAMP columns, psqlODBC.
    Postgres,
    /// MariaDB database, DATETIME columns, MariaDB Connector/ODBC.
    MariaDb,
}

/// A telephony reporting database with the table the generic sessions query reads.
pub struct Source {
    pub kind: SourceKind,
    pub connection_string: String,
    name: String,
    _pg: Option<PgDatabase>,
    _dir: tempfile::TempDir,
}

impl Source {
    pub fn new(kind: SourceKind) -> Source {
        let dir = tempfile::tempdir().unwrap();
        let env = odbc_api::environment().unwrap();
        let name = unique("acdsync_src");
        let (cs, pg, ddl) = match kind {
            SourceKind::Sqlite => (
                format!("Driver=SQLite3;Database={};StepAPI=1", dir.path().join("acd.db").display()),
                None,
                "CREATE TABLE acd_agent_states (agent_id TEXT, activity_code TEXT, started_at TIMESTAMP, ended_at TIMESTAMP)",
            ),
            SourceKind::Postgres => {
                let db = PgDatabase::new("acdsync_src");
                (
                    format!("{}Database={};", pg_odbc_base(), db.name),
                    Some(db),
                    "CREATE TABLE acd_agent_states (agent_id varchar(80), activity_code varchar(100), started_at timestamp, ended_at timestamp)",
                )
            }
            SourceKind::MariaDb => {
                let admin = env.connect_with_connection_string(&mariadb_odbc_base(), ConnectionOptions::default())
                    .expect("MariaDB must answer at ACDSYNC_TEST_MARIADB_ODBC (scripts/test.sh starts it)");
                admin.execute(&format!("CREATE DATABASE {name}"), (), None).unwrap();
                (
                    format!("{}Database={name};", mariadb_odbc_base()),
                    None,
                    "CREATE TABLE acd_agent_states (agent_id varchar(80), activity_code varchar(100), started_at datetime(6), ended_at datetime(6))",
                )
            }
        };
        let s = Source {
            kind,
            connection_string: cs,
            name,
            _pg: pg,
            _dir: dir,
        };
        s.execute(ddl);
        s
    }

    /// The largest change_id of the source table (PostgreSQL sources with a change key).
    pub fn max_change_id(&self) -> i64 {
        self.number("SELECT CAST(max(change_id) AS text) FROM acd_agent_states")
    }

    /// The rows of the source table.
    pub fn rows(&self) -> i64 {
        self.number("SELECT COUNT(*) FROM acd_agent_states")
    }

    /// A query's one number, read as text.
    fn number(&self, sql: &str) -> i64 {
        let env = odbc_api::environment().unwrap();
        let conn = env
            .connect_with_connection_string(&self.connection_string, ConnectionOptions::default())
            .unwrap();
        let mut cursor = conn.execute(sql, (), None).unwrap().unwrap();
        let mut text = Vec::new();
        cursor
            .next_row()
            .unwrap()
            .unwrap()
            .get_text(1, &mut text)
            .unwrap();
        String::from_utf8(text).unwrap().parse().unwrap()
    }

    pub fn execute(&self, sql: &str) {
        let env = odbc_api::environment().unwrap();
        let conn = env
            .connect_with_connection_string(&self.connection_string, ConnectionOptions::default())
            .unwrap();
        conn.execute(sql, (), None)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Replaces the table's rows.
    pub fn set_rows(&self, rows: &[Row]) {
        let env = odbc_api::environment().unwrap();
        let conn = env
            .connect_with_connection_string(&self.connection_string, ConnectionOptions::default())
            .unwrap();
        conn.execute("DELETE FROM acd_agent_states", (), None)
            .unwrap();
        for r in rows {
            conn.execute(
                "INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at) VALUES (?, ?, ?, ?)",
                (
                    &r.agent.into_parameter(),
                    &r.code.into_parameter(),
                    &r.start.into_parameter(),
                    &r.end.into_parameter(),
                ),
                None,
            )
            .unwrap_or_else(|e| panic!("inserting {r:?}: {e}"));
        }
    }

    /// A system reading this source with its own SQL text.
    pub fn system_with_sql(
        &self,
        name: &str,
        time_zone: &str,
        mode: WindowParameters,
        sql: &str,
    ) -> ExternalSystemConfig {
        let query = SourceQuery::parse(Path::new("test.sql"), sql, QueryKind::Window).unwrap();
        ExternalSystemConfig::new(name, time_zone, query, &self.connection_string, mode).unwrap()
    }

    /// A system reading this source with the shipped generic sessions query.
    pub fn system(
        &self,
        name: &str,
        time_zone: &str,
        mode: WindowParameters,
    ) -> ExternalSystemConfig {
        let query = SourceQuery::parse(
            Path::new("sql/sources/generic_sessions.sql"),
            GENERIC_SESSIONS_SQL,
            QueryKind::Window,
        )
        .unwrap();
        ExternalSystemConfig::new(name, time_zone, query, &self.connection_string, mode).unwrap()
    }

    pub fn path(&self) -> PathBuf {
        self._dir.path().join("acd.db")
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        if self.kind == SourceKind::MariaDb {
            if let Ok(env) = odbc_api::environment() {
                if let Ok(admin) = env.connect_with_connection_string(
                    &mariadb_odbc_base(),
                    ConnectionOptions::default(),
                ) {
                    let _ =
                        admin.execute(&format!("DROP DATABASE IF EXISTS {}", self.name), (), None);
                }
            }
        }
    }
}

/// Runs a test body once on each WFM store.
#[macro_export]
macro_rules! on_both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn postgres() {
                ($body)(StoreKind::Postgres)
            }
            #[test]
            fn sqlite() {
                ($body)(StoreKind::Sqlite)
            }
        }
    };
}

/// An incremental system in `zone` reading `acd_agent_states` of `source`, its change key selected as `key` and the
/// changes query's condition `condition {watermark}`; full syncs every hour.
pub fn incremental_system(
    zone: &str,
    source: &Source,
    key: &str,
    condition: &str,
    kind: WatermarkKind,
) -> acdsync::config::ExternalSystemConfig {
    let window_sql = format!(
        "SELECT agent_id, activity_code, started_at, ended_at, {key} FROM acd_agent_states \
         WHERE started_at >= {{lookback_start}} AND started_at < {{window_end}} \
           AND (started_at >= {{window_start}} OR ended_at IS NULL OR ended_at >= {{window_start}}) \
         ORDER BY started_at"
    );
    let changes_sql = format!(
        "SELECT agent_id, activity_code, started_at, ended_at, {key} FROM acd_agent_states \
         WHERE {condition} {{watermark}}"
    );
    let changes = SourceQuery::parse(
        std::path::Path::new("changes.sql"),
        &changes_sql,
        QueryKind::Changes,
    )
    .unwrap();
    source
        .system_with_sql("inc", zone, WindowParameters::Bound, &window_sql)
        .with_incremental(changes, kind, std::time::Duration::from_secs(3600))
}

/// A row of today for agent `seed` in a PostgreSQL source: the first sync of today of an incremental
/// system reads it and sets the watermark, so that later runs go by changes.
pub fn seed_today(source: &Source, zone: &str) {
    source.execute(&format!(
        "INSERT INTO acd_agent_states (agent_id, started_at, ended_at) \
         VALUES ('seed', date_trunc('minute', now() AT TIME ZONE '{zone}'), NULL)"
    ));
}

/// A stored session as text: agent, code, start and end (UTC), as a test writes what it expects.
pub type SessionText = (String, Option<String>, String, Option<String>);

/// The `external_activity` view as text, times formatted with `format` (e.g. `%Y-%m-%d %H:%M`).
pub fn sessions_as(store: &TestStore, format: &str) -> Vec<SessionText> {
    let f = |t: NaiveDateTime| t.format(format).to_string();
    store
        .view()
        .into_iter()
        .map(|v| (v.agent, v.code, f(v.started_at), v.ended_at.map(f)))
        .collect()
}

/// Expected sessions, written as (agent, code, start, end).
pub fn sessions_text(rows: &[(&str, Option<&str>, &str, Option<&str>)]) -> Vec<SessionText> {
    rows.iter()
        .map(|(a, c, s, e)| {
            (
                a.to_string(),
                c.map(str::to_owned),
                s.to_string(),
                e.map(str::to_owned),
            )
        })
        .collect()
}

/// Deterministic pseudo-random numbers (no dependency, the same data on every run).
pub struct Lcg(pub u64);

impl Lcg {
    /// A number in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Zones whose clocks change at 01:00 UTC, at 02:00 local, at midnight, at 23:00 and by 30 minutes.
pub const DST_ZONES: [&str; 7] = [
    "Europe/Paris",
    "America/New_York",
    "Atlantic/Azores",
    "America/Havana",
    "Asia/Beirut",
    "Australia/Lord_Howe",
    "America/Santiago",
];

/// The first instant of 2026 (UTC) at which the offset of `tz` goes down (`back`) or up.
pub fn clock_change(tz: chrono_tz::Tz, back: bool) -> NaiveDateTime {
    use chrono::{Offset, TimeZone};
    let offset = |t: NaiveDateTime| tz.offset_from_utc_datetime(&t).fix().local_minus_utc();
    let mut t = NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    loop {
        let next = t + chrono::Duration::minutes(15);
        if offset(next) != offset(t) && (offset(next) < offset(t)) == back {
            return next;
        }
        t = next;
    }
}

/// What a run wrote: (inserted, updated, deleted).
pub fn written(r: &RunReport) -> (u64, u64, u64) {
    (r.counts.inserted, r.counts.updated, r.counts.deleted)
}

/// A `[[system]]` block of a config file: `name`, `zone`, `sql_file`, and `more` lines (the connection,
/// settings) as written.
pub fn system_toml(name: &str, zone: &str, sql_file: &str, more: &str) -> String {
    format!("[[system]]\nname = \"{name}\"\ntime_zone = \"{zone}\"\nsql_file = \"{sql_file}\"\n{more}\n")
}

/// What the binary printed and how it ended.
pub struct CliOut {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A folder with `acdsync.toml` naming a migrated store and systems, each reading a SQLite source of its
/// own (generic sessions query, literal window bounds) through its connection string in the variable
/// `ACDSYNC_T_<NAME>`; the binary is run in that folder, as an operator runs it.
pub struct CliSite {
    pub store: TestStore,
    pub dir: tempfile::TempDir,
    sources: Vec<(String, Source)>,
}

impl CliSite {
    /// `systems`: (name, more lines of its `[[system]]`), all in Europe/Paris.
    pub fn new(kind: StoreKind, systems: &[(&str, &str)]) -> CliSite {
        let store = TestStore::migrated(kind);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("q.sql"), GENERIC_SESSIONS_SQL).unwrap();
        let mut config = format!("[wfm]\ndatabase_url = \"{}\"\n", store.url);
        let mut sources = Vec::new();
        for (name, more) in systems {
            let var = format!("ACDSYNC_T_{}", name.to_uppercase());
            config += &format!(
                "\n{}",
                system_toml(
                    name,
                    "Europe/Paris",
                    "q.sql",
                    &format!("connection_string_env = \"{var}\"\nwindow_parameters = \"literal\"\n{more}")
                )
            );
            sources.push((var, Source::new(SourceKind::Sqlite)));
        }
        std::fs::write(dir.path().join("acdsync.toml"), config).unwrap();
        CliSite {
            store,
            dir,
            sources,
        }
    }

    /// The source of the system `name`.
    pub fn source(&self, name: &str) -> &Source {
        let var = format!("ACDSYNC_T_{}", name.to_uppercase());
        &self
            .sources
            .iter()
            .find(|(v, _)| *v == var)
            .expect("a system of the site")
            .1
    }

    /// `acdsync ARGS` in the site's folder, with the sources' variables set.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("acdsync"));
        for (var, source) in &self.sources {
            c.env(var, &source.connection_string);
        }
        c.env_remove("ACDSYNC_DATABASE_URL")
            .env_remove("ACDSYNC_CONFIG")
            .current_dir(self.dir.path())
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> CliOut {
        let out = self.command(args).output().unwrap();
        CliOut {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `run`, which must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.code, Some(0), "{args:?}: {}{}", out.stdout, out.stderr);
        out.stdout
    }
}

impl CliSite {
    /// A site with one system, "paris".
    pub fn paris_only(kind: StoreKind) -> CliSite {
        CliSite::new(kind, &[("paris", "")])
    }

    /// The source of the system "paris".
    pub fn paris(&self) -> &Source {
        self.source("paris")
    }

    /// Puts the system `name` in incremental mode, its change key SQLite's rowid (`watermark = "integer"`,
    /// a full sync every 24 h): both its queries return the rowid as a 5th column.
    pub fn make_incremental(&self, name: &str) {
        std::fs::write(
            self.dir.path().join("w.sql"),
            "SELECT agent_id, activity_code, started_at, ended_at, rowid FROM acd_agent_states \
             WHERE started_at >= {lookback_start} AND started_at < {window_end} \
             AND (started_at >= {window_start} OR ended_at IS NULL OR ended_at >= {window_start}) ORDER BY started_at",
        )
        .unwrap();
        std::fs::write(
            self.dir.path().join("c.sql"),
            "SELECT agent_id, activity_code, started_at, ended_at, rowid FROM acd_agent_states \
             WHERE rowid > {watermark} ORDER BY rowid",
        )
        .unwrap();
        let path = self.dir.path().join("acdsync.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        let blocks: Vec<String> = config
            .split("[[system]]")
            .enumerate()
            .map(|(i, block)| match i > 0 && block.starts_with(&format!("\nname = \"{name}\"\n")) {
                true => format!(
                    "{}\n[system.incremental]\nsql_file = \"c.sql\"\nwatermark = \"integer\"\nfull_sync_every = \"24h\"\n\n",
                    block.trim_end().replace("sql_file = \"q.sql\"", "sql_file = \"w.sql\"")
                ),
                false => block.to_owned(),
            })
            .collect();
        std::fs::write(&path, blocks.join("[[system]]")).unwrap();
    }
}

/// Today in Europe/Paris (the zone of `CliSite`'s systems).
pub fn paris_today() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive()
}

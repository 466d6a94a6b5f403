//! The WFM database, through Diesel: PostgreSQL in production, SQLite embedded.
//!
//! `Store` is the one door: it opens the database, takes the run lock, migrates, records runs, and runs a
//! sync's work in a transaction through `WfmOps`, a trait both backends implement (`postgres.rs`,
//! `sqlite.rs`, with their common statements in `shared.rs`). Which backend it is stays in here: an enum
//! of the two concrete connections, matched in this file only (Diesel's `MultiConnection` would hide ON
//! CONFLICT and COPY; see shared/STACK-FACTS.md). `reader.rs` reads a window's stored sessions on a
//! connection of its own.

#[macro_use]
mod shared;
pub mod admin;
mod cancel;
mod dry;
pub mod models;
pub mod ops;
mod postgres;
pub mod reader;
pub mod schema;
mod sqlite;
mod transaction;

pub use models::{RunMode, RunStatus, SessionKey};
pub use ops::WfmOps;

use std::fs::File;

use chrono::NaiveDateTime;
use std::path::PathBuf;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::{Backend, DatabaseUrl};
use crate::error::Failure;

pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Key of the PostgreSQL session advisory lock that keeps two acdsync runs apart ("acdsync" in ASCII).
pub const RUN_LOCK_KEY: i64 = 0x0061_6364_7379_6E63;

/// An open WFM connection.
enum Wfm {
    Postgres(PgConnection),
    /// The connection and the database file (the run lock is a file beside it).
    Sqlite(SqliteConnection, PathBuf),
}

/// The WFM database: a connection, what it is called in messages, and the run lock once taken.
pub struct Store {
    /// Cancels the connection's statement on SIGTERM or SIGINT (PostgreSQL; `cancel.rs`). Dropped before
    /// the connection is closed.
    _cancel: Option<crate::stop::Armed>,
    conn: Wfm,
    name: String,
    lock_file: Option<File>,
    locked: bool,
    url: DatabaseUrl,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Whether `open` may create a missing SQLite file (`migrate` may; `sync` must not, so a typo in the path
/// cannot silently start an empty database).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    IfMissing,
    Never,
}

impl Store {
    pub fn open(url: &DatabaseUrl, create: Create) -> Result<Store, Failure> {
        let name = url.display();
        match url.backend()? {
            Backend::Postgres => {
                let waits = url.waits();
                let target = url.expose_with_connect_timeout(waits.connect);
                let mut conn = crate::retry::connecting(
                    "the WFM database",
                    waits.retry,
                    || PgConnection::establish(&target),
                    |e| crate::retry::postgres_unreachable(&e.to_string()),
                )
                .map_err(|e| {
                    Failure::Unavailable(format!(
                        "cannot connect to the WFM database {name}: {}",
                        e.to_string().trim()
                    ))
                })?;
                // Timestamps are bound as UTC values (schema.rs); application_name shows in pg_stat_activity.
                conn.batch_execute("SET TIME ZONE 'UTC'; SET application_name = 'acdsync'")
                    .map_err(|e| Failure::Unavailable(format!("WFM database {name}: {e}")))?;
                // Bounded waits ([wfm] lock_timeout, statement_timeout).
                conn.batch_execute(&format!(
                    "SET lock_timeout = '{}ms'; SET statement_timeout = '{}ms'",
                    waits.lock.as_millis(),
                    waits.statement.as_millis()
                ))
                .map_err(|e| Failure::Unavailable(format!("WFM database {name}: {e}")))?;
                // PostgreSQL 14+: notice a killed client within 200 ms and free its lock (best effort).
                let _ = conn.batch_execute("SET client_connection_check_interval = '200ms'");
                let cancel = cancel::on_signal(&mut conn, url)
                    .map_err(|e| Failure::Unavailable(format!("WFM database {name}: {e}")))?;
                Ok(Store {
                    _cancel: Some(cancel),
                    conn: Wfm::Postgres(conn),
                    name,
                    lock_file: None,
                    locked: false,
                    url: url.clone(),
                })
            }
            Backend::Sqlite(path) => {
                if create == Create::Never && !path.exists() {
                    return Err(Failure::Config(format!(
                        "the WFM database file {} does not exist; run `acdsync migrate` to create it (or fix the path in the database URL)",
                        path.display()
                    )));
                }
                let path_str = path.to_str().ok_or_else(|| {
                    Failure::Config(format!(
                        "the WFM database path {} is not valid UTF-8",
                        path.display()
                    ))
                })?;
                let mut conn = SqliteConnection::establish(path_str).map_err(|e| {
                    Failure::Unavailable(format!(
                        "cannot open the WFM database {}: {e}",
                        path.display()
                    ))
                })?;
                // Another writer's lock is waited for [wfm] lock_timeout at most.
                conn.batch_execute(&format!(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
                    url.waits().lock.as_millis().min(i32::MAX as u128)
                ))
                .map_err(|e| Failure::Unavailable(format!("WFM database {}: {e}", path.display())))?;
                Ok(Store {
                    _cancel: None,
                    conn: Wfm::Sqlite(conn, path),
                    name,
                    lock_file: None,
                    locked: false,
                    url: url.clone(),
                })
            }
        }
    }

    /// The database as named in messages (password removed).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Each system's last run and last success (for the metrics).
    pub fn run_summaries(&mut self) -> anyhow::Result<Vec<models::RunSummary>> {
        self.ops()
            .run_summaries()
            .context("reading the last runs for the metrics")
    }

    /// How long its connections wait ([wfm] lock_timeout, statement_timeout, connect_timeout).
    /// The database's URL (its waits, its backend), for messages.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    pub fn waits(&self) -> crate::config::Waits {
        self.url.waits()
    }
}

impl Store {
    /// Takes the run lock that keeps two acdsync processes off one WFM database, for as long as this
    /// `Store` lives. With `wait`, waits for it (migrate); without, fails at once with `Failure::LockHeld`.
    ///
    /// PostgreSQL: a session advisory lock (needs a session-pooled connection, not pgbouncer's transaction
    /// pooling). SQLite: an exclusive OS lock on the file `<database>.lock` beside the database.
    pub fn lock(&mut self, wait: bool) -> anyhow::Result<()> {
        if self.locked {
            return Ok(());
        }
        let held = || Failure::LockHeld(self.name.clone());
        match &mut self.conn {
            Wfm::Postgres(c) => {
                let sql = if wait {
                    "SELECT pg_advisory_lock($1) IS NOT NULL AS locked"
                } else {
                    "SELECT pg_try_advisory_lock($1) AS locked"
                };
                // `migrate` waits for a running sync however long it runs.
                if wait {
                    c.batch_execute("SET lock_timeout = 0; SET statement_timeout = 0")
                        .context("taking the run lock")?;
                }
                let got = diesel::sql_query(sql)
                    .bind::<BigInt, _>(RUN_LOCK_KEY)
                    .get_result::<Locked>(c)
                    .context("taking the run lock")?;
                if wait {
                    let waits = self.url.waits();
                    c.batch_execute(&format!(
                        "SET lock_timeout = '{}ms'; SET statement_timeout = '{}ms'",
                        waits.lock.as_millis(),
                        waits.statement.as_millis()
                    ))
                    .context("taking the run lock")?;
                }
                if !got.locked {
                    return Err(held().into());
                }
            }
            Wfm::Sqlite(_, path) => {
                let mut lock_path = path.clone().into_os_string();
                lock_path.push(".lock");
                let file = File::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .map_err(|e| {
                        let path = PathBuf::from(&lock_path);
                        match e.kind() {
                            // Created by another user (root's first run): a setting to fix, not a retry.
                            std::io::ErrorKind::PermissionDenied => Failure::Config(format!(
                                "cannot open the run lock file {} ({e}): it must be writable by the user acdsync runs as; fix its owner or mode, or delete it while no acdsync runs",
                                path.display()
                            ))
                            .into(),
                            _ => anyhow::Error::new(e)
                                .context(format!("opening the lock file {}", path.display())),
                        }
                    })?;
                if wait {
                    file.lock().context("waiting for the run lock")?;
                } else if let Err(e) = file.try_lock() {
                    return match e {
                        std::fs::TryLockError::WouldBlock => Err(held().into()),
                        std::fs::TryLockError::Error(e) => {
                            Err(anyhow::Error::new(e).context("taking the run lock"))
                        }
                    };
                }
                self.lock_file = Some(file);
            }
        }
        self.locked = true;
        Ok(())
    }

    /// Takes the run lock, waiting for another run to release it up to `up_to` (`sync --wait-lock`); then, or
    /// after SIGTERM or SIGINT, fails as `lock` does.
    pub fn lock_waiting(&mut self, up_to: std::time::Duration) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let mut said = false;
        loop {
            match self.lock(false) {
                Err(e)
                    if matches!(e.downcast_ref::<Failure>(), Some(Failure::LockHeld(_)))
                        && started.elapsed() < up_to
                        && crate::stop::requested().is_none() =>
                {
                    if !said {
                        let up_to = humantime::format_duration(up_to).to_string();
                        tracing::info!(database = %self.name, %up_to, "another run holds the run lock: waiting for it");
                        said = true;
                    }
                    let left = up_to.saturating_sub(started.elapsed());
                    std::thread::sleep(left.min(std::time::Duration::from_millis(250)));
                }
                other => return other,
            }
        }
    }

    /// Releases the run lock now (it is released when the store is dropped too, but PostgreSQL frees a
    /// session's advisory lock only once the server sees the connection close: a run started right after
    /// this process exits must find it free). A failure is logged: the lock then goes with the connection.
    pub fn unlock(&mut self) {
        if !self.locked {
            return;
        }
        match &mut self.conn {
            Wfm::Postgres(c) => {
                let released = diesel::sql_query("SELECT pg_advisory_unlock($1) AS locked")
                    .bind::<BigInt, _>(RUN_LOCK_KEY)
                    .get_result::<Locked>(c);
                if let Err(e) = released {
                    tracing::warn!(error = %e, "could not release the run lock; it goes with the connection");
                }
            }
            Wfm::Sqlite(..) => drop(self.lock_file.take()),
        }
        self.locked = false;
    }

    /// Applies the embedded migrations not yet applied, under the run lock. Returns their names.
    pub fn migrate(&mut self) -> anyhow::Result<Vec<String>> {
        self.lock(true)?;
        let applied = match &mut self.conn {
            Wfm::Postgres(c) => c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.iter().map(|m| m.to_string()).collect()),
            Wfm::Sqlite(c, _) => c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.iter().map(|m| m.to_string()).collect()),
        };
        applied.map_err(|e| anyhow::anyhow!("applying migrations to {}: {e}", self.name))
    }

    /// Reverts every migration (tests check that each down.sql works).
    pub fn revert_all(&mut self) -> anyhow::Result<()> {
        let r = match &mut self.conn {
            Wfm::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(drop),
            Wfm::Sqlite(c, _) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(drop),
        };
        r.map_err(|e| anyhow::anyhow!("reverting migrations on {}: {e}", self.name))
    }

    /// Refuses a database whose schema is behind this binary, instead of migrating behind the DBA's back.
    pub fn check_schema(&mut self) -> anyhow::Result<()> {
        let pending: Vec<String> = match &mut self.conn {
            Wfm::Postgres(c) => c
                .pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.iter().map(|m| m.name().to_string()).collect()),
            Wfm::Sqlite(c, _) => c
                .pending_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.iter().map(|m| m.name().to_string()).collect()),
        }
        .map_err(|e| anyhow::anyhow!("reading the applied migrations of {}: {e}", self.name))?;
        if pending.is_empty() {
            Ok(())
        } else {
            Err(Failure::SchemaBehind {
                pending: pending.len(),
                names: pending.join(", "),
            }
            .into())
        }
    }
}

impl Store {
    /// The statements of this store, outside a transaction (each commits on its own).
    fn ops(&mut self) -> &mut (dyn WfmOps + Send) {
        match &mut self.conn {
            Wfm::Postgres(c) => c,
            Wfm::Sqlite(c, _) => c,
        }
    }

    /// What a run of the system `name` starts from: its id (the system is registered if new), its
    /// watermark and its last full sync. Runs left `running` by a process that stopped are marked
    /// `abandoned` first (the run lock is held: nobody runs them).
    ///
    /// A time zone that differs from the stored one is taken only while the system has no session
    /// stored: the stored sessions are instants read in the old zone, and a new reading of the same rows
    /// would lay other instants beside them. Otherwise `Failure::Config` says how to change it on purpose.
    pub fn prepare_run(
        &mut self,
        name: &str,
        time_zone: &str,
        now: NaiveDateTime,
    ) -> anyhow::Result<RunFacts> {
        // One transaction, for the reason `start_run` gives.
        self.transaction(|ops| Self::prepare_run_in(ops, name, time_zone, now))
    }

    fn prepare_run_in(
        ops: &mut (dyn WfmOps + Send),
        name: &str,
        time_zone: &str,
        now: NaiveDateTime,
    ) -> anyhow::Result<RunFacts> {
        let (system_id, stored_zone) = ops.register_system(name, time_zone)?;
        if stored_zone != time_zone {
            match ops.count_sessions(system_id)? {
                0 => ops.set_time_zone(system_id, time_zone)?,
                n => return Err(zone_changed(name, &stored_zone, time_zone, n).into()),
            }
        }
        let abandoned = ops.abandon_running(system_id, now)?;
        if abandoned > 0 {
            tracing::warn!(
                system = %name,
                abandoned,
                "marked runs left running by a stopped process as abandoned"
            );
        }
        Ok(RunFacts {
            system_id,
            watermark: ops.load_watermark(system_id)?,
            last_full_sync: ops.last_full_sync(system_id)?,
        })
    }

    /// The start of the oldest session of the system stored open that starts before `before`.
    pub fn oldest_open_before(
        &mut self,
        system_id: i64,
        before: NaiveDateTime,
    ) -> anyhow::Result<Option<NaiveDateTime>> {
        Ok(self.ops().oldest_open_before(system_id, before)?)
    }

    /// The local days changes runs of the system `name` wrote to since each day's last full sync.
    pub fn changed_days(&mut self, name: &str) -> anyhow::Result<Vec<chrono::NaiveDate>> {
        use schema::external_systems::dsl as s;
        let id: Option<i64> = match &mut self.conn {
            Wfm::Postgres(c) => s::external_systems
                .filter(s::name.eq(name))
                .select(s::id)
                .first(c),
            Wfm::Sqlite(c, _) => s::external_systems
                .filter(s::name.eq(name))
                .select(s::id)
                .first(c),
        }
        .optional()?;
        match id {
            Some(id) => Ok(self.ops().changed_days(id)?),
            None => Ok(Vec::new()),
        }
    }

    /// Writes the `import_runs` row of a run starting now, and returns its id.
    /// In a transaction of its own: SQLite commits an autocommit `INSERT … RETURNING` when the statement
    /// is reset, and a full disk there would go unseen (Diesel does not check the reset), leaving a run
    /// without its row; a COMMIT reports it.
    pub fn start_run(&mut self, run: &models::NewImportRun) -> anyhow::Result<i64> {
        self.transaction(|ops| Ok(ops.start_run(run)?))
    }

    /// Records a failed run (its error, passwords removed); a failure to record it is logged.
    pub fn record_failure(&mut self, run_id: i64, now: NaiveDateTime, error: &anyhow::Error) {
        if let Err(e) = self
            .ops()
            .finish_run(run_id, &models::RunOutcome::failed(now, error))
        {
            tracing::error!(run_id, error = %e, "could not record the failure in import_runs");
        }
    }
}

fn zone_changed(name: &str, stored: &str, configured: &str, sessions: i64) -> Failure {
    Failure::Config(format!(
        "system {name:?}: time_zone is {configured:?} in the config file, but its {sessions} stored session(s) were read in {stored:?} (external_systems.time_zone); nothing was synced. If {configured:?} is right, change it on purpose: UPDATE external_systems SET time_zone = '{configured}' WHERE name = '{name}', then sync again every day that holds sessions (acdsync sync --from FIRST --to LAST) so that each is read anew (see docs/dba.md, \"Changing a system's time zone\"); otherwise put {stored:?} back in the config file"
    ))
}

/// What the store knows of a system when a run starts.
#[derive(Clone, Debug)]
pub struct RunFacts {
    pub system_id: i64,
    /// (kind, value) of the watermark, if incremental mode has set one.
    pub watermark: Option<(String, String)>,
    /// When the last successful full sync of the latest day synced in full started.
    pub last_full_sync: Option<NaiveDateTime>,
}

/// The run lock is released before the connection closes: PostgreSQL frees a closed session's advisory lock
/// only once its backend has noticed, and a run started right after must find it free.
impl Drop for Store {
    fn drop(&mut self) {
        self.unlock();
    }
}

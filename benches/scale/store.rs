//! The WFM stores acdsync writes to (PostgreSQL, SQLite): a fresh store for a step, its URL, and the counts
//! of the last `import_runs` row.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use crate::bench::Bench;
use crate::db::{psql, recreate_database, PG_HOST, PG_PORT, PG_USER, WFM_DB};
use crate::report::thousands;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Postgres,
    Sqlite,
}

impl Store {
    pub fn name(self) -> &'static str {
        match self {
            Store::Postgres => "PostgreSQL",
            Store::Sqlite => "SQLite",
        }
    }
    pub fn short(self) -> &'static str {
        match self {
            Store::Postgres => "pg",
            Store::Sqlite => "sqlite",
        }
    }
}

/// The counts of one `import_runs` row.
#[derive(Debug, Default, Clone)]
pub struct ImportRun {
    pub status: String,
    pub rows_read: i64,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
    pub rejected: i64,
}

impl ImportRun {
    pub fn written(&self) -> i64 {
        self.inserted + self.updated + self.deleted
    }
    pub fn describe(&self) -> String {
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

impl Bench {
    fn store_dir(&self) -> PathBuf {
        self.work.join("store")
    }

    fn sqlite_file(&self) -> PathBuf {
        self.store_dir().join("wfm.db")
    }

    pub fn database_url(&self, store: Store) -> String {
        match store {
            Store::Postgres => format!("postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{WFM_DB}"),
            Store::Sqlite => format!("sqlite://{}", self.sqlite_file().display()),
        }
    }

    /// Drops and creates the store (empty, not migrated).
    pub fn fresh_store(&self, store: Store) -> anyhow::Result<()> {
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

    pub fn last_run(&self, store: Store) -> anyhow::Result<ImportRun> {
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
}

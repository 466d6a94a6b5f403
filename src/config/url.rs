//! The WFM database URL: which store it names, and its password kept out of messages.

use std::path::PathBuf;

use crate::error::Failure;
use crate::secrets;

/// The WFM database: its URL (may hold a password), the backend it names, and how long its connections
/// wait (`Waits`).
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
    waits: Waits,
}

/// How long a connection to the WFM database waits, at most: for a lock another session holds (a DBA's
/// `LOCK TABLE`, DDL, another writer of an SQLite file), for one statement, and to connect. A run that times
/// out fails with a message naming what it waited for (`[wfm]` lock_timeout, statement_timeout,
/// connect_timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waits {
    pub lock: std::time::Duration,
    pub statement: std::time::Duration,
    pub connect: std::time::Duration,
    /// Connecting again when the server cannot be reached (`connect_retries`, `connect_retry_delay`).
    pub retry: crate::retry::Retry,
}

impl Default for Waits {
    fn default() -> Waits {
        Waits {
            lock: std::time::Duration::from_secs(30),
            statement: std::time::Duration::from_secs(15 * 60),
            connect: std::time::Duration::from_secs(15),
            retry: crate::retry::Retry::default(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.display())
    }
}

/// Which store a URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    /// The SQLite file path.
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// Checks the scheme and registers the password for redaction.
    pub fn new(url: impl Into<String>) -> Result<Self, Failure> {
        let url = url.into();
        secrets::register_url_password(&url);
        let me = DatabaseUrl {
            url,
            waits: Waits::default(),
        };
        me.backend()?;
        Ok(me)
    }

    pub fn backend(&self) -> Result<Backend, Failure> {
        let u = self.url.trim();
        if u.starts_with("postgres://") || u.starts_with("postgresql://") {
            // libpq would read a URL that does not parse in its own way (a `/` in the password becomes
            // a port) and quote parts of it back.
            url::Url::parse(u).map_err(|e| {
                Failure::Config(format!(
                    "the WFM database URL cannot be read as a URL ({e}): write it postgres://USER:PASSWORD@HOST:PORT/DB, with / @ : ? # % in the password percent-encoded (%2F %40 %3A %3F %23 %25)"
                ))
            })?;
            Ok(Backend::Postgres)
        } else if let Some(path) = u
            .strip_prefix("sqlite://")
            .or_else(|| u.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(Failure::Config(
                    "the WFM database URL 'sqlite://' names no file".into(),
                ));
            }
            Ok(Backend::Sqlite(PathBuf::from(path)))
        } else {
            // (Not shown: a malformed URL's password cannot be told from the rest.)
            Err(Failure::Config(
                "the WFM database URL must start with postgres://, postgresql:// or sqlite:// (e.g. sqlite://wfm.db); the one given does not (it is not shown: it may hold a password)".into(),
            ))
        }
    }

    /// The URL as given (with its password): only for connecting.
    pub fn expose(&self) -> &str {
        self.url.trim()
    }

    /// A PostgreSQL URL as given, with libpq's `connect_timeout` (seconds, at least 2) unless it names one:
    /// only for connecting.
    pub fn expose_with_connect_timeout(&self, timeout: std::time::Duration) -> String {
        let url = self.expose();
        if url.contains("connect_timeout=") {
            return url.to_owned();
        }
        let separator = if url.contains('?') { '&' } else { '?' };
        format!(
            "{url}{separator}connect_timeout={}",
            timeout.as_secs().max(2)
        )
    }

    pub fn with_waits(mut self, waits: Waits) -> DatabaseUrl {
        self.waits = waits;
        self
    }

    pub fn waits(&self) -> Waits {
        self.waits
    }

    /// The URL with its password replaced, for messages.
    pub fn display(&self) -> String {
        secrets::redact(self.url.trim())
    }
}

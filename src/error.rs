//! Outcomes an operator must tell apart, each with its exit code. Everything else is an `anyhow` error
//! with context, exit code 1.

/// Exit codes (also in the README). 2 is clap's usage error.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const SCHEMA_BEHIND: u8 = 3;
    /// A mapping command refused: a rule forbids it, or a name or a CSV line is wrong.
    pub const REFUSED: u8 = 65;
    /// The mass-delete guard refused a sync: it would have deleted most of a window (nothing written).
    pub const MASS_DELETE: u8 = 66;
    pub const UNAVAILABLE: u8 = 69;
    pub const LOCK_HELD: u8 = 75;
    pub const CONFIG: u8 = 78;
    /// Plus the signal's number: 143 for SIGTERM, 130 for SIGINT.
    pub const INTERRUPTED: u8 = 128;
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The command line is wrong (what clap cannot check by itself).
    #[error("{0}")]
    Usage(String),
    /// A setting, the config file or an SQL file is wrong; the message names it.
    #[error("{0}")]
    Config(String),
    /// The WFM database has migrations still to apply.
    #[error(
        "the WFM database schema is behind this acdsync: {pending} migration(s) not applied ({names}); run `acdsync migrate` first"
    )]
    SchemaBehind { pending: usize, names: String },
    /// The WFM database or a source cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// Another acdsync holds the run lock of this WFM database.
    #[error("another acdsync run is in progress on {0}; this run did nothing")]
    LockHeld(String),
    /// A wait on the WFM database ran out ([wfm] lock_timeout): another session holds a lock.
    #[error("{0}")]
    LockTimeout(String),
    /// A mapping command (`crate::admin`) refused what a rule forbids, or an unknown name, or a bad CSV
    /// line; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// The mass-delete guard (`crate::sync::guard`) refused a full sync; the message has the numbers, what
    /// to check and how to override.
    #[error("{0}")]
    MassDelete(String),
    /// SIGTERM or SIGINT: the run stopped at a safe point and rolled back (`crate::stop`).
    #[error("interrupted by {}: the run stopped and rolled back, nothing of it was kept", crate::stop::name(*.0))]
    Interrupted(i32),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => exit::USAGE,
            Failure::Config(_) => exit::CONFIG,
            Failure::SchemaBehind { .. } => exit::SCHEMA_BEHIND,
            Failure::Unavailable(_) => exit::UNAVAILABLE,
            Failure::Refused(_) => exit::REFUSED,
            Failure::MassDelete(_) => exit::MASS_DELETE,
            Failure::LockHeld(_) | Failure::LockTimeout(_) => exit::LOCK_HELD,
            Failure::Interrupted(signal) => exit::INTERRUPTED + *signal as u8,
        }
    }
}

/// Context of an error that came after a run committed: its sessions and its `succeeded` row are stored,
/// so the report must not say that nothing was written.
#[derive(Debug)]
pub struct AfterCommit;

impl std::fmt::Display for AfterCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the run was committed (its import_runs row says succeeded), then this failed")
    }
}

/// Whether an error came after its run committed (`AfterCommit`).
pub fn after_commit(err: &anyhow::Error) -> bool {
    err.downcast_ref::<AfterCommit>().is_some()
}

/// Whether an error is a COMMIT whose connection was lost: the server may or may not have committed, so
/// the report must not say that nothing was written (`import_runs` tells: `succeeded`, or `running` until the
/// next sync marks it `abandoned`).
pub fn commit_in_doubt(err: &anyhow::Error) -> bool {
    let text = format!("{err:#}");
    text.contains("committing the transaction to")
        && [
            "server closed the connection",
            "connection has been closed unexpectedly",
            "terminating connection",
            "connection to server",
            "no connection to the server",
        ]
        .iter()
        .any(|lost| text.contains(lost))
}

/// The exit code for an error chain: the first `Failure` in it decides, otherwise 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    failure_of(err).map_or(exit::FAILED, Failure::exit_code)
}

/// The `Failure` an error chain holds: given as context (`anyhow` finds a context's type) or as a cause.
pub fn failure_of(err: &anyhow::Error) -> Option<&Failure> {
    err.downcast_ref::<Failure>()
        .or_else(|| err.chain().find_map(|e| e.downcast_ref::<Failure>()))
}

/// Whether an error chain is an interruption (SIGTERM, SIGINT).
pub fn interrupted(err: &anyhow::Error) -> bool {
    matches!(failure_of(err), Some(Failure::Interrupted(_)))
}

/// A failure of the WFM database said as what happened: a lock held by another session (PostgreSQL's
/// lock_timeout, SQLite's busy timeout: exit 75, retry later), a statement longer than statement_timeout, or
/// an SQLite file or folder this process may not write ("readonly database": exit 78). Other errors come back
/// as they are.
pub fn explain_store_error(err: anyhow::Error, url: &crate::config::DatabaseUrl) -> anyhow::Error {
    let waits = url.waits();
    // A statement cancelled on SIGTERM or SIGINT (`crate::stop`) is the interruption, whatever it said.
    let err = crate::stop::interrupted_if_signalled(err);
    if crate::error::interrupted(&err) {
        return err;
    }
    if matches!(failure_of(&err), Some(Failure::LockTimeout(_))) {
        return err;
    }
    let text = format!("{err:#}");
    if text.contains("is not writable by this process") {
        return err; // said already
    }
    let took = |d: std::time::Duration| humantime::format_duration(d).to_string();
    if text.contains("canceling statement due to lock timeout")
        || text.contains("database is locked")
    {
        let why = format!(
            "waited [wfm] lock_timeout ({}) for a lock on the WFM database that another session holds (a DBA's LOCK TABLE or ALTER TABLE, a long transaction, another program writing the SQLite file); nothing was written: see pg_locks and pg_stat_activity, or retry later",
            took(waits.lock)
        );
        Failure::LockTimeout(format!("{why} ({text})")).into()
    } else if text.contains("attempt to write a readonly database") {
        Failure::Config(format!(
            "{} is not writable by this process (uid {}): SQLite writes FILE-wal and FILE-shm beside the file, so the file, these two if they exist, and its folder must all be writable; check their owner and mode ({text})",
            not_writable(url),
            process_uid()
        ))
        .into()
    } else if (text.contains("database or disk is full") || text.contains("disk I/O error"))
        && sqlite_file(url).is_some_and(|f| !text.contains(&f))
    {
        err.context(format!(
            "the WFM database file {}: its disk is full or failing; nothing of this run was kept (SQLite rolled it back): free space or fix the disk, then sync again",
            sqlite_file(url).unwrap_or_default()
        ))
    } else if text.contains("canceling statement due to statement timeout") {
        err.context(format!(
            "a statement on the WFM database ran longer than [wfm] statement_timeout ({}); nothing was written",
            took(waits.statement)
        ))
    } else {
        err
    }
}

/// Which of an SQLite store's file, its `-wal` and `-shm` files and its folder this process may not write,
/// named with their modes (a `-shm` left read-only by a run on a read-only file keeps the store read-only
/// after the file is made writable again).
fn not_writable(url: &crate::config::DatabaseUrl) -> String {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let Ok(crate::config::Backend::Sqlite(file)) = url.backend() else {
        return "the WFM database".into();
    };
    let folder = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    let with = |suffix: &str| {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    let denied: Vec<String> = [file.clone(), with("-wal"), with("-shm"), folder]
        .into_iter()
        .filter(|p| p.exists())
        .filter(|p| {
            let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
                return false;
            };
            // Safety: a valid C string; access(2) only reads it.
            unsafe { libc::access(c.as_ptr(), libc::W_OK) != 0 }
        })
        .map(|p| {
            let mode = std::fs::metadata(&p).map_or(0, |m| m.permissions().mode() & 0o7777);
            format!("{} (mode {mode:04o})", p.display())
        })
        .collect();
    match denied.len() {
        0 => format!("the WFM database {} or a file beside it", file.display()),
        _ => denied.join(", "),
    }
}

/// The file of an SQLite store, as messages name it.
fn sqlite_file(url: &crate::config::DatabaseUrl) -> Option<String> {
    match url.backend() {
        Ok(crate::config::Backend::Sqlite(path)) => Some(path.display().to_string()),
        _ => None,
    }
}

/// This process's user id, for messages (from /proc; "?" elsewhere).
fn process_uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        })
        .unwrap_or_else(|| "?".into())
}

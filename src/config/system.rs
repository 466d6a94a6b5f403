//! One `[[system]]` of the configuration: its section as written, checked into an `ExternalSystemConfig`.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;

use super::paths::{read_secret_file, resolve};
use crate::error::Failure;
use crate::secrets;
use crate::source::query::{QueryKind, SourceQuery, WatermarkKind, WindowParameters};
use crate::source::{Shape, Spec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SystemSection {
    name: String,
    time_zone: String,
    sql_file: PathBuf,
    #[serde(default)]
    shape: Shape,
    connection_string: Option<String>,
    connection_string_env: Option<String>,
    connection_string_file: Option<PathBuf>,
    #[serde(default)]
    window_parameters: WindowParameters,
    #[serde(default = "default_max_session_hours")]
    max_session_hours: u32,
    #[serde(default = "default_batch_rows")]
    batch_rows: usize,
    #[serde(default = "default_max_text_bytes")]
    max_text_bytes: usize,
    query_timeout_seconds: Option<usize>,
    connect_retries: Option<u32>,
    connect_retry_delay: Option<String>,
    #[serde(default = "default_mass_delete_share")]
    mass_delete_share: f64,
    #[serde(default = "default_mass_delete_min_sessions")]
    mass_delete_min_sessions: u64,
    #[serde(default)]
    allow_mass_delete: bool,
    incremental: Option<IncrementalSection>,
}

fn default_mass_delete_share() -> f64 {
    0.5
}
fn default_mass_delete_min_sessions() -> u64 {
    20
}

/// The mass-delete guard of one system (`crate::sync::guard`): a full sync may delete at most `share` of
/// the window's stored sessions once they are `min_sessions` or more, and never all of them on an empty
/// source result; `allowed` lets one sync through (`--allow-mass-delete`, `allow_mass_delete = true`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeleteGuard {
    pub share: f64,
    pub min_sessions: u64,
    pub allowed: bool,
}

impl Default for DeleteGuard {
    fn default() -> DeleteGuard {
        DeleteGuard {
            share: default_mass_delete_share(),
            min_sessions: default_mass_delete_min_sessions(),
            allowed: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncrementalSection {
    sql_file: PathBuf,
    watermark: WatermarkKind,
    #[serde(default = "default_full_sync_every")]
    full_sync_every: String,
}

fn default_full_sync_every() -> String {
    "1h".into()
}

/// Incremental mode of one system: read only what changed since the last run's watermark, with a full
/// sync of the day every `full_sync_every` to catch what a changes query cannot see (deleted rows).
#[derive(Debug, Clone)]
pub struct IncrementalConfig {
    pub query: SourceQuery,
    pub watermark: WatermarkKind,
    pub full_sync_every: std::time::Duration,
}

fn default_max_session_hours() -> u32 {
    24
}
fn default_batch_rows() -> usize {
    10_000
}
fn default_max_text_bytes() -> usize {
    255
}

/// Where a system's ODBC connection string comes from. Debug never shows an inline string (passwords).
#[derive(Clone)]
enum ConnectionSource {
    Inline(String),
    Env(String),
    File(PathBuf),
}

impl std::fmt::Debug for ConnectionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionSource::Inline(_) => f.write_str("Inline(..)"),
            ConnectionSource::Env(v) => write!(f, "Env({v})"),
            ConnectionSource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

/// One external system, checked.
#[derive(Debug, Clone)]
pub struct ExternalSystemConfig {
    pub name: String,
    pub time_zone: Tz,
    pub query: SourceQuery,
    /// What the query returns: sessions, or events acdsync pairs into sessions.
    pub shape: Shape,
    connection: ConnectionSource,
    pub window_parameters: WindowParameters,
    pub max_session_hours: u32,
    pub batch_rows: usize,
    pub max_text_bytes: usize,
    pub query_timeout_seconds: Option<usize>,
    /// Connecting to the source again when it cannot be reached.
    pub retry: crate::retry::Retry,
    pub incremental: Option<IncrementalConfig>,
    /// What one full sync may delete.
    pub delete_guard: DeleteGuard,
}

impl ExternalSystemConfig {
    /// A system built in code (tests, the demo); the same checks as the file.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        time_zone: &str,
        query: SourceQuery,
        connection_string: &str,
        window_parameters: WindowParameters,
    ) -> Result<Self, Failure> {
        let section = SystemSection {
            name: name.into(),
            time_zone: time_zone.into(),
            sql_file: query.path().to_path_buf(),
            shape: match query.kind() {
                QueryKind::Events => Shape::Events,
                _ => Shape::Sessions,
            },
            connection_string: Some(connection_string.into()),
            connection_string_env: None,
            connection_string_file: None,
            window_parameters,
            max_session_hours: default_max_session_hours(),
            batch_rows: default_batch_rows(),
            max_text_bytes: default_max_text_bytes(),
            query_timeout_seconds: None,
            connect_retries: None,
            connect_retry_delay: None,
            mass_delete_share: default_mass_delete_share(),
            mass_delete_min_sessions: default_mass_delete_min_sessions(),
            allow_mass_delete: false,
            incremental: None,
        };
        check_system(section, Some(query), Path::new("."))
    }

    /// The same system in incremental mode (tests): `changes` holds the changes query.
    pub fn with_incremental(
        mut self,
        changes: SourceQuery,
        watermark: WatermarkKind,
        full_sync_every: std::time::Duration,
    ) -> Self {
        self.incremental = Some(IncrementalConfig {
            query: changes,
            watermark,
            full_sync_every,
        });
        self
    }

    /// What the source needs to read this system: its connection string is read now (see
    /// `connection_string`).
    pub fn source_spec(&self) -> Result<Spec<'_>, Failure> {
        Ok(Spec {
            system: &self.name,
            connection_string: self.connection_string()?,
            window_parameters: self.window_parameters,
            batch_rows: self.batch_rows,
            max_text_bytes: self.max_text_bytes,
            query_timeout_seconds: self.query_timeout_seconds,
            change_key: self.incremental.is_some(),
            shape: self.shape,
            retry: self.retry,
        })
    }

    /// The ODBC connection string (may hold a password): only for connecting. Read from the environment
    /// or its file now; its password is registered for redaction before anything can print it.
    pub fn connection_string(&self) -> Result<String, Failure> {
        let at = |setting: &str| format!("system {:?}: {setting}", self.name);
        let cs = match &self.connection {
            ConnectionSource::Inline(c) => return Ok(c.clone()),
            ConnectionSource::Env(var) => std::env::var(var).map_err(|_| {
                Failure::Config(format!(
                    "{}: the environment variable {var} is not set (it should hold the ODBC connection string)",
                    at("connection_string_env")
                ))
            })?,
            ConnectionSource::File(path) => read_secret_file(path, &at("connection_string_file"))?,
        };
        secrets::register_odbc_password(&cs);
        if cs.trim().is_empty() {
            return Err(Failure::Config(format!(
                "{}: the ODBC connection string is empty",
                at("connection")
            )));
        }
        Ok(cs)
    }
}

pub(super) fn check_system(
    s: SystemSection,
    query: Option<SourceQuery>,
    base: &Path,
) -> Result<ExternalSystemConfig, Failure> {
    let name = s.name.trim().to_owned();
    if name.is_empty() || name.len() > 100 {
        return Err(Failure::Config(
            "[[system]] name must be 1 to 100 characters".into(),
        ));
    }
    let at = |setting: &str| format!("system {name:?}: {setting}");
    let time_zone: Tz = s.time_zone.parse().map_err(|_| {
        Failure::Config(format!(
            "{} {:?} is not an IANA time zone name (e.g. Europe/Paris, America/New_York, UTC)",
            at("time_zone"),
            s.time_zone
        ))
    })?;
    // Inline strings are checked now; environment variables and files are read when the system is synced,
    // so that `sync --system a` does not need system b's secret.
    let connection = match (s.connection_string, s.connection_string_env, s.connection_string_file) {
        (Some(c), None, None) => {
            secrets::register_odbc_password(&c);
            if c.trim().is_empty() {
                return Err(Failure::Config(format!("{}: the ODBC connection string is empty", at("connection_string"))));
            }
            ConnectionSource::Inline(c)
        }
        (None, Some(var), None) => ConnectionSource::Env(var),
        (None, None, Some(f)) => ConnectionSource::File(resolve(base, &f)),
        _ => {
            return Err(Failure::Config(format!(
                "{}: set exactly one of connection_string, connection_string_env, connection_string_file",
                at("connection")
            )))
        }
    };
    if s.batch_rows == 0 || s.batch_rows > 1_000_000 {
        return Err(Failure::Config(format!(
            "{} must be between 1 and 1000000",
            at("batch_rows")
        )));
    }
    if !(8..=65_536).contains(&s.max_text_bytes) {
        return Err(Failure::Config(format!(
            "{} must be between 8 and 65536",
            at("max_text_bytes")
        )));
    }
    if s.max_session_hours == 0 || s.max_session_hours > 24 * 31 {
        return Err(Failure::Config(format!(
            "{} must be between 1 and 744",
            at("max_session_hours")
        )));
    }
    if !(s.mass_delete_share > 0.0 && s.mass_delete_share <= 1.0) {
        return Err(Failure::Config(format!(
            "{} must be above 0 and at most 1 (the share of a window's stored sessions one sync may delete)",
            at("mass_delete_share")
        )));
    }
    if s.mass_delete_min_sessions == 0 {
        return Err(Failure::Config(format!(
            "{} must be at least 1",
            at("mass_delete_min_sessions")
        )));
    }
    let query = match query {
        Some(q) => q,
        None => {
            let kind = match s.shape {
                Shape::Sessions => QueryKind::Window,
                Shape::Events => QueryKind::Events,
            };
            SourceQuery::load(&resolve(base, &s.sql_file), kind)
                .map_err(|e| Failure::Config(at(&e.to_string())))?
        }
    };
    if s.shape == Shape::Events
        && s.incremental
            .as_ref()
            .is_some_and(|i| i.watermark != WatermarkKind::Integer)
    {
        return Err(Failure::Config(at(
            "incremental.watermark: an events system reads its changes by its sequence column: set watermark = \"integer\" (see docs/incremental.md)",
        )));
    }
    let retry = super::retry_settings(
        s.connect_retries,
        s.connect_retry_delay.as_deref(),
        &at("connect_retries"),
    )?;
    let incremental = match s.incremental {
        None => None,
        Some(i) => {
            let every = humantime::parse_duration(i.full_sync_every.trim()).map_err(|e| {
                Failure::Config(format!(
                    "{} {:?}: {e} (write e.g. \"30m\", \"1h\", \"6h\")",
                    at("incremental.full_sync_every"),
                    i.full_sync_every
                ))
            })?;
            let query = SourceQuery::load(&resolve(base, &i.sql_file), QueryKind::Changes)
                .map_err(|e| Failure::Config(at(&format!("incremental.{e}"))))?;
            Some(IncrementalConfig {
                query,
                watermark: i.watermark,
                full_sync_every: every,
            })
        }
    };
    Ok(ExternalSystemConfig {
        name,
        time_zone,
        query,
        shape: s.shape,
        connection,
        window_parameters: s.window_parameters,
        max_session_hours: s.max_session_hours,
        batch_rows: s.batch_rows,
        max_text_bytes: s.max_text_bytes,
        query_timeout_seconds: s.query_timeout_seconds,
        retry,
        incremental,
        delete_guard: DeleteGuard {
            share: s.mass_delete_share,
            min_sessions: s.mass_delete_min_sessions,
            allowed: s.allow_mass_delete,
        },
    })
}

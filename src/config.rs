//! The configuration file (TOML), its environment overrides, and validation that names the setting at fault.
//! Every setting is documented with an example in the README ("Configuration").

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;

use crate::error::Failure;
use crate::secrets;
use crate::source::query::{QueryKind, SourceQuery};

/// Environment variable that overrides `[wfm] database_url`.
pub const DATABASE_URL_ENV: &str = "ACDSYNC_DATABASE_URL";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    wfm: WfmSection,
    #[serde(default, rename = "system")]
    systems: Vec<SystemSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WfmSection {
    database_url: Option<String>,
    database_url_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemSection {
    name: String,
    time_zone: String,
    sql_file: PathBuf,
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
    incremental: Option<IncrementalSection>,
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

/// What a system's change key is (incremental mode).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WatermarkKind {
    /// A monotonic integer: an id or a sequence the source sets on every insert and change.
    Integer,
    /// An insert or change timestamp the source sets on every insert and change.
    Timestamp,
}

impl WatermarkKind {
    pub fn name(self) -> &'static str {
        match self {
            WatermarkKind::Integer => "integer",
            WatermarkKind::Timestamp => "timestamp",
        }
    }
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

/// How the window bounds reach the SQL file's placeholders.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WindowParameters {
    /// `?` placeholders with bound ODBC timestamp parameters.
    #[default]
    Bound,
    /// SQL literals `'YYYY-MM-DD HH:MM:SS'` written from the program's own chrono values, for drivers that
    /// stop streaming when parameters are bound (SQLite ODBC).
    Literal,
}

/// The WFM database: its URL (may hold a password) and the backend it names.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
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
        let me = DatabaseUrl { url };
        me.backend()?;
        Ok(me)
    }

    pub fn backend(&self) -> Result<Backend, Failure> {
        let u = self.url.trim();
        if u.starts_with("postgres://") || u.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if let Some(path) = u
            .strip_prefix("sqlite://")
            .or_else(|| u.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(Failure::Config(
                    "WFM database URL 'sqlite://' names no file".into(),
                ));
            }
            Ok(Backend::Sqlite(PathBuf::from(path)))
        } else {
            Err(Failure::Config(format!(
                "WFM database URL {:?} must start with postgres://, postgresql:// or sqlite:// (e.g. sqlite://wfm.db)",
                self.display()
            )))
        }
    }

    /// The URL as given (with its password): only for connecting.
    pub fn expose(&self) -> &str {
        self.url.trim()
    }

    /// The URL with its password replaced, for messages.
    pub fn display(&self) -> String {
        secrets::redact(self.url.trim())
    }
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
    connection: ConnectionSource,
    pub window_parameters: WindowParameters,
    pub max_session_hours: u32,
    pub batch_rows: usize,
    pub max_text_bytes: usize,
    pub query_timeout_seconds: Option<usize>,
    pub incremental: Option<IncrementalConfig>,
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
            connection_string: Some(connection_string.into()),
            connection_string_env: None,
            connection_string_file: None,
            window_parameters,
            max_session_hours: default_max_session_hours(),
            batch_rows: default_batch_rows(),
            max_text_bytes: default_max_text_bytes(),
            query_timeout_seconds: None,
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

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub systems: Vec<ExternalSystemConfig>,
}

impl Config {
    /// Reads and checks the file; `ACDSYNC_DATABASE_URL` overrides the WFM database URL.
    pub fn load(path: &Path) -> Result<Config, Failure> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let env_url = std::env::var(DATABASE_URL_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty());
        Self::parse(&text, path, env_url)
    }

    /// `path` names the file in messages; relative paths in it are resolved against its folder.
    pub fn parse(
        text: &str,
        path: &Path,
        env_database_url: Option<String>,
    ) -> Result<Config, Failure> {
        let file: ConfigFile = toml::from_str(text)
            .map_err(|e| Failure::Config(format!("config file {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));

        let database_url = file.wfm.resolve(env_database_url, path)?;

        let mut systems: Vec<ExternalSystemConfig> = Vec::new();
        for section in file.systems {
            let system = check_system(section, None, base)
                .map_err(|e| Failure::Config(format!("config file {}: {e}", path.display())))?;
            if systems.iter().any(|s| s.name == system.name) {
                return Err(Failure::Config(format!(
                    "config file {}: two [[system]] entries are named {:?}; names must be unique",
                    path.display(),
                    system.name
                )));
            }
            systems.push(system);
        }
        Ok(Config {
            database_url,
            systems,
        })
    }
}

/// The file as `migrate` reads it: only `[wfm]` matters, the systems are not checked (their secrets need
/// not be present at deploy time).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WfmOnlyFile {
    wfm: WfmSection,
    #[serde(default, rename = "system")]
    _systems: Vec<toml::Table>,
}

impl WfmSection {
    fn resolve(
        self,
        env_database_url: Option<String>,
        path: &Path,
    ) -> Result<DatabaseUrl, Failure> {
        let base = path.parent().unwrap_or(Path::new("."));
        let at = |setting: &str| format!("config file {}: {setting}", path.display());
        let url = match (env_database_url, self.database_url, self.database_url_file) {
            (Some(env), _, _) => env,
            (None, Some(_), Some(_)) => {
                return Err(Failure::Config(format!("{}: set database_url or database_url_file, not both", at("[wfm]"))))
            }
            // A relative SQLite path written in the file is relative to the file, like every path in it.
            (None, Some(u), None) => relative_sqlite_to(base, u),
            (None, None, Some(f)) => relative_sqlite_to(base, read_secret_file(&resolve(base, &f), &at("[wfm] database_url_file"))?),
            (None, None, None) => {
                return Err(Failure::Config(format!(
                    "{}: no WFM database: set database_url, database_url_file or the environment variable {DATABASE_URL_ENV}",
                    at("[wfm]")
                )))
            }
        };
        DatabaseUrl::new(url).map_err(|e| Failure::Config(format!("{}: {e}", at("[wfm]"))))
    }
}

impl Config {
    /// The WFM database URL only (for `migrate`): `ACDSYNC_DATABASE_URL`, else the file's `[wfm]`.
    pub fn load_database_url(path: &Path) -> Result<DatabaseUrl, Failure> {
        let env_url = std::env::var(DATABASE_URL_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty());
        if !path.exists() {
            if let Some(u) = env_url {
                return DatabaseUrl::new(u);
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Config(format!(
                "cannot read config file {}: {e} (or give the WFM database with --database-url / {DATABASE_URL_ENV})",
                path.display()
            ))
        })?;
        let file: WfmOnlyFile = toml::from_str(&text)
            .map_err(|e| Failure::Config(format!("config file {}: {e}", path.display())))?;
        file.wfm.resolve(env_url, path)
    }
}

/// `sqlite://wfm.db` in a config file at /etc/acdsync/ names /etc/acdsync/wfm.db.
fn relative_sqlite_to(base: &Path, url: String) -> String {
    let trimmed = url.trim();
    let path = trimmed
        .strip_prefix("sqlite://")
        .or_else(|| trimmed.strip_prefix("sqlite:"));
    match path {
        Some(p) if !p.is_empty() && Path::new(p).is_relative() && !base.as_os_str().is_empty() => {
            format!("sqlite://{}", base.join(p).display())
        }
        _ => url,
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn read_secret_file(path: &Path, setting: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| Failure::Config(format!("{setting}: cannot read {}: {e}", path.display())))
}

fn check_system(
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
    let query = match query {
        Some(q) => q,
        None => SourceQuery::load(&resolve(base, &s.sql_file))
            .map_err(|e| Failure::Config(at(&e.to_string())))?,
    };
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
            let query = SourceQuery::load_kind(&resolve(base, &i.sql_file), QueryKind::Changes)
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
        connection,
        window_parameters: s.window_parameters,
        max_session_hours: s.max_session_hours,
        batch_rows: s.batch_rows,
        max_text_bytes: s.max_text_bytes,
        query_timeout_seconds: s.query_timeout_seconds,
        incremental,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const SQL: &str = "SELECT a, b, c, d FROM t WHERE c >= {lookback_start} AND c < {window_end} AND (c >= {window_start} OR d IS NULL OR d >= {window_start})";

    #[test]
    fn a_full_file_loads_with_defaults_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "q.sql", SQL);
        let cfg = write(
            dir.path(),
            "acdsync.toml",
            "[wfm]\ndatabase_url = \"sqlite://wfm.db\"\n\n[[system]]\nname = \"paris\"\ntime_zone = \"Europe/Paris\"\nsql_file = \"q.sql\"\nconnection_string = \"Driver=SQLite3;Database=/tmp/x.db\"\n",
        );
        let c = Config::load(&cfg).unwrap();
        assert_eq!(c.systems[0].name, "paris");
        assert_eq!(c.systems[0].batch_rows, 10_000);
        assert_eq!(c.systems[0].window_parameters, WindowParameters::Bound);
        assert_eq!(
            c.database_url.backend().unwrap(),
            Backend::Sqlite(dir.path().join("wfm.db")),
            "a relative SQLite path is relative to the config file"
        );
    }

    #[test]
    fn errors_name_the_file_and_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "q.sql", SQL);
        let cases = [
            ("[wfm]\ndatabase_url = \"sqlite://w.db\"\nbogus = 1\n", "bogus"),
            ("[wfm]\ndatabase_url = \"mysql://x\"\n", "must start with postgres://"),
            ("[wfm]\n", "no WFM database"),
            (
                "[wfm]\ndatabase_url = \"sqlite://w.db\"\n[[system]]\nname = \"s\"\ntime_zone = \"Europe/Pari\"\nsql_file = \"q.sql\"\nconnection_string = \"x\"\n",
                "time_zone \"Europe/Pari\" is not an IANA time zone",
            ),
            (
                "[wfm]\ndatabase_url = \"sqlite://w.db\"\n[[system]]\nname = \"s\"\ntime_zone = \"UTC\"\nsql_file = \"missing.sql\"\nconnection_string = \"x\"\n",
                "missing.sql",
            ),
        ];
        for (text, needle) in cases {
            let p = write(dir.path(), "c.toml", text);
            let err = Config::load(&p).unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should contain {needle:?}");
            assert!(
                err.contains("c.toml") || err.contains("WFM database URL"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_missing_connection_variable_is_reported_for_its_system_when_used() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "q.sql", SQL);
        let p = write(
            dir.path(),
            "c.toml",
            "[wfm]\ndatabase_url = \"sqlite://w.db\"\n[[system]]\nname = \"s\"\ntime_zone = \"UTC\"\nsql_file = \"q.sql\"\nconnection_string_env = \"ACDSYNC_TEST_SURELY_UNSET\"\n",
        );
        let c = Config::load(&p).unwrap();
        let err = c.systems[0].connection_string().unwrap_err().to_string();
        assert!(err.contains("system \"s\": connection_string_env: the environment variable ACDSYNC_TEST_SURELY_UNSET is not set"), "{err}");
        assert!(
            !format!("{c:?}").contains("Driver"),
            "Debug shows no connection string"
        );
    }

    #[test]
    fn the_environment_overrides_the_file_url() {
        let c = Config::parse(
            "[wfm]\ndatabase_url = \"sqlite://a.db\"\n",
            Path::new("x.toml"),
            Some("sqlite://b.db".into()),
        )
        .unwrap();
        assert_eq!(
            c.database_url.backend().unwrap(),
            Backend::Sqlite("b.db".into())
        );
    }
}

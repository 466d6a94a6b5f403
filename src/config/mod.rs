//! The configuration file (TOML), its environment overrides, and validation that names the setting at fault.
//! Every setting is documented with an example in the README ("Configuration").
//!
//! `system.rs` checks a `[[system]]`, `url.rs` the WFM database URL.

mod paths;
mod system;
mod url;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Failure;
use crate::secrets;
pub use crate::source::query::{WatermarkKind, WindowParameters};
use paths::{read_secret_file, resolve};
use system::{check_system, SystemSection};
pub use system::{DeleteGuard, ExternalSystemConfig, IncrementalConfig};
pub use url::{Backend, DatabaseUrl, Waits};

/// Environment variable that overrides `[wfm] database_url`.
pub const DATABASE_URL_ENV: &str = "ACDSYNC_DATABASE_URL";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    wfm: WfmSection,
    metrics: Option<MetricsSection>,
    #[serde(default, rename = "system")]
    systems: Vec<SystemSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    /// A Prometheus text file written after each sync (node-exporter's textfile collector).
    textfile: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WfmSection {
    database_url: Option<String>,
    database_url_file: Option<PathBuf>,
    /// How long to wait for a lock another session holds (default 30s).
    lock_timeout: Option<String>,
    /// How long one statement may run (default 15m).
    statement_timeout: Option<String>,
    /// How long to wait for a connection (default 15s).
    connect_timeout: Option<String>,
    /// Tries to connect when the server cannot be reached (default 3), the delay between them doubling.
    connect_retries: Option<u32>,
    connect_retry_delay: Option<String>,
}

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub systems: Vec<ExternalSystemConfig>,
    /// `[metrics] textfile`: where each sync writes its metrics (`crate::metrics`).
    pub metrics_textfile: Option<PathBuf>,
}

impl Config {
    /// Reads and checks the file; `ACDSYNC_DATABASE_URL` overrides the WFM database URL.
    pub fn load(path: &Path) -> Result<Config, Failure> {
        Self::load_with_database_url(path, None)
    }

    /// `load`, with a WFM database URL given on the command line (`--database-url`), which overrides
    /// the environment and the file: the file's `[wfm]` then need not name one.
    pub fn load_with_database_url(
        path: &Path,
        database_url: Option<String>,
    ) -> Result<Config, Failure> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let url = database_url.or_else(|| {
            std::env::var(DATABASE_URL_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
        });
        Self::parse(&text, path, url)
    }

    /// `path` names the file in messages; relative paths in it are resolved against its folder.
    pub fn parse(
        text: &str,
        path: &Path,
        env_database_url: Option<String>,
    ) -> Result<Config, Failure> {
        secrets::register_in_text(text);
        let file: ConfigFile = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
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
            metrics_textfile: file.metrics.map(|m| resolve(base, &m.textfile)),
        })
    }
}

impl Config {
    /// The systems `names` asks for (all of them when empty), in the file's order. `path` names the file.
    pub fn systems_named(
        &self,
        names: &[String],
        path: &Path,
    ) -> Result<Vec<&ExternalSystemConfig>, Failure> {
        if let Some(name) = names
            .iter()
            .find(|n| !self.systems.iter().any(|s| &s.name == *n))
        {
            let known: Vec<&str> = self.systems.iter().map(|s| s.name.as_str()).collect();
            return Err(Failure::Config(format!(
                "--system {name:?} is not in {} (systems there: {})",
                path.display(),
                known.join(", ")
            )));
        }
        let systems: Vec<&ExternalSystemConfig> = self
            .systems
            .iter()
            .filter(|s| names.is_empty() || names.contains(&s.name))
            .collect();
        if systems.is_empty() {
            return Err(Failure::Config(format!(
                "{} lists no [[system]] to sync",
                path.display()
            )));
        }
        Ok(systems)
    }
}

/// The file as `migrate` reads it: only `[wfm]` matters, the systems are not checked (their secrets need
/// not be present at deploy time).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WfmOnlyFile {
    wfm: WfmSection,
    #[serde(default, rename = "metrics")]
    _metrics: Option<toml::Table>,
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
        let mut from = at("[wfm] database_url");
        let url = match (env_database_url, self.database_url, self.database_url_file) {
            (Some(env), _, _) => {
                from = format!("--database-url or the environment variable {DATABASE_URL_ENV}");
                env
            }
            (None, Some(_), Some(_)) => {
                return Err(Failure::Config(format!("{}: set database_url or database_url_file, not both", at("[wfm]"))))
            }
            // A relative SQLite path written in the file is relative to the file, like every path in it.
            (None, Some(u), None) => relative_sqlite_to(base, u),
            (None, None, Some(f)) => {
                let file = resolve(base, &f);
                from = format!("{} (the file {})", at("[wfm] database_url_file"), file.display());
                relative_sqlite_to(base, read_secret_file(&file, &at("[wfm] database_url_file"))?)
            }
            (None, None, None) => {
                return Err(Failure::Config(format!(
                    "{}: no WFM database: set database_url, database_url_file or the environment variable {DATABASE_URL_ENV}",
                    at("[wfm]")
                )))
            }
        };
        let mut waits = Waits::default();
        for (setting, value, into) in [
            ("lock_timeout", &self.lock_timeout, &mut waits.lock),
            (
                "statement_timeout",
                &self.statement_timeout,
                &mut waits.statement,
            ),
            ("connect_timeout", &self.connect_timeout, &mut waits.connect),
        ] {
            if let Some(v) = value {
                *into = humantime::parse_duration(v.trim())
                    .ok()
                    .filter(|d| d.as_millis() >= 1 && d.as_secs() <= 7 * 24 * 3600)
                    .ok_or_else(|| {
                        Failure::Config(format!(
                            "{} {v:?}: write a duration from 1ms to 7 days, e.g. \"30s\", \"5m\"",
                            at(&format!("[wfm] {setting}"))
                        ))
                    })?;
            }
        }
        waits.retry = retry_settings(
            self.connect_retries,
            self.connect_retry_delay.as_deref(),
            &at("[wfm]"),
        )?;
        DatabaseUrl::new(url)
            .map(|u| u.with_waits(waits))
            .map_err(|e| Failure::Config(format!("{from}: {e}")))
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
                return DatabaseUrl::new(u).map_err(|e| {
                    Failure::Config(format!("the environment variable {DATABASE_URL_ENV}: {e}"))
                });
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Config(format!(
                "cannot read config file {}: {e} (or give the WFM database with --database-url / {DATABASE_URL_ENV})",
                path.display()
            ))
        })?;
        secrets::register_in_text(&text);
        let file: WfmOnlyFile = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
        file.wfm.resolve(env_url, path)
    }
}

/// `connect_retries` (1-100) and `connect_retry_delay` of a section, checked; the defaults where not set.
pub(crate) fn retry_settings(
    attempts: Option<u32>,
    delay: Option<&str>,
    at: &str,
) -> Result<crate::retry::Retry, Failure> {
    let mut retry = crate::retry::Retry::default();
    if let Some(n) = attempts {
        if !(1..=100).contains(&n) {
            return Err(Failure::Config(format!(
                "{at} connect_retries = {n}: write a number of tries from 1 (no retry) to 100"
            )));
        }
        retry.attempts = n;
    }
    if let Some(d) = delay {
        retry.delay = humantime::parse_duration(d.trim())
            .ok()
            .filter(|d| d.as_secs() <= 3600)
            .ok_or_else(|| {
                Failure::Config(format!(
                    "{at} connect_retry_delay {d:?}: write a duration up to 1h, e.g. \"1s\""
                ))
            })?;
    }
    Ok(retry)
}

/// A TOML error as its place (line, column) and what is wrong, without the line itself, which may hold a
/// password (an unterminated string, a misspelt key); quoted values in the message are left out too.
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Failure {
    let place = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            // The key of that line, if it is one (its name only, never its value).
            let line_text = text.lines().nth(line - 1).unwrap_or_default();
            let key = line_text
                .split_once('=')
                .map(|(k, _)| k.trim())
                .filter(|k| {
                    !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                });
            match key {
                Some(k) => format!(", line {line}, column {column} (key {k})"),
                None => format!(", line {line}, column {column}"),
            }
        }
        None => String::new(),
    };
    let pieces: Vec<&str> = e.message().trim().split('"').collect();
    let mut message = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        match (i % 2, i + 1 == pieces.len()) {
            (0, _) => message.push_str(piece),
            // A quote with no closing one (`expected '"'`) is the message's own.
            (_, true) => message.push_str(&format!("\"{piece}")),
            _ => message.push_str("\"…\""),
        }
    }
    Failure::Config(format!(
        "config file {}{place}: {}",
        path.display(),
        secrets::redact(&message)
    ))
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
    fn an_events_system_reads_its_query_as_an_events_query_and_its_changes_by_an_integer_sequence()
    {
        let dir = tempfile::tempdir().unwrap();
        let events = "SELECT a, t, e, c, s, n FROM ev WHERE t >= {lookback_start} AND t < {window_end} ORDER BY n";
        write(dir.path(), "ev.sql", events);
        write(
            dir.path(),
            "ch.sql",
            "SELECT 1 FROM ev WHERE n > {watermark}",
        );
        let head = "[wfm]\ndatabase_url = \"sqlite://w.db\"\n[[system]]\nname = \"s\"\ntime_zone = \"UTC\"\nsql_file = \"ev.sql\"\nconnection_string = \"x\"\nshape = \"events\"\n";
        let c = Config::load(&write(dir.path(), "c.toml", head)).unwrap();
        assert_eq!(c.systems[0].shape, crate::source::Shape::Events);
        let with_changes =
            format!("{head}[system.incremental]\nsql_file = \"ch.sql\"\nwatermark = \"integer\"\n");
        let c = Config::load(&write(dir.path(), "c.toml", &with_changes)).unwrap();
        assert!(c.systems[0].incremental.is_some());
        let by_time = with_changes.replace("\"integer\"", "\"timestamp\"");
        let err = Config::load(&write(dir.path(), "c.toml", &by_time))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("incremental.watermark: an events system reads its changes by its sequence column: set watermark = \"integer\""),
            "{err}"
        );
        // The same file as a sessions query lacks {window_start}.
        let as_sessions = head.replace("shape = \"events\"\n", "");
        let err = Config::load(&write(dir.path(), "c.toml", &as_sessions))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must use {window_start}"), "{err}");
        let bad_shape = head.replace("\"events\"", "\"rows\"");
        let err = Config::load(&write(dir.path(), "c.toml", &bad_shape))
            .unwrap_err()
            .to_string();
        assert!(err.contains("shape") && err.contains("c.toml"), "{err}");
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

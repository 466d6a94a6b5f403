//! Command-line interface (clap) and what each command prints. `main.rs` parses, sets up logging and calls
//! `run`; the work is done by the library (`sync`, `store`, `demo`), failures are reported by `report`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::admin;
use crate::config::{Config, DatabaseUrl, ExternalSystemConfig, DATABASE_URL_ENV};
use crate::demo::{self, DemoOptions};
use crate::error::{exit, Failure};
pub use crate::report::LogFormat;
use crate::report::{self, Reporter};
use crate::store::{Create, Store};
use crate::sync::schedule::{self, Job, Watch};
use crate::sync::{self, Days, Target};

#[derive(Debug, Parser)]
#[command(
    name = "acdsync",
    version,
    about = "Imports agents' sessions and activity codes from ACD reporting databases (ODBC) into a WFM database"
)]
pub struct Cli {
    /// The configuration file (migrate and sync).
    #[arg(long, short, global = true, env = "ACDSYNC_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log format on standard error: text for people, json for log collectors.
    #[arg(long, global = true, env = "ACDSYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// The config file when none is named.
const DEFAULT_CONFIG: &str = "acdsync.toml";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the embedded migrations to the WFM database (safe on every deploy; waits for a running sync).
    Migrate {
        /// The WFM database URL (postgres://… or sqlite://FILE); overrides the config file.
        #[arg(long, env = DATABASE_URL_ENV, hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Sync each configured external system (or those named) for the given local day(s).
    Sync(SyncArgs),
    /// Check, writing nothing, that the WFM database answers with an up-to-date schema and that every source
    /// (or those named) answers its query with the columns it must return. Exit 0 only when all do.
    Check {
        /// Check only this system (repeatable). Default: every system in the config file.
        #[arg(long = "system", value_name = "NAME")]
        systems: Vec<String>,
        /// The WFM database URL; overrides the config file's [wfm], as for sync.
        #[arg(long, env = DATABASE_URL_ENV, hide_env_values = true)]
        database_url: Option<String>,
    },
    #[command(flatten)]
    Admin(admin::AdminCommand),
    /// Run the whole job on sample data: a telephony SQLite database read over ODBC, an SQLite WFM database.
    /// It writes its own config file in --dir, so it takes no --config.
    Demo {
        /// Folder for the demo's files (sample database, config, WFM database).
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// Number of agents in the sample.
        #[arg(long, default_value_t = 50)]
        agents: u32,
        /// The sample day (default: today in Europe/Paris).
        #[arg(long, value_parser = parse_day)]
        date: Option<NaiveDate>,
        /// Write the sample into a folder that already holds the demo's files (its config, SQL file and
        /// sample database are written again; its WFM database is synced into).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The WFM database URL (postgres://… or sqlite://FILE); overrides the config file's [wfm].
    #[arg(long, env = DATABASE_URL_ENV, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Sync only this system (repeatable). Default: every system in the config file.
    #[arg(long = "system", value_name = "NAME")]
    pub systems: Vec<String>,
    /// The local day to sync (YYYY-MM-DD). Default: today in each system's time zone.
    #[arg(long, value_parser = parse_day, conflicts_with_all = ["from", "to"])]
    pub date: Option<NaiveDate>,
    /// First local day of a range (with --to).
    #[arg(long, value_parser = parse_day, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Last local day of a range, included (with --from).
    #[arg(long, value_parser = parse_day, requires = "from")]
    pub to: Option<NaiveDate>,
    /// A full sync of the window even for a system in incremental mode (which a plain `sync` of today runs
    /// incrementally once it has a watermark).
    #[arg(long)]
    pub full: bool,
    /// Keep running: sync today every INTERVAL (e.g. 30s, 5m, 1h) until SIGTERM or SIGINT, for a
    /// Deployment rather than a CronJob. After local midnight the day before gets one last full sync.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval, conflicts_with_all = ["date", "from", "to"])]
    pub watch: Option<std::time::Duration>,
    /// When another run holds the run lock, wait for it up to DURATION (e.g. 30s, 5m) instead of exiting 75
    /// at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval, conflicts_with = "watch")]
    pub wait_lock: Option<std::time::Duration>,
    /// Let this sync delete most of its window's stored sessions, which the mass-delete guard otherwise
    /// refuses (exit 66); its run row records what it let through. Not with --watch.
    #[arg(long, conflicts_with = "watch")]
    pub allow_mass_delete: bool,
    /// Do everything a sync does up to the write and print what it would do; write nothing at all (no
    /// session, no agent ID or code, no run row, no watermark; no lock taken). Exit 66 if the mass-delete
    /// guard would refuse it.
    #[arg(long, conflicts_with_all = ["watch", "wait_lock"])]
    pub dry_run: bool,
    /// With --dry-run: text (the counts), json (the counts and every change) or csv (every change).
    #[arg(long, value_enum, requires = "dry_run", default_value_t = sync::dry_run::DryFormat::Text)]
    pub format: sync::dry_run::DryFormat,
}

/// A day of the command line: YYYY-MM-DD from 1970-01-01 to 9999-12-31 (ACD data never lies outside; chrono's
/// own range ends near year 262,143, where a window's end would overflow).
pub(crate) fn parse_day(s: &str) -> Result<NaiveDate, String> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|e| format!("{e} (write a day as YYYY-MM-DD)"))?;
    let (first, last) = (
        NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid day"),
        NaiveDate::from_ymd_opt(9999, 12, 31).expect("a valid day"),
    );
    if d < first || d > last {
        return Err(format!("{d} is outside {first} to {last}"));
    }
    Ok(d)
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d =
        humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (write e.g. 30s, 5m, 1h)"))?;
    if d < std::time::Duration::from_secs(1) {
        return Err("the interval must be at least 1s".into());
    }
    Ok(d)
}

impl SyncArgs {
    /// The target of each system: the days asked for, else today (in full with --full).
    fn target(&self) -> Result<Option<Target>, Failure> {
        let days = match (self.date, self.from, self.to) {
            (Some(d), _, _) => Days::one(d),
            (None, Some(first), Some(last)) if first <= last => Days { first, last },
            (None, Some(first), Some(last)) => {
                return Err(Failure::Usage(format!(
                    "--from {first} is after --to {last}"
                )))
            }
            _ => return Ok(None),
        };
        Ok(Some(Target::Days(days)))
    }
}

/// Runs a parsed command; the result is the process exit code. Failures are reported here, once.
pub fn run(cli: Cli) -> u8 {
    let reporter = Reporter::new(cli.log_format);
    let config = cli.config.as_deref();
    let result = match cli.command {
        Command::Migrate { database_url } => migrate(reporter, config, database_url),
        Command::Sync(args) => sync_command(reporter, config, &args),
        Command::Check {
            systems,
            database_url,
        } => check_command(reporter, config, &systems, database_url),
        Command::Demo {
            dir,
            agents,
            date,
            force,
        } => demo_command(reporter, config, (dir, force), agents, date),
        Command::Admin(command) => admin_command(reporter, config, command),
    };
    result.unwrap_or_else(|e| {
        reporter.failure("acdsync failed", "error", &e);
        crate::error::exit_code(&e)
    })
}

/// A mapping command: the WFM database (up to date), the command on it, its output on standard output. The
/// command is also given the systems of the config file, if it can be read (name and zone of a system not
/// synced yet).
fn admin_command(
    reporter: Reporter,
    config: Option<&Path>,
    command: admin::AdminCommand,
) -> anyhow::Result<u8> {
    let path = config_path(config);
    let url = database_url(config, command.database_url())?;
    let mut store = Store::open(&url, Create::Never)?;
    store.check_schema()?;
    let configured = |name: &str| {
        Config::load_with_database_url(path, Some(url.expose().to_owned()))
            .ok()?
            .systems
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| (s.name, s.time_zone))
    };
    let text = command.run(&mut store, &configured)?;
    reporter.out(&text);
    Ok(exit::OK)
}

fn config_path(config: Option<&Path>) -> &Path {
    config.unwrap_or(Path::new(DEFAULT_CONFIG))
}

/// The WFM database: `--database-url` (or its variable), else the config file's `[wfm]`.
fn database_url(config: Option<&Path>, given: Option<String>) -> anyhow::Result<DatabaseUrl> {
    Ok(match given {
        Some(u) => DatabaseUrl::new(u).map_err(|e| {
            Failure::Config(format!(
                "--database-url or the environment variable {DATABASE_URL_ENV}: {e}"
            ))
        })?,
        None => Config::load_database_url(config_path(config))?,
    })
}

fn migrate(
    reporter: Reporter,
    config: Option<&Path>,
    database_url_arg: Option<String>,
) -> anyhow::Result<u8> {
    let url = database_url(config, database_url_arg)?;
    let mut store = Store::open(&url, Create::IfMissing)?;
    let applied = store.migrate()?;
    reporter.out(&if applied.is_empty() {
        format!(
            "{}: schema up to date, no migration to apply\n",
            store.name()
        )
    } else {
        format!(
            "{}: applied {} migration(s): {}\n",
            store.name(),
            applied.len(),
            applied.join(", ")
        )
    });
    tracing::info!(database = %store.name(), applied = applied.len(), "migrate finished");
    Ok(exit::OK)
}

fn sync_command(reporter: Reporter, config: Option<&Path>, args: &SyncArgs) -> anyhow::Result<u8> {
    let target = args.target()?;
    let path = config_path(config);
    let mut config = Config::load_with_database_url(path, args.database_url.clone())?;
    if args.allow_mass_delete {
        for system in &mut config.systems {
            system.delete_guard.allowed = true;
        }
    }
    let systems = config.systems_named(&args.systems, path)?;
    let job = |system: &'_ ExternalSystemConfig| {
        target.unwrap_or_else(|| Target::today(args.full, system.time_zone, chrono::Utc::now()))
    };
    if args.dry_run {
        let jobs: Vec<Job<'_>> = systems.iter().map(|s| (*s, job(s))).collect();
        return sync::dry_run::command(reporter, &config, &jobs, args.format);
    }
    // SIGTERM and SIGINT stop a run at its next safe point (`crate::stop`; main installs the handlers first).
    crate::stop::install()?;
    match args.watch {
        None => {
            let jobs: Vec<Job<'_>> = systems.iter().map(|s| (*s, job(s))).collect();
            sync_round(reporter, &config, &jobs, args.wait_lock)
        }
        Some(interval) => {
            tracing::info!(interval = %humantime::format_duration(interval), systems = systems.len(), "watching: a sync every interval until SIGTERM");
            let again = format!(
                "round failed, trying again in {}",
                humantime::format_duration(interval)
            );
            schedule::watch(
                Watch::new(&systems, args.full),
                interval,
                |jobs| sync_round(reporter, &config, jobs, None),
                |e| reporter.failure("round failed; trying again next interval", &again, e),
            )
        }
    }
}

/// One sync of each (system, target), under one run lock. Returns the first failure's exit code, or 0.
/// The run lock is released before this returns (not when the process exits). After SIGTERM or SIGINT no
/// further system starts, and the round's code is the interruption's.
fn sync_round(
    reporter: Reporter,
    config: &Config,
    jobs: &[Job<'_>],
    wait_lock: Option<std::time::Duration>,
) -> anyhow::Result<u8> {
    let mut store = Store::open_for_sync(&config.database_url)?;
    crate::failpoint::hit("store_connected")?;
    match wait_lock {
        None => store.lock(false)?,
        Some(up_to) => store.lock_waiting(up_to)?,
    }
    crate::failpoint::hit("lock_taken")?;
    let mut first_failure: Option<u8> = None;
    for (system, target) in jobs {
        // After SIGTERM or SIGINT no further system starts; the round's code is the interruption's.
        if let Err(interrupted) = crate::stop::check() {
            tracing::warn!(system = %system.name, "not synced: {interrupted}");
            first_failure.get_or_insert(interrupted.exit_code());
            break;
        }
        if let Err(code) = sync_one(reporter, &mut store, system, *target) {
            first_failure.get_or_insert(code);
        }
    }
    if let Some(path) = &config.metrics_textfile {
        // (Metrics that cannot be written are logged: they never fail the sync.)
        let written = store
            .run_summaries()
            .and_then(|runs| crate::metrics::write(path, &crate::metrics::render(&runs)));
        if let Err(e) = written {
            tracing::warn!(error = %format!("{e:#}"), "metrics not written");
        }
    }
    store.unlock();
    Ok(first_failure.unwrap_or(exit::OK))
}

/// Syncs one system (and the days its full sync of today reconciles), logs and prints each summary or
/// failure; a failure gives its exit code.
fn sync_one(
    reporter: Reporter,
    store: &mut Store,
    system: &ExternalSystemConfig,
    target: Target,
) -> Result<(), u8> {
    let days = target.days(system.time_zone, chrono::Utc::now());
    let span = tracing::info_span!("sync", system = %system.name, first_day = %days.first, last_day = %days.last);
    let _enter = span.enter();
    let started = std::time::Instant::now();
    let mut failure = None;
    for outcome in sync::sync_and_reconcile(store, system, target) {
        match outcome {
            Ok(r) => {
                let c = &r.counts;
                tracing::info!(
                    run_id = r.run_id,
                    mode = r.mode.name(),
                    first_day = %r.days.first,
                    read = c.read,
                    inserted = c.inserted,
                    updated = c.updated,
                    deleted = c.deleted,
                    unchanged = c.unchanged,
                    rejected = c.rejected,
                    new_agent_ids = c.new_agent_ids,
                    new_activity_codes = c.new_activity_codes,
                    watermark = r.watermark.as_deref().unwrap_or(""),
                    seconds = started.elapsed().as_secs_f64(),
                    "sync finished"
                );
                reporter.out(&report::render(&r));
            }
            Err(e) => {
                // What the failure left: nothing, the whole run (it failed after its commit), or unknown.
                let (message, left) = if crate::error::commit_in_doubt(&e) {
                    ("sync's commit lost with its connection", "the connection to the WFM database was lost at COMMIT, so whether this run was kept is unknown (import_runs says: succeeded, or abandoned after the next sync)")
                } else if crate::error::after_commit(&e) {
                    (
                        "sync committed, then failed",
                        "synced and committed, then failed",
                    )
                } else {
                    (
                        "sync failed; nothing was written for this system",
                        "sync failed, nothing written",
                    )
                };
                reporter.failure(message, &format!("system {:?}: {left}", system.name), &e);
                failure.get_or_insert(crate::error::exit_code(&e));
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

fn check_command(
    reporter: Reporter,
    config: Option<&Path>,
    systems: &[String],
    database_url: Option<String>,
) -> anyhow::Result<u8> {
    let path = config_path(config);
    let config = Config::load_with_database_url(path, database_url)?;
    let systems = config.systems_named(systems, path)?;
    let mut code = exit::OK;
    let mut text = String::new();
    for finding in crate::check::check(&config, &systems) {
        match &finding.outcome {
            Ok(what) => text.push_str(&format!("ok      {}: {what}\n", finding.what)),
            Err(e) => {
                // (One line per part: a driver's message may span several.)
                let e = crate::secrets::redact(&format!("{e:#}")).replace('\n', " ");
                text.push_str(&format!("FAILED  {}: {e}\n", finding.what));
                tracing::error!(part = %finding.what, error = %e, "check failed");
            }
        }
        if let (Err(e), exit::OK) = (&finding.outcome, code) {
            code = crate::error::exit_code(e);
        }
    }
    reporter.out(&text);
    Ok(code)
}

fn demo_command(
    reporter: Reporter,
    config: Option<&Path>,
    (dir, force): (PathBuf, bool),
    agents: u32,
    date: Option<NaiveDate>,
) -> anyhow::Result<u8> {
    if let Some(path) = config {
        return Err(Failure::Usage(format!(
            "demo writes its own config file in --dir; it does not read --config {} (or ACDSYNC_CONFIG)",
            path.display()
        ))
        .into());
    }
    let tz: chrono_tz::Tz = demo::DEMO_TIME_ZONE.parse().expect("a valid zone");
    let day = date.unwrap_or_else(|| Days::today(tz).first);
    let options = DemoOptions {
        dir,
        agents,
        day,
        force,
    };
    let out = demo::run(&options).context("the demo failed")?;
    let wfm = out.wfm_db.display();
    reporter.out(&format!(
        "Sample telephony database: {} ({} rows in acd_agent_states, read through the SQLite ODBC driver)\n\
         WFM database:              {wfm}\n\
         Config written:            {}\n\n{}\n\
         Next:\n  \
         sqlite3 -header -column {wfm} \"SELECT * FROM external_activity ORDER BY started_at LIMIT 10\"\n  \
         sqlite3 -header -column {wfm} \"SELECT * FROM rejected_rows\"\n  \
         ./target/release/acdsync --config {cfg} sync --date {day}    # again: nothing changes\n  \
         ./target/release/acdsync --config {cfg} unmapped               # what waits for a mapping\n  \
         ./target/release/acdsync --config {cfg} activity add Break\n  \
         ./target/release/acdsync --config {cfg} map code --system demo-acd BREAK Break\n",
        out.telephony_db.display(),
        out.source_rows,
        out.config_path.display(),
        report::render(&out.report),
        cfg = out.config_path.display(),
    ));
    Ok(exit::OK)
}

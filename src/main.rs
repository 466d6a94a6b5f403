use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use acdsync::cli::{self, Cli, LogFormat};
use acdsync::secrets::RedactedStderr;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A sync stops at a safe point on SIGTERM or SIGINT (acdsync::stop): the handlers are installed before
    // anything else, so that a signal at any moment of the run finds them. Other commands keep the default
    // (the signal ends them: migrate's transaction rolls back).
    let handlers = match &cli.command {
        cli::Command::Sync(_) => acdsync::stop::install(),
        _ => Ok(()),
    };
    if let Err(e) = handlers {
        eprintln!("acdsync: {e:#}");
        return ExitCode::from(acdsync::error::exit::FAILED);
    }
    // RUST_LOG overrides the level. odbc-api's `log` records are bridged into tracing; by default only its
    // errors show, because drivers emit harmless warnings on every connect (e.g. SQLite's ODBC version notice).
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,odbc_api=error"));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(RedactedStderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    ExitCode::from(cli::run(cli))
}

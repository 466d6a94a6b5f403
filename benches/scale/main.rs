//! The scale benchmark of acdsync: `bash scripts/bench.sh` (see BENCHMARKS.md).
//!
//! It builds a PostgreSQL source database with a generated day of agent states, measures the floors (what
//! the server, the ODBC driver and a bulk `COPY` cost for the same rows), then times the release binary of
//! acdsync (`target/release/acdsync`, a separate process) on a fresh WFM store: the first sync of the day, a
//! re-run with nothing changed, a re-run after 1 % / 0.5 % / 0.1 % of the sessions were changed / added /
//! removed, the incremental mode at the start and at the end of the day, and (with `--memory`) the peak
//! resident memory at 1.5M and 6M sessions. Every measured step is a child process: its time is the wall
//! time from spawn to exit and its memory is the child's own `ru_maxrss` from `wait4`.
//!
//! A Cargo bench target with `harness = false` and `test = false`. `cargo test --all-targets` still builds
//! and runs it (without `--bench`): `main` then prints one line and does nothing.
//!
//! Where things are (`benches/scale/`):
//! - `main.rs`: the command line and `main`: a bench run, or the hidden `fetch-floor` child.
//! - `bench.rs`: `Bench`, what the sections of a run share (paths, the numbered logs, the table's rows and
//!   notes), and `Bench::run`, the sections in order.
//! - `db.rs`: the PostgreSQL databases of the bench and the psql calls that are not measured.
//! - `source.rs`: the generated source: the day of agent states, the changes of (d), the day's rows set
//!   aside for the incremental section.
//! - `query.rs`: the extraction query: the day's bounds, its placeholders, the one-line form for `\copy`.
//! - `floors.rs`: (a) the floors: psql `\copy` out and in, and the raw ODBC fetch (`fetch-floor`).
//! - `measure.rs`: a measured child process (wall and CPU time, peak RSS, logs) and medians of repeats.
//! - `store.rs`: the WFM stores (PostgreSQL, SQLite): a fresh store, its URL, its last `import_runs` row.
//! - `sync.rs`: acdsync as a child process: its config file, `migrate`, `sync`, what is a failed run.
//! - `steps.rs`: (b) the first sync, (c) the re-run with nothing changed, (d) the re-run after changes.
//! - `incremental.rs`: the incremental mode at the start and at the end of the day.
//! - `memory.rs`: `--memory`: peak RSS at each of `--memory-sizes` and its growth.
//! - `report.rs`: the table (rows, targets, verdicts), the machine, the markdown printed and written.

mod bench;
mod db;
mod floors;
mod incremental;
mod measure;
mod memory;
mod query;
mod report;
mod source;
mod steps;
mod store;
mod sync;

use std::ffi::OsString;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::bench::Bench;
use crate::floors::fetch_floor;

#[derive(Parser)]
#[command(
    name = "scale",
    about = "acdsync scale benchmark (run it with scripts/bench.sh; see BENCHMARKS.md)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true, global = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Sub {
    /// The raw ODBC fetch floor (run by the benchmark in a child process to measure its RSS).
    #[command(hide = true)]
    FetchFloor(FetchArgs),
}

#[derive(Args, Clone)]
struct FetchArgs {
    #[arg(long)]
    connection_string: String,
    #[arg(long)]
    sql_file: PathBuf,
    #[arg(long)]
    date: NaiveDate,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreChoice {
    Postgres,
    Sqlite,
    Both,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Sessions (agent states) of the synced day.
    #[arg(long, default_value_t = 1_500_000)]
    sessions: u64,
    /// Agents working that day.
    #[arg(long, default_value_t = 50_000)]
    agents: u64,
    /// Activity codes (C01, C02, ...), Zipf-like frequencies.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=99))]
    codes: u64,
    /// WFM store(s) to measure.
    #[arg(long, value_enum, default_value_t = StoreChoice::Both)]
    store: StoreChoice,
    /// The local day synced (Europe/Paris).
    #[arg(long, default_value = "2026-01-15")]
    date: NaiveDate,
    /// Days of history in the source, ending with --date (each with --sessions states); the sync reads one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=31))]
    days: u64,
    /// Repetitions of the cheap steps (floors, unchanged re-run, incremental runs); the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    runs: u64,
    /// Also measure peak RSS of the first sync and the unchanged re-run at each of --memory-sizes.
    #[arg(long)]
    memory: bool,
    /// Sizes (sessions) for --memory; agents are sessions / 30 (50,000 for 1.5M, 200,000 for 6M).
    #[arg(long, value_delimiter = ',', default_value = "1500000,6000000")]
    memory_sizes: Vec<u64>,
    /// Agents for every size of --memory (default: sessions / 30). A fixed number shows what the day's
    /// size alone costs: the system's agent IDs are held in memory, its sessions are not.
    #[arg(long)]
    memory_agents: Option<u64>,
    /// Skip the incremental-mode section.
    #[arg(long)]
    no_incremental: bool,
    /// The markdown table is written here too.
    #[arg(long, default_value = "target/bench/results.md")]
    out: PathBuf,
    /// The acdsync binary (default: `acdsync` in the target directory the bench was built in).
    #[arg(long)]
    acdsync: Option<PathBuf>,
    /// Scratch files: configs, SQLite store, CSV, logs of every measured process.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    // `test = false` does not keep this target out of `cargo test --all-targets` (it selects every target
    // with `bench = true`), which runs it without `--bench`, maybe with test-name filters. Run only when
    // `cargo bench` (`--bench`) or scripts/bench.sh (ACDSYNC_BENCH_COMMAND) asked, or as our own child.
    let asked = args.iter().any(|a| a == "--bench")
        || std::env::var_os("ACDSYNC_BENCH_COMMAND").is_some()
        || args.get(1).is_some_and(|a| a == "fetch-floor");
    if !asked {
        println!(
            "scale bench: not run (no --bench); run it with `bash scripts/bench.sh` (see BENCHMARKS.md)"
        );
        return;
    }
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Some(Sub::FetchFloor(f)) => fetch_floor(&f),
        None => Bench::new(cli.run).and_then(|mut b| b.run()),
    };
    if let Err(e) = result {
        eprintln!("scale bench: error: {e:#}");
        std::process::exit(1);
    }
}

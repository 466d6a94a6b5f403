//! The results: a row per measurement, the targets and verdicts, the machine it ran on, and the markdown
//! table printed and written to `--out`.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;

use anyhow::Context;

use crate::bench::Bench;
use crate::db::psql;
use crate::sync::TIME_ZONE;

/// Targets of the issue, on the PostgreSQL store.
pub const TARGET_FIRST_SYNC: f64 = 1.5;
pub const TARGET_UNCHANGED: f64 = 1.2;
pub const TARGET_INCREMENTAL: f64 = 2.0;
/// Memory: peak RSS at the largest size over the smallest (the bench's reading of "bounded by the batch
/// size": it does not grow with the number of sessions).
pub const TARGET_MEMORY_GROWTH: f64 = 1.25;

pub struct Row {
    pub measurement: String,
    pub store: String,
    pub secs: Option<f64>,
    /// User + system CPU seconds of the measured process.
    pub cpu: Option<f64>,
    pub rows_read: Option<i64>,
    pub written: String,
    pub rss_mb: Option<f64>,
    pub ratio: Option<f64>,
    pub target: String,
    pub verdict: String,
}

impl Row {
    pub fn new(measurement: impl Into<String>, store: &str) -> Row {
        Row {
            measurement: measurement.into(),
            store: store.into(),
            secs: None,
            cpu: None,
            rows_read: None,
            written: "—".into(),
            rss_mb: None,
            ratio: None,
            target: "—".into(),
            verdict: "—".into(),
        }
    }
}

pub fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

pub fn verdict(pass: bool) -> String {
    if pass { "PASS" } else { "FAIL" }.to_string()
}

impl Bench {
    fn machine(&self) -> Vec<(String, String)> {
        let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "?".into());
        let cores = std::thread::available_parallelism()
            .map(|n| n.get().to_string())
            .unwrap_or_else(|_| "?".into());
        let ram = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|| "?".into());
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
        let os = read("/etc/os-release")
            .lines()
            .find(|l| l.starts_with("PRETTY_NAME="))
            .map(|l| {
                l.trim_start_matches("PRETTY_NAME=")
                    .trim_matches('"')
                    .to_string()
            })
            .unwrap_or_default();
        let pg = psql("postgres", "SHOW server_version;").unwrap_or_else(|e| e.to_string());
        let cmd_out = |prog: &str, args: &[&str]| {
            Command::new(prog)
                .args(args)
                .output()
                .ok()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .trim()
                        .replace('\n', ", ")
                })
                .unwrap_or_default()
        };
        let drivers = cmd_out(
            "dpkg-query",
            &["-W", "odbc-postgresql", "libsqliteodbc", "unixodbc"],
        )
        .replace('\t', " ");
        let acd_version = cmd_out(self.acdsync.to_str().unwrap_or("acdsync"), &["--version"]);
        let git = cmd_out(
            "git",
            &[
                "-C",
                self.repo.to_str().unwrap_or("."),
                "log",
                "-1",
                "--format=%h %s",
            ],
        );
        let dirty = !cmd_out(
            "git",
            &[
                "-C",
                self.repo.to_str().unwrap_or("."),
                "status",
                "--porcelain",
                "--untracked-files=no",
            ],
        )
        .is_empty();
        vec![
            ("CPU".into(), format!("{cpu}, {cores} cores")),
            ("RAM".into(), ram),
            ("OS / kernel".into(), format!("{os}, Linux {kernel}")),
            ("PostgreSQL".into(), pg),
            ("ODBC packages".into(), drivers),
            (
                "acdsync".into(),
                format!(
                    "{acd_version}, commit {git}{}",
                    if dirty { " (uncommitted changes)" } else { "" }
                ),
            ),
        ]
    }

    /// Prints the markdown (the run's settings and machine, the table, the notes) and writes it to `--out`.
    pub fn report(&mut self) -> anyhow::Result<()> {
        let mut md = String::new();
        self.write_setup(&mut md)?;
        self.write_table(&mut md)?;
        self.write_notes(&mut md)?;
        println!("{md}");
        let a = &self.args;
        let out = if a.out.is_absolute() {
            a.out.clone()
        } else {
            self.repo.join(&a.out)
        };
        fs::write(&out, &md).with_context(|| format!("cannot write {}", out.display()))?;
        self.say(&format!("table written to {}", out.display()));
        Ok(())
    }

    /// The heading, the command and a table of the run's settings and the machine.
    fn write_setup(&self, md: &mut String) -> anyhow::Result<()> {
        let a = &self.args;
        let command = std::env::var("ACDSYNC_BENCH_COMMAND").unwrap_or_else(|_| {
            std::env::args()
                .filter(|x| x != "--bench")
                .collect::<Vec<_>>()
                .join(" ")
        });
        writeln!(md, "## acdsync scale benchmark\n")?;
        writeln!(md, "Command: `{command}`\n")?;
        writeln!(md, "| | |\n|---|---|")?;
        writeln!(
            md,
            "| sessions / agents / codes | {} / {} / {} (day {}, {TIME_ZONE}; {} day(s) in the source) |",
            thousands(a.sessions as i64),
            thousands(a.agents as i64),
            a.codes,
            a.date,
            a.days
        )?;
        for (k, v) in self.machine() {
            writeln!(md, "| {k} | {v} |")?;
        }
        writeln!(
            md,
            "| bench wall time | {:.0} s |",
            self.started.elapsed().as_secs_f64()
        )?;
        writeln!(
            md,
            "| load average (1 min) before the bench | {:.2} |",
            self.load_start
        )?;
        Ok(())
    }

    /// The table of measurements and how to read it.
    fn write_table(&self, md: &mut String) -> anyhow::Result<()> {
        writeln!(md)?;
        writeln!(
            md,
            "| measurement | store | seconds | CPU s | rows read | rows written | peak RSS MB | ratio | target | verdict |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---|---:|---:|---|---|")?;
        for r in &self.rows {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.measurement,
                r.store,
                r.secs
                    .map(|s| format!("{s:.3}"))
                    .unwrap_or_else(|| "—".into()),
                r.cpu
                    .map(|s| format!("{s:.2}"))
                    .unwrap_or_else(|| "—".into()),
                r.rows_read.map(thousands).unwrap_or_else(|| "—".into()),
                r.written,
                r.rss_mb
                    .map(|m| format!("{m:.1}"))
                    .unwrap_or_else(|| "—".into()),
                r.ratio
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or_else(|| "—".into()),
                r.target,
                r.verdict.replace('|', "/")
            )?;
        }
        writeln!(md)?;
        writeln!(
            md,
            "Seconds: wall time of the measured process, median of {} runs for the floors, the unchanged re-run and the incremental runs, one run otherwise. Peak RSS: `ru_maxrss` of that process (the server's memory is not included). Ratios: first sync / (raw ODBC fetch + \\copy in); re-runs and memory rows / raw ODBC fetch (of the same size); incremental: end of day / start of day; memory growth: peak RSS at the largest size / at the smallest. Targets and verdicts are for the PostgreSQL store; SQLite rows are checked for rows written only.",
            self.args.runs
        )?;
        Ok(())
    }

    /// The notes (a busy machine first) and where the logs are.
    fn write_notes(&mut self, md: &mut String) -> anyhow::Result<()> {
        if self.load_start > 0.5 {
            self.notes.insert(
                0,
                format!(
                    "**The machine was busy when the bench started** (1-minute load average {:.2}): other processes may have shared the cores, so the seconds may be high and noisy. Compare the CPU column, or rerun on an idle machine.",
                    self.load_start
                ),
            );
        }
        if !self.notes.is_empty() {
            writeln!(md)?;
            for n in &self.notes {
                writeln!(md, "- {n}")?;
            }
        }
        writeln!(
            md,
            "\nLogs of every measured process: `{}`",
            self.logs
                .strip_prefix(&self.repo)
                .unwrap_or(&self.logs)
                .display()
        )?;
        Ok(())
    }
}

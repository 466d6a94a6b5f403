//! Metrics for a batch job, in the Prometheus text format (`[metrics] textfile`): per system, the time of
//! its last successful run, how long its last run took, its status and its rows by outcome, read from
//! `import_runs` after each sync (so they also say what an earlier process did). The file is written beside
//! its final name and renamed over it, so that node-exporter's textfile collector never reads half a file.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::store::models::RunSummary;

/// The metrics text of these systems' runs.
pub fn render(runs: &[RunSummary]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, rows: &mut dyn Iterator<Item = String>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for r in rows {
            let _ = writeln!(out, "{name}{r}");
        }
    };
    let seconds = |t: chrono::NaiveDateTime| t.and_utc().timestamp_micros() as f64 / 1e6;
    family(
        "acdsync_last_success_timestamp_seconds",
        "When the last successful run of the system finished (Unix time).",
        &mut runs.iter().filter_map(|r| {
            r.last_success
                .map(|t| format!("{{system=\"{}\"}} {}", label(&r.system), seconds(t)))
        }),
    );
    family(
        "acdsync_last_run_duration_seconds",
        "How long the system's last finished run took.",
        &mut runs.iter().filter_map(|r| {
            let took = (r.finished_at? - r.started_at).num_microseconds()? as f64 / 1e6;
            Some(format!("{{system=\"{}\"}} {took}", label(&r.system)))
        }),
    );
    family(
        "acdsync_last_run_status",
        "The status of the system's last run (1 for the status it has).",
        &mut runs.iter().map(|r| {
            format!(
                "{{system=\"{}\",status=\"{}\"}} 1",
                label(&r.system),
                label(&r.status)
            )
        }),
    );
    family(
        "acdsync_last_run_rows",
        "Rows of the system's last run, by outcome.",
        &mut runs.iter().flat_map(|r| {
            r.rows().map(move |(outcome, n)| {
                format!(
                    "{{system=\"{}\",outcome=\"{outcome}\"}} {n}",
                    label(&r.system)
                )
            })
        }),
    );
    out
}

/// A label value, escaped as the text format wants (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `text` to `path` at once: a file beside it, then a rename.
pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("writing the metrics file {}", path.display()))
}

//! What acdsync tells its operator, in one place: the summary of each sync on standard output, and each
//! failure on standard error, once. In text mode a failure is one human line; in JSON mode one JSON object
//! (through the log), and nothing else. Passwords are removed here, where text leaves the program (and by
//! the log writer, `secrets::RedactedStderr`).

use std::fmt::Write as _;
use std::io::Write as _;

use clap::ValueEnum;

use crate::secrets::{redact, RedactedStderr};
use crate::sync::RunReport;

/// Log format on standard error: text for people, json for log collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Prints summaries and failures.
#[derive(Clone, Copy, Debug)]
pub struct Reporter {
    format: LogFormat,
}

impl Reporter {
    pub fn new(format: LogFormat) -> Reporter {
        Reporter { format }
    }

    /// Text for standard output (summaries, the demo's guide).
    pub fn out(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(redact(text).as_bytes());
        let _ = out.flush();
    }

    /// A failure, with the exit code it leads to: in JSON mode the log event `message` (stable, for log
    /// collectors); in text mode the line `acdsync: <what>: <error>`.
    pub fn failure(&self, message: &str, what: &str, error: &anyhow::Error) {
        let code = crate::error::exit_code(error);
        match self.format {
            LogFormat::Json => {
                tracing::error!(exit_code = code, error = format!("{error:#}"), "{message}")
            }
            LogFormat::Text => {
                // One write: the writer redacts what it is given at once.
                let line = format!("acdsync: {what}: {error:#}\n");
                let _ = RedactedStderr.write_all(line.as_bytes());
            }
        }
    }
}

fn days(r: &RunReport) -> String {
    if r.days.first == r.days.last {
        r.days.first.to_string()
    } else {
        format!("{} to {}", r.days.first, r.days.last)
    }
}

fn list(names: &[String], max: usize) -> String {
    let mut s = names
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > max {
        let _ = write!(s, ", … ({} more)", names.len() - max);
    }
    s
}

/// The summary of one run.
pub fn render(r: &RunReport) -> String {
    let c = &r.counts;
    let mut s = String::new();
    let mode = match (r.mode, &r.watermark) {
        (crate::sync::Mode::Full, _) => String::new(),
        (crate::sync::Mode::Changes, _) => ", changes since the last run".to_owned(),
    };
    let _ = writeln!(
        s,
        "system {:?}, {}{mode} (import run {}):",
        r.system,
        days(r),
        r.run_id
    );
    let _ = writeln!(
        s,
        "  rows read {:>8}   inserted {:>8}   updated {:>8}   deleted {:>8}   unchanged {:>8}   rejected {:>8}",
        c.read, c.inserted, c.updated, c.deleted, c.unchanged, c.rejected
    );
    if let Some(w) = &r.watermark {
        let _ = writeln!(s, "  watermark (largest change key imported): {w}");
    }
    if !r.new_agent_ids.is_empty() {
        let _ = writeln!(
            s,
            "  new agent IDs ({}): {}",
            r.new_agent_ids.len(),
            list(&r.new_agent_ids, 10)
        );
    }
    let _ = writeln!(
        s,
        "  agent IDs of this system with no owner from now on: {} (`acdsync unmapped` lists what waits)",
        r.unmapped_agent_ids
    );
    if !r.new_activity_codes.is_empty() {
        let _ = writeln!(
            s,
            "  new activity codes ({}), on Present until mapped: {}",
            r.new_activity_codes.len(),
            list(&r.new_activity_codes, 20)
        );
    }
    if let Some(day) = r.stale_open_since {
        let _ = writeln!(
            s,
            "  {} session(s) begun before the window are stored open but no longer returned: sync --date {day} to close them",
            r.stale_open
        );
    }
    if c.rejected > 0 {
        let _ = writeln!(
            s,
            "  rejected rows (all {} in rejected_rows, import_run_id = {}):",
            c.rejected, r.run_id
        );
        for x in &r.rejected {
            let _ = writeln!(s, "    row {} {}: {}", x.source_row, x.field, x.reason);
        }
        if c.rejected as usize > r.rejected.len() {
            let _ = writeln!(s, "    …");
        }
    }
    s
}

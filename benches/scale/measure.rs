//! A measured child process: wall time from spawn to exit, user + system CPU time and peak RSS from
//! `wait4`, stdout and stderr in log files; and the median of repeated measurements.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;

pub struct Measured {
    pub secs: f64,
    /// ru_maxrss of the child, in KiB (Linux).
    rss_kib: i64,
    /// User + system CPU seconds of the child.
    pub cpu_secs: f64,
    /// Exit code, or 128 + signal.
    pub code: i32,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Measured {
    pub fn rss_mb(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
    pub fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }
    /// The last non-empty lines of stderr, for messages.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = strip_ansi(&fs::read_to_string(&self.stderr).unwrap_or_default());
        let v: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }
}

fn tv_secs(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// Runs `cmd` to its end with stdout and stderr in files under `log_dir`, and measures it.
pub fn measure(cmd: &mut Command, log_dir: &Path, label: &str) -> anyhow::Result<Measured> {
    let stdout = log_dir.join(format!("{label}.out"));
    let stderr = log_dir.join(format!("{label}.err"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&stdout)?)
        .stderr(File::create(&stderr)?);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child, which std has not reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pointers to live locals; pid is a child of this process.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok(Measured {
        secs,
        rss_kib: usage.ru_maxrss,
        cpu_secs: tv_secs(usage.ru_utime) + tv_secs(usage.ru_stime),
        code,
        stdout,
        stderr,
    })
}

/// acdsync's text logs keep their colours when written to a file.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Repeated measurements of one step: the table shows their median time and their peak RSS.
#[derive(Default)]
pub struct Samples {
    secs: Vec<f64>,
    cpu_secs: Vec<f64>,
    /// The largest peak RSS of the runs, in MB (0 before the first).
    pub rss_mb: f64,
}

impl Samples {
    pub fn add(&mut self, m: &Measured) {
        self.secs.push(m.secs);
        self.cpu_secs.push(m.cpu_secs);
        self.rss_mb = self.rss_mb.max(m.rss_mb());
    }
    pub fn median_secs(&self) -> f64 {
        median(&self.secs)
    }
    pub fn median_cpu(&self) -> f64 {
        median(&self.cpu_secs)
    }
}

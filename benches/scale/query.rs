//! The extraction query (`benches/sql/`): the local bounds of the synced day, the SQL file without its
//! comments, its `{placeholders}` replaced, and the one-line form with literal bounds for psql `\copy`.

use std::fs;
use std::path::Path;

use anyhow::{anyhow, Context};
use chrono::{Duration, NaiveDate, NaiveDateTime};

use crate::db::ts;

/// The local bounds acdsync uses for one day (max_session_hours = 24). 2026-01-15 has no DST change.
pub struct Bounds {
    lookback_start: NaiveDateTime,
    window_start: NaiveDateTime,
    window_end: NaiveDateTime,
}

impl Bounds {
    pub fn of(day: NaiveDate) -> Bounds {
        let start = day.and_hms_opt(0, 0, 0).expect("midnight");
        Bounds {
            lookback_start: start - Duration::hours(24),
            window_start: start,
            window_end: start + Duration::days(1),
        }
    }
    pub fn get(&self, name: &str) -> Option<NaiveDateTime> {
        match name {
            "lookback_start" => Some(self.lookback_start),
            "window_start" => Some(self.window_start),
            "window_end" => Some(self.window_end),
            _ => None,
        }
    }
}

/// The SQL file's statement without `--` comments (the bench's own files have no `--` inside literals).
pub fn load_query(path: &Path) -> anyhow::Result<String> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let sql: Vec<&str> = text
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .filter(|l| !l.trim().is_empty())
        .collect();
    Ok(sql.join("\n").trim().trim_end_matches(';').to_string())
}

/// Replaces each `{placeholder}` through `f`, in order of appearance.
pub fn replace_placeholders(
    sql: &str,
    mut f: impl FnMut(&str) -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| anyhow!("unclosed {{ in query"))?;
        out.push_str(&rest[..open]);
        out.push_str(&f(&rest[open + 1..close])?);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The query on one line with the window bounds as literals (for psql `\copy`).
pub fn literal_query(sql: &str, b: &Bounds) -> anyhow::Result<String> {
    let q = replace_placeholders(sql, |name| {
        b.get(name)
            .map(|t| format!("'{}'", ts(t)))
            .ok_or_else(|| anyhow!("unknown placeholder {{{name}}}"))
    })?;
    Ok(q.split_whitespace().collect::<Vec<_>>().join(" "))
}

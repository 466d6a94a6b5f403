//! An extraction query from `sql/sources/`: its text, split at the window placeholders.
//!
//! Placeholders are `{window_start}`, `{window_end}` and `{lookback_start}` (see sql/sources/README.md).
//! They are found outside string literals and comments, and become either `?` with a bound ODBC timestamp, or
//! a literal written from the program's own chrono value. Nothing a user types ever becomes SQL text here:
//! the only values spliced in are timestamps this program computed.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use odbc_api::parameter::{VarCharBox, WithDataType};
use odbc_api::DataType;
use serde::Deserialize;

use crate::sessions::{self, SourceTime};
use crate::window::Window;

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

/// A window bound the query may ask for, as local wall time of the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    WindowStart,
    WindowEnd,
    LookbackStart,
    /// The same bounds as instants (UTC, written with `+00:00`), for columns that hold instants
    /// (`timestamptz`): exactly acdsync's own bounds, in every zone, at a midnight that happens twice or
    /// never.
    WindowStartUtc,
    WindowEndUtc,
    LookbackStartUtc,
    /// The change key a changes query reads after (incremental mode).
    Watermark,
}

impl Placeholder {
    const ALL: [Placeholder; 7] = [
        Placeholder::WindowStart,
        Placeholder::WindowEnd,
        Placeholder::LookbackStart,
        Placeholder::WindowStartUtc,
        Placeholder::WindowEndUtc,
        Placeholder::LookbackStartUtc,
        Placeholder::Watermark,
    ];

    fn name(self) -> &'static str {
        match self {
            Placeholder::WindowStart => "window_start",
            Placeholder::WindowEnd => "window_end",
            Placeholder::LookbackStart => "lookback_start",
            Placeholder::WindowStartUtc => "window_start_utc",
            Placeholder::WindowEndUtc => "window_end_utc",
            Placeholder::LookbackStartUtc => "lookback_start_utc",
            Placeholder::Watermark => "watermark",
        }
    }
}

/// Which query a file holds: the window of days, or the changes since a watermark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryKind {
    /// Sessions of a window (`shape = "sessions"`).
    Window,
    /// What changed since the watermark (incremental mode).
    Changes,
    /// Agent events of a window and the lookback before it (`shape = "events"`).
    Events,
}

/// A position in a source's changes: its largest change key read so far (incremental mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Watermark {
    /// A monotonic integer (an id, a sequence).
    Integer(i64),
    /// An insert or change timestamp, as the source writes it: wall time (`false`), compared as written; or
    /// an instant written with an offset (`true`), kept in UTC and sent back with `+00:00` so that the
    /// source compares the same instant.
    Timestamp(NaiveDateTime, bool),
}

impl Watermark {
    /// A change key (or a stored watermark) as text, read as `kind` says.
    pub fn parse(kind: WatermarkKind, text: &str) -> Result<Watermark, String> {
        let t = text.trim();
        match kind {
            WatermarkKind::Integer => t.parse::<i64>().map(Watermark::Integer).map_err(|_| {
                format!("change_key {t:?} is not an integer (watermark = \"integer\")")
            }),
            WatermarkKind::Timestamp => match sessions::parse_source_time(t) {
                Ok(SourceTime::Local(n)) => Ok(Watermark::Timestamp(n, false)),
                Ok(SourceTime::Utc(n)) => Ok(Watermark::Timestamp(n, true)),
                Err(e) => Err(format!("change_key: {e} (watermark = \"timestamp\")")),
            },
        }
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Watermark::Integer(i) => write!(f, "{i}"),
            Watermark::Timestamp(t, utc) => write!(
                f,
                "{}{}",
                t.format("%Y-%m-%d %H:%M:%S%.6f"),
                if *utc { "+00:00" } else { "" }
            ),
        }
    }
}

#[derive(Clone, Debug)]
enum Piece {
    Sql(String),
    Param(Placeholder),
}

/// A problem with an SQL file, naming the file and line.
#[derive(Debug)]
pub struct QueryFileError(String);

impl fmt::Display for QueryFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QueryFileError {}

#[derive(Clone, Debug)]
pub struct SourceQuery {
    path: PathBuf,
    pieces: Vec<Piece>,
    kind: QueryKind,
}

impl SourceQuery {
    /// Reads and checks the SQL file at `path` for a query of `kind`.
    pub fn load(path: &Path, kind: QueryKind) -> Result<SourceQuery, QueryFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            QueryFileError(format!("sql_file {}: cannot read it: {e}", path.display()))
        })?;
        Self::parse(path, &text, kind)
    }

    /// Checks `text` as a query of `kind`; `path` names the file in messages.
    pub fn parse(path: &Path, text: &str, kind: QueryKind) -> Result<SourceQuery, QueryFileError> {
        super::read_only::check(path, text).map_err(QueryFileError)?;
        let mut pieces = Vec::new();
        let mut sql = String::new();
        let b = text.as_bytes();
        let mut i = 0;
        let line_of = |pos: usize| text[..pos].bytes().filter(|c| *c == b'\n').count() + 1;
        while i < b.len() {
            match b[i] {
                b'\'' | b'"' => {
                    // A quoted literal or identifier; a doubled quote escapes itself.
                    let q = b[i];
                    let start = i;
                    i += 1;
                    while i < b.len() && !(b[i] == q && b.get(i + 1) != Some(&q)) {
                        i += if b[i] == q { 2 } else { 1 };
                    }
                    i = (i + 1).min(b.len());
                    sql.push_str(&text[start..i]);
                }
                // Comments are dropped: some drivers (SQLite ODBC) refuse a `;` inside one.
                b'-' if b.get(i + 1) == Some(&b'-') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    i += 2;
                    while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                        i += 1;
                    }
                    i = (i + 2).min(b.len());
                    sql.push(' ');
                }
                b'{' => {
                    let end = text[i..].find('}').map(|e| i + e);
                    let word = end.map(|e| &text[i + 1..e]);
                    match word {
                        Some(w)
                            if !w.is_empty()
                                && w.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') =>
                        {
                            let p = Placeholder::ALL.into_iter().find(|p| p.name() == w).ok_or_else(|| {
                                QueryFileError(format!(
                                    "sql_file {} line {}: unknown placeholder {{{w}}}; known are {{window_start}}, {{window_end}}, {{lookback_start}}, the same with _utc, {{watermark}}",
                                    path.display(),
                                    line_of(i)
                                ))
                            })?;
                            pieces.push(Piece::Sql(std::mem::take(&mut sql)));
                            pieces.push(Piece::Param(p));
                            i = end.unwrap_or(i) + 1;
                        }
                        // ODBC escapes such as {fn NOW()} or {ts '...'} pass through.
                        _ => {
                            sql.push('{');
                            i += 1;
                        }
                    }
                }
                _ => {
                    let start = i;
                    i += 1;
                    while i < b.len() && !matches!(b[i], b'\'' | b'"' | b'-' | b'/' | b'{') {
                        i += 1;
                    }
                    sql.push_str(&text[start..i]);
                }
            }
        }
        // One statement: a final `;` is dropped too.
        let end = sql.trim_end().trim_end_matches(';').trim_end().len();
        sql.truncate(end);
        pieces.push(Piece::Sql(sql));
        SourceQuery {
            kind,
            path: path.to_path_buf(),
            pieces,
        }
        .checked(kind)
    }

    /// The query, if it uses the placeholders a query of `kind` needs and no other kind's.
    fn checked(self, kind: QueryKind) -> Result<SourceQuery, QueryFileError> {
        let (q, path) = (&self, self.path.display());
        use Placeholder as P;
        // Each required bound, as local time or as an instant.
        let (required, why): (&[(P, P)], &str) = match kind {
            QueryKind::Window => (
                &[
                    (P::WindowStart, P::WindowStartUtc),
                    (P::WindowEnd, P::WindowEndUtc),
                ],
                "so that it reads only the window being synced",
            ),
            QueryKind::Changes => (
                &[(P::Watermark, P::Watermark)],
                "so that it reads only what changed since the last run",
            ),
            QueryKind::Events => (
                &[
                    (P::LookbackStart, P::LookbackStartUtc),
                    (P::WindowEnd, P::WindowEndUtc),
                ],
                "so that it reads the events of the window and of the lookback before it",
            ),
        };
        for (local, utc) in required {
            if !q.uses(*local) && !q.uses(*utc) {
                return Err(QueryFileError(format!(
                    "sql_file {path}: the query must use {{{}}} (or {{{}}}) {why}",
                    local.name(),
                    utc.name()
                )));
            }
        }
        if kind != QueryKind::Changes && q.uses(Placeholder::Watermark) {
            return Err(QueryFileError(format!(
                "sql_file {path}: {{watermark}} belongs in the changes query ([system.incremental] sql_file), not in the window query"
            )));
        }
        Ok(self)
    }

    /// Which query the file holds.
    pub fn kind(&self) -> QueryKind {
        self.kind
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn uses(&self, p: Placeholder) -> bool {
        self.pieces
            .iter()
            .any(|x| matches!(x, Piece::Param(q) if *q == p))
    }

    /// The statement to send and its parameters (empty for `Literal`): the window's local bounds, and the
    /// watermark a changes query reads after.
    pub fn render(
        &self,
        mode: WindowParameters,
        window: &Window,
        watermark: Option<Watermark>,
    ) -> (String, Vec<WindowParameter>) {
        let mut sql = String::new();
        let mut params = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Sql(s) => sql.push_str(s),
                Piece::Param(Placeholder::Watermark) => {
                    // `parse` refuses {watermark} in a window query, and a changes query is read with
                    // its watermark (`source::Read::Changes`).
                    let Some(w) = watermark else {
                        unreachable!("only a changes query has {{watermark}}")
                    };
                    match mode {
                        WindowParameters::Bound => {
                            sql.push('?');
                            params.push(odbc_watermark(w));
                        }
                        // Written from the program's own integer or chrono value, never from text.
                        WindowParameters::Literal => match w {
                            Watermark::Integer(i) => sql.push_str(&i.to_string()),
                            Watermark::Timestamp(..) => sql.push_str(&format!("'{w}'")),
                        },
                    }
                }
                Piece::Param(p) => {
                    let (t, instant) = match p {
                        Placeholder::WindowStart => (window.read.start, false),
                        Placeholder::WindowEnd => (window.read.end, false),
                        Placeholder::LookbackStart => (window.read.lookback_start, false),
                        Placeholder::WindowStartUtc => (window.read_utc.start, true),
                        Placeholder::WindowEndUtc => (window.read_utc.end, true),
                        Placeholder::LookbackStartUtc => (window.read_utc.lookback_start, true),
                        Placeholder::Watermark => unreachable!("matched above"),
                    };
                    if instant {
                        let text = t.format("%Y-%m-%d %H:%M:%S+00:00").to_string();
                        match mode {
                            WindowParameters::Bound => {
                                sql.push('?');
                                params.push(odbc_instant(text));
                            }
                            WindowParameters::Literal => sql.push_str(&format!("'{text}'")),
                        }
                        continue;
                    }
                    match mode {
                        WindowParameters::Bound => {
                            sql.push('?');
                            params.push(odbc_timestamp(t));
                        }
                        WindowParameters::Literal => {
                            // Whole seconds: window bounds are local midnights minus whole hours.
                            sql.push_str(&t.format("'%Y-%m-%d %H:%M:%S'").to_string());
                        }
                    }
                }
            }
        }
        (sql, params)
    }
}

/// A bound window bound: SQL type TIMESTAMP, sent as the text `YYYY-MM-DD HH:MM:SS` for the driver to
/// convert. Drivers render a C timestamp struct their own way (SQLite ODBC appends `.000`, which then
/// compares wrongly with TEXT columns at the exact bound); from text, each converts what its engine stores.
pub type WindowParameter = WithDataType<VarCharBox>;

fn odbc_watermark(w: Watermark) -> WindowParameter {
    match w {
        Watermark::Integer(i) => WithDataType {
            value: VarCharBox::from_string(i.to_string()),
            data_type: DataType::BigInt,
        },
        // An instant goes as text with its offset, which the server reads as that instant: as SQL
        // TIMESTAMP, psqlODBC would drop the offset and the server read the time in its own TimeZone.
        Watermark::Timestamp(_, true) => odbc_instant(w.to_string()),
        Watermark::Timestamp(_, false) => WithDataType {
            value: VarCharBox::from_string(w.to_string()),
            data_type: DataType::Timestamp { precision: 6 },
        },
    }
}

/// An instant, `YYYY-MM-DD HH:MM:SS[.ffffff]+00:00`, bound as text.
fn odbc_instant(text: String) -> WindowParameter {
    WithDataType {
        data_type: DataType::Varchar {
            length: std::num::NonZeroUsize::new(text.len()),
        },
        value: VarCharBox::from_string(text),
    }
}

fn odbc_timestamp(t: NaiveDateTime) -> WindowParameter {
    WithDataType {
        value: VarCharBox::from_string(t.format("%Y-%m-%d %H:%M:%S").to_string()),
        data_type: DataType::Timestamp { precision: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        Window::new(chrono_tz::Europe::Paris, crate::window::Days::one(day), 24)
    }

    fn window_query(text: &str) -> Result<SourceQuery, QueryFileError> {
        SourceQuery::parse(Path::new("x.sql"), text, QueryKind::Window)
    }

    #[test]
    fn placeholders_become_parameters_in_order_but_not_in_strings_or_comments() {
        let text = "-- {window_start} in a comment\nSELECT '{window_end}', {fn NOW()} /* {x} */ FROM t\nWHERE s >= {lookback_start} AND s < {window_end} AND (s >= {window_start} OR e IS NULL);\n";
        let q = window_query(text).unwrap();
        let (sql, params) = q.render(WindowParameters::Bound, &window(), None);
        assert!(
            !sql.contains("in a comment") && !sql.contains("{x}"),
            "comments are dropped: {sql}"
        );
        assert!(
            sql.contains("'{window_end}'") && sql.contains("{fn NOW()}"),
            "{sql}"
        );
        assert!(
            sql.ends_with("WHERE s >= ? AND s < ? AND (s >= ? OR e IS NULL)"),
            "{sql}"
        );
        let days: Vec<&[u8]> = params.iter().map(|p| p.value.as_bytes().unwrap()).collect();
        assert_eq!(
            days,
            [
                &b"2026-03-28 00:00:00"[..],
                b"2026-03-30 00:00:00",
                b"2026-03-29 00:00:00"
            ]
        );
        let (lit, none) = q.render(WindowParameters::Literal, &window(), None);
        assert!(none.is_empty());
        assert!(lit.ends_with("s >= '2026-03-28 00:00:00' AND s < '2026-03-30 00:00:00' AND (s >= '2026-03-29 00:00:00' OR e IS NULL)"), "{lit}");
    }

    #[test]
    fn unknown_or_missing_placeholders_are_refused_with_file_and_line() {
        let e = window_query("SELECT 1\nWHERE a < {window_ends}").unwrap_err();
        assert!(
            e.to_string()
                .contains("x.sql line 2: unknown placeholder {window_ends}"),
            "{e}"
        );
        let e = window_query("SELECT 1 WHERE a < {window_end}").unwrap_err();
        assert!(e.to_string().contains("must use {window_start}"), "{e}");
    }
}

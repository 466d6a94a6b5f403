//! Pure rules, no I/O: what a source row must hold to become a session, and its times in UTC.

mod repeated;
pub mod time;

use chrono::{NaiveDateTime, SubsecRound};
use chrono_tz::Tz;

pub use repeated::{resolve_repeated_hour, Reading, Repeat, RepeatedHourSession};
pub use time::{local_to_utc, parse_source_time, Fold, LocalZone, SourceTime};

/// The columns of the sessions query, in order (see sql/sources/README.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    AgentId,
    ActivityCode,
    StartedAt,
    EndedAt,
    /// The 5th column of an incremental system's queries.
    ChangeKey,
    /// A row of an events query (`shape = "events"`) that could not be read or paired.
    Event,
}

impl Field {
    pub const ALL: [Field; 4] = [
        Field::AgentId,
        Field::ActivityCode,
        Field::StartedAt,
        Field::EndedAt,
    ];

    /// The column name users see in the SQL contract and in `rejected_rows.field`.
    pub fn name(self) -> &'static str {
        match self {
            Field::AgentId => "agent_id",
            Field::ActivityCode => "activity_code",
            Field::StartedAt => "started_at",
            Field::EndedAt => "ended_at",
            Field::ChangeKey => "change_key",
            Field::Event => "event",
        }
    }
}

/// One row as the driver returned it: raw bytes, `None` for SQL NULL.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawRow<'a> {
    pub agent_id: Option<&'a [u8]>,
    pub activity_code: Option<&'a [u8]>,
    pub started_at: Option<&'a [u8]>,
    pub ended_at: Option<&'a [u8]>,
    /// The 5th column of an incremental system's queries (its change key), when there is one.
    pub change_key: Option<&'a [u8]>,
    /// A value of the row longer than its fetch buffer (the value above is then cut).
    pub too_long: Option<TooLong>,
}

/// A value longer than its fetch buffer: its column (0-based), its length as the driver reported it (`None`:
/// not said), and the buffer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong {
    pub column: usize,
    pub length: Option<usize>,
    pub buffer: usize,
}

impl TooLong {
    /// Why its row is not imported, naming `column`.
    pub fn reason(&self, column: &str) -> String {
        let length = self.length.map_or_else(
            || "longer than".to_owned(),
            |n| format!("{n} bytes, longer than"),
        );
        format!(
            "{column} is {length} its fetch buffer of {} bytes: the row is not imported rather than cut (raise max_text_bytes for this system)",
            self.buffer
        )
    }
}

impl RawRow<'_> {
    /// The value of a field as text, for `rejected_rows` (lossy for bytes that are not UTF-8).
    pub fn text(&self, field: Field) -> Option<String> {
        let v = match field {
            Field::AgentId => self.agent_id,
            Field::ActivityCode => self.activity_code,
            Field::StartedAt => self.started_at,
            Field::EndedAt => self.ended_at,
            Field::ChangeKey => self.change_key,
            Field::Event => None,
        };
        // (A NUL byte, which no WFM database holds in text, is written `\0`.)
        v.map(|b| String::from_utf8_lossy(b).replace('\0', "\\0"))
    }
}

/// A value holding a NUL byte: PostgreSQL's text cannot hold it, and it must not be cut there.
pub fn nul_byte(column: &str) -> Rejection {
    let field = match column {
        "agent_id" => Field::AgentId,
        "activity_code" => Field::ActivityCode,
        _ => Field::Event,
    };
    Rejection::new(
        field,
        format!("{column} holds a NUL byte (written \\0 here), which the WFM database cannot store: fix the value in the source, or strip it in the SQL file"),
    )
}

/// A valid row: a session with UTC times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceSession<'a> {
    pub agent_id: &'a str,
    pub activity_code: Option<&'a str>,
    pub started_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    /// The times as the source wrote them.
    pub start: SourceTime,
    pub end: Option<SourceTime>,
    /// A local time of this row happens twice (the hour the clocks go back).
    pub in_repeated_hour: bool,
    /// Its start is such a time (so the start itself is in question, not only the end).
    pub start_repeats: bool,
}

impl<'a> SourceSession<'a> {
    /// A session paired from events: its times are instants (UTC), so none is in a repeated hour.
    pub fn paired(
        agent_id: &'a str,
        activity_code: Option<&'a str>,
        started_at: NaiveDateTime,
        ended_at: Option<NaiveDateTime>,
    ) -> SourceSession<'a> {
        SourceSession {
            agent_id,
            activity_code,
            started_at,
            ended_at,
            start: SourceTime::Utc(started_at),
            end: ended_at.map(SourceTime::Utc),
            in_repeated_hour: false,
            start_repeats: false,
        }
    }
}

/// Why a row cannot be imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub field: Field,
    pub reason: String,
}

impl Rejection {
    pub fn new(field: Field, reason: impl Into<String>) -> Self {
        Rejection {
            field,
            reason: reason.into(),
        }
    }
}

fn text(field: Field, bytes: &[u8]) -> Result<&str, Rejection> {
    if bytes.contains(&0) {
        return Err(nul_byte(field.name()));
    }
    std::str::from_utf8(bytes)
        .map(str::trim)
        .map_err(|e| Rejection::new(field, format!("{} is not valid UTF-8 ({e})", field.name())))
}

fn time(field: Field, bytes: &[u8]) -> Result<Option<SourceTime>, Rejection> {
    if !bytes.is_ascii() {
        // Not a time; say whether it is not even text.
        text(field, bytes)?;
    }
    if bytes.trim_ascii().is_empty() {
        return Ok(None);
    }
    time::parse_source_bytes(bytes)
        .map(Some)
        .map_err(|e| Rejection::new(field, e))
}

/// Times to the microsecond (what both stores keep, so that a re-run compares equal to what it stored),
/// and an end that is not before its start.
pub fn checked_times(
    started_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
) -> Result<(NaiveDateTime, Option<NaiveDateTime>), Rejection> {
    let started_at = started_at.trunc_subsecs(6);
    let ended_at = ended_at.map(|e| e.trunc_subsecs(6));
    match ended_at {
        Some(end) if end < started_at => Err(Rejection::new(
            Field::EndedAt,
            format!("ends before it starts ({end} UTC < {started_at} UTC)"),
        )),
        _ => Ok((started_at, ended_at)),
    }
}

/// What a rejected row still says of the stored session it names: its agent ID, when it can be read, and
/// its start in UTC, when it can be read as one instant (`None` for a start that cannot be read, that
/// happens twice, or that the clocks jumped over). A sync keeps the sessions a rejected row names: its own, or with no start, all of the
/// agent's in the window.
pub fn named_session<'a>(
    row: &RawRow<'a>,
    zone: &mut LocalZone,
) -> (Option<&'a str>, Option<NaiveDateTime>) {
    let agent = row
        .agent_id
        .and_then(|b| text(Field::AgentId, b).ok())
        .filter(|a| !a.is_empty());
    let start = row
        .started_at
        .and_then(|b| time(Field::StartedAt, b).ok().flatten())
        .filter(|t| !matches!(t, SourceTime::Local(l) if time::in_gap(zone.tz(), *l)))
        .map(|t| zone.to_utc(t, Fold::First))
        .and_then(|(t, repeats)| (!repeats).then(|| t.trunc_subsecs(6)));
    (agent, start)
}

/// Checks one row and converts its times to UTC with the system's zone.
///
/// A row with a local time in a repeated hour (clocks going back) comes back with `in_repeated_hour` set and
/// its times read by the simple rule; the caller may read them again with `resolve_repeated_hour`, which
/// looks at the agent's other sessions of that hour.
///
/// Text is trimmed (CHAR columns pad with blanks); an empty code or end is the same as NULL.
pub fn validate<'a>(row: &RawRow<'a>, tz: Tz) -> Result<SourceSession<'a>, Rejection> {
    validate_in(row, &mut LocalZone::new(tz))
}

/// `validate` with a zone that remembers the offsets of recent local times (for a batch of rows).
pub fn validate_in<'a>(
    row: &RawRow<'a>,
    zone: &mut LocalZone,
) -> Result<SourceSession<'a>, Rejection> {
    if let Some(t) = row.too_long {
        let field = Field::ALL
            .get(t.column)
            .copied()
            .unwrap_or(Field::ChangeKey);
        return Err(Rejection::new(field, t.reason(field.name())));
    }
    let agent_id = match row.agent_id {
        None => return Err(Rejection::new(Field::AgentId, "no agent id (NULL)")),
        Some(b) => text(Field::AgentId, b)?,
    };
    if agent_id.is_empty() {
        return Err(Rejection::new(Field::AgentId, "no agent id (empty)"));
    }
    let activity_code = match row.activity_code {
        None => None,
        Some(b) => Some(text(Field::ActivityCode, b)?).filter(|c| !c.is_empty()),
    };
    let started = match row.started_at {
        None => None,
        Some(b) => time(Field::StartedAt, b)?,
    }
    .ok_or_else(|| Rejection::new(Field::StartedAt, "no start time"))?;
    let ended = match row.ended_at {
        None => None,
        Some(b) => time(Field::EndedAt, b)?,
    };
    let (started_at, start_repeats) = zone.to_utc(started, Fold::First);
    let (ended_at, end_repeats) = match ended {
        None => (None, false),
        Some(e) => {
            let (t, r) = zone.to_utc(e, Fold::NotBefore(started_at));
            (Some(t), r)
        }
    };
    // A start the clocks jumped over, read with the offset before the change, may fall after an end read
    // after it (`02:30` → `03:10`): then the start is read as the instant the clocks changed.
    let started_at = match (started, ended_at) {
        (SourceTime::Local(l), Some(end)) if end < started_at && time::in_gap(zone.tz(), l) => {
            time::gap_reading(zone.tz(), l, time::Side::Change)
        }
        _ => started_at,
    };
    let (started_at, ended_at) = checked_times(started_at, ended_at)?;
    Ok(SourceSession {
        agent_id,
        activity_code,
        started_at,
        ended_at,
        start: started,
        end: ended,
        in_repeated_hour: start_repeats || end_repeats,
        start_repeats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn paris() -> Tz {
        "Europe/Paris".parse().unwrap()
    }

    fn row<'a>(
        a: Option<&'a str>,
        c: Option<&'a str>,
        s: Option<&'a str>,
        e: Option<&'a str>,
    ) -> RawRow<'a> {
        RawRow {
            agent_id: a.map(str::as_bytes),
            activity_code: c.map(str::as_bytes),
            started_at: s.map(str::as_bytes),
            ended_at: e.map(str::as_bytes),
            change_key: None,
            too_long: None,
        }
    }

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn a_good_row_becomes_a_utc_session_with_trimmed_text() {
        let r = row(
            Some(" 1001 "),
            Some("BREAK  "),
            Some("2026-07-01 10:00:00"),
            Some("2026-07-01 10:15:00"),
        );
        let s = validate(&r, paris()).unwrap();
        assert_eq!(s.agent_id, "1001");
        assert_eq!(s.activity_code, Some("BREAK"));
        assert_eq!(s.started_at, dt("2026-07-01 08:00:00"));
        assert_eq!(s.ended_at, Some(dt("2026-07-01 08:15:00")));
    }

    #[test]
    fn empty_code_and_empty_end_mean_none_and_open() {
        let s = validate(
            &row(Some("7"), Some(""), Some("2026-01-05 09:00:00"), Some("")),
            paris(),
        )
        .unwrap();
        assert_eq!(s.activity_code, None);
        assert_eq!(s.ended_at, None);
    }

    #[test]
    fn rejections_name_the_field_and_the_reason() {
        let cases = [
            (
                row(None, None, Some("2026-01-05 09:00:00"), None),
                Field::AgentId,
                "no agent id",
            ),
            (
                row(Some("  "), None, Some("2026-01-05 09:00:00"), None),
                Field::AgentId,
                "no agent id",
            ),
            (
                row(Some("7"), None, None, None),
                Field::StartedAt,
                "no start time",
            ),
            (
                row(Some("7"), None, Some("soon"), None),
                Field::StartedAt,
                "\"soon\"",
            ),
            (
                row(Some("7"), None, Some("2026-01-05 09:00:00"), Some("later")),
                Field::EndedAt,
                "\"later\"",
            ),
            (
                row(
                    Some("7"),
                    None,
                    Some("2026-01-05 09:00:00"),
                    Some("2026-01-05 08:59:59"),
                ),
                Field::EndedAt,
                "ends before it starts",
            ),
        ];
        for (r, field, needle) in cases {
            let rej = validate(&r, paris()).unwrap_err();
            assert_eq!(rej.field, field, "{rej:?}");
            assert!(rej.reason.contains(needle), "{rej:?} should say {needle}");
        }
        let bad_utf8 = RawRow {
            change_key: None,
            too_long: None,
            agent_id: Some(b"\xff\xfe"),
            started_at: Some(b"2026-01-05 09:00:00"),
            ..Default::default()
        };
        assert_eq!(
            validate(&bad_utf8, paris()).unwrap_err().field,
            Field::AgentId
        );
    }

    #[test]
    fn a_pause_across_the_autumn_change_ends_in_the_second_pass() {
        // PAUSE at 02:40 summer time, UNPAUSE at 02:10 winter time: 90 minutes later in real time.
        let s = validate(
            &row(
                Some("7"),
                Some("LUNCH"),
                Some("2026-10-25 02:40:00"),
                Some("2026-10-25 02:10:00"),
            ),
            paris(),
        )
        .unwrap();
        assert_eq!(s.started_at, dt("2026-10-25 00:40:00"));
        assert_eq!(s.ended_at, Some(dt("2026-10-25 01:10:00")));
    }

    #[test]
    fn times_keep_microseconds_as_the_stores_do() {
        let s = validate(
            &row(Some("7"), None, Some("2026-07-01 10:00:00.123456789"), None),
            paris(),
        )
        .unwrap();
        assert_eq!(
            s.started_at,
            NaiveDateTime::parse_from_str("2026-07-01 08:00:00.123456", "%Y-%m-%d %H:%M:%S%.f")
                .unwrap()
        );
    }

    #[test]
    fn times_with_an_offset_ignore_the_zone() {
        let s = validate(
            &row(Some("7"), None, Some("2026-07-01 10:00:00+00"), None),
            paris(),
        )
        .unwrap();
        assert_eq!(s.started_at, dt("2026-07-01 10:00:00"));
    }

    proptest! {
        /// Local to UTC moves a time by the zone's offset (or less, inside the spring gap), and a session
        /// whose local end is not before its local start is never rejected for ending first, any day of the year.
        #[test]
        fn conversion_keeps_sessions_ordered(start_min in 0i64..(366 * 24 * 60), len_min in 0i64..(10 * 60)) {
            let tz = paris();
            let start = dt("2026-01-01 00:00:00") + chrono::Duration::minutes(start_min);
            let end = start + chrono::Duration::minutes(len_min);
            let s_txt = start.format("%Y-%m-%d %H:%M:%S").to_string();
            let e_txt = end.format("%Y-%m-%d %H:%M:%S").to_string();
            let r = row(Some("a"), None, Some(&s_txt), Some(&e_txt));
            let s = validate(&r, tz).unwrap();
            prop_assert!(s.ended_at.unwrap() >= s.started_at);
            let shift = (start - s.started_at).num_minutes();
            prop_assert!((60..=120).contains(&shift), "offset {shift} min");
        }
    }
}

//! One event of an events query, read and checked (`Event::read`): the values borrowed from the fetched
//! batch while it is paired.

use std::borrow::Cow;

use super::{Kind, Unpaired};
use crate::sessions::time::{self, SourceTime};
use crate::source::{RawEvent, EVENT_COLUMNS};

/// One event, checked: its row number in the result and its values (borrowed from the fetched batch
/// while it is paired: no text is copied for an event that changes nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    pub row: u64,
    pub agent: Cow<'a, str>,
    pub at: SourceTime,
    pub kind: Kind,
    pub code: Option<Cow<'a, str>>,
    pub scope: Option<Cow<'a, str>>,
    pub sequence: Option<i64>,
}

impl<'a> Event<'a> {
    /// Reads row `row` of an events query.
    pub fn read(row: u64, raw: &RawEvent<'a>) -> Result<Event<'a>, Box<Unpaired>> {
        let text = |k: usize| {
            raw.values[k].map(|b| String::from_utf8_lossy(b).trim().replace('\0', "\\0"))
        };
        let unpaired = |why: String| {
            Box::new(Unpaired {
                row,
                values: std::array::from_fn(text),
                at: None,
                reason: why,
            })
        };
        let utf8 = |k: usize| -> Result<Option<&'a str>, Box<Unpaired>> {
            if raw.values[k].is_some_and(|b| b.contains(&0)) {
                return Err(unpaired(crate::sessions::nul_byte(EVENT_COLUMNS[k]).reason));
            }
            match raw.values[k].map(std::str::from_utf8) {
                None => Ok(None),
                Some(Ok(t)) => Ok(Some(t.trim()).filter(|t| !t.is_empty())),
                Some(Err(e)) => Err(unpaired(format!(
                    "{} is not valid UTF-8 ({e})",
                    EVENT_COLUMNS[k]
                ))),
            }
        };
        if let Some(t) = raw.too_long {
            let column = EVENT_COLUMNS.get(t.column).copied().unwrap_or("?");
            return Err(unpaired(t.reason(column)));
        }
        let agent = utf8(0)?.ok_or_else(|| unpaired("no agent id".into()))?;
        let at = match utf8(1)? {
            None => return Err(unpaired("no event_time".into())),
            Some(t) => {
                time::parse_source_time(t).map_err(|e| unpaired(format!("event_time: {e}")))?
            }
        };
        let kind = utf8(2)?.unwrap_or_default();
        let kind = Kind::parse(kind).ok_or_else(|| {
            unpaired(format!("event {kind:?} is none of login, state, logout (map the source's events to them in the SQL file)"))
        })?;
        let sequence = match utf8(5)? {
            None => None,
            Some(t) => Some(
                t.parse::<i64>()
                    .map_err(|_| unpaired(format!("sequence {t:?} is not an integer")))?,
            ),
        };
        Ok(Event {
            row,
            agent: Cow::Borrowed(agent),
            at,
            kind,
            code: utf8(3)?.map(Cow::Borrowed),
            scope: utf8(4)?.map(Cow::Borrowed),
            sequence,
        })
    }

    /// The same event owning its text (to keep it beyond the batch).
    pub fn into_owned(self) -> Event<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Event {
            row: self.row,
            agent: own(self.agent),
            at: self.at,
            kind: self.kind,
            code: self.code.map(own),
            scope: self.scope.map(own),
            sequence: self.sequence,
        }
    }

    /// The event's values as text, in the order of `source::EVENT_COLUMNS`.
    pub fn texts(&self) -> [Option<String>; 6] {
        let at = match self.at {
            SourceTime::Local(l) => l.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
            SourceTime::Utc(u) => u.format("%Y-%m-%d %H:%M:%S%.f+00:00").to_string(),
        };
        [
            Some(self.agent.to_string()),
            Some(at),
            Some(self.kind.name().to_owned()),
            self.code.as_deref().map(str::to_owned),
            self.scope.as_deref().map(str::to_owned),
            self.sequence.map(|s| s.to_string()),
        ]
    }
}

//! `acdsync check`: is everything there before the first sync? Connects to the WFM database (is its schema
//! up to date?) and to every configured source, runs each system's query on a day no source holds
//! (1970-01-02) and, for an incremental system, its changes query after a watermark no row passes; checks the
//! number of columns each returns and reads the rows it returns as a sync would. Writes nothing anywhere:
//! no run row, no lock, the sources read-only as always.

use chrono::NaiveDate;

use crate::config::{Config, ExternalSystemConfig};
use crate::error::Failure;
use crate::events::Event;
use crate::source::query::{Watermark, WatermarkKind};
use crate::source::{self, Read, Shape};
use crate::store::{Create, Store};
use crate::window::{Days, Window};

/// What check found about one part: its name and `Ok(what answered)` or the error.
pub struct Finding {
    pub what: String,
    pub outcome: anyhow::Result<String>,
}

/// Checks the store and each system; the findings, in order (the store first).
pub fn check(config: &Config, systems: &[&ExternalSystemConfig]) -> Vec<Finding> {
    let mut out = vec![Finding {
        what: format!("WFM database {}", config.database_url.display()),
        outcome: Store::open(&config.database_url, Create::Never)
            .map_err(anyhow::Error::from)
            .and_then(|mut store| {
                store
                    .check_schema()
                    .map(|()| "answers, schema up to date".into())
            }),
    }];
    for system in systems {
        out.push(Finding {
            what: format!(
                "system {:?}: {}",
                system.name,
                system.query.path().display()
            ),
            outcome: window_query(system),
        });
        if let Some(inc) = &system.incremental {
            out.push(Finding {
                what: format!("system {:?}: {}", system.name, inc.query.path().display()),
                outcome: changes_query(system, inc.watermark),
            });
        }
    }
    out
}

/// The day the queries are run on: no ACD keeps it.
fn empty_day() -> Window {
    let day = NaiveDate::from_ymd_opt(1970, 1, 2).expect("a valid day");
    Window::new(chrono_tz::UTC, Days::one(day), 24)
}

fn window_query(system: &ExternalSystemConfig) -> anyhow::Result<String> {
    let window = Window::new(system.time_zone, empty_day().days, system.max_session_hours);
    let window = match system.shape {
        Shape::Events => window.reading_ahead(system.time_zone),
        Shape::Sessions => window,
    };
    let read = Read::Window {
        query: &system.query,
        window: &window,
    };
    read_all(system, read, "1970-01-02")
}

fn changes_query(system: &ExternalSystemConfig, kind: WatermarkKind) -> anyhow::Result<String> {
    let window = Window::new(system.time_zone, empty_day().days, system.max_session_hours);
    let watermark = match kind {
        WatermarkKind::Integer => Watermark::Integer(i64::MAX),
        WatermarkKind::Timestamp => Watermark::Timestamp(
            NaiveDate::from_ymd_opt(9999, 12, 31)
                .expect("a valid day")
                .and_hms_opt(23, 59, 59)
                .expect("a valid time"),
            false,
        ),
    };
    let read = Read::Changes {
        query: &system.incremental.as_ref().expect("incremental").query,
        window: &window,
        watermark,
    };
    read_all(system, read, &format!("after the watermark {watermark}"))
}

/// Runs a query to its end and reads its rows as a sync would: the first row that could not be imported
/// is the failure.
fn read_all(system: &ExternalSystemConfig, read: Read<'_>, on: &str) -> anyhow::Result<String> {
    let mut rows = source::open(system.source_spec()?, read)?;
    let mut zone = crate::sessions::LocalZone::new(system.time_zone);
    let mut first_bad: Option<String> = None;
    while let Some(batch) = rows.next_batch()? {
        for i in 0..batch.len() {
            let no = batch.row_no(i);
            let why = match system.shape {
                Shape::Sessions => crate::sessions::validate_in(&batch.row(i), &mut zone)
                    .err()
                    .map(|r| format!("{}: {}", r.field.name(), r.reason)),
                Shape::Events => Event::read(no, &batch.event(i)).err().map(|u| u.reason),
            };
            if let (None, Some(why)) = (&first_bad, why) {
                first_bad = Some(format!("row {no}: {why}"));
            }
        }
    }
    match first_bad {
        Some(why) => Err(Failure::Config(format!(
            "the query answers, but a row it returned {on} cannot be imported ({why}): see sql/sources/README.md"
        ))
        .into()),
        None => Ok(format!(
            "answers with the columns it must return ({} row(s) {on})",
            rows.read()
        )),
    }
}

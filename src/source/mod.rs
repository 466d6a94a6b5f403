//! The source side: run a system's SQL file over ODBC and hand its rows on in bulk, batch by batch.
//!
//! One ODBC environment per process; rows are fetched into bound columnar text buffers (no per-row driver
//! call, no per-row allocation), in a thread of their own with two buffers: the driver fills one while the
//! sync works through the other. Times are fetched as text and parsed by `sessions`, because drivers turn
//! text they cannot parse into NULL without an error (SQLite ODBC), and we want the row and value named.
//!
//! `open` connects and runs the query; the caller then pulls batches with `Rows::next_batch`, so that a
//! source that cannot be reached or a query that fails never opens a WFM transaction.

pub mod query;
mod read_only;

use anyhow::{anyhow, Context};
use odbc_api::buffers::TextRowSet;
use odbc_api::{
    BlockCursor, ConcurrentBlockCursor, Connection, ConnectionOptions, Cursor, OwnedCursor,
    ResultSetMetadata,
};

use crate::error::Failure;
use crate::sessions::{Field, RawRow};
use crate::window::Window;
use query::{SourceQuery, Watermark, WindowParameters};

/// Bytes for a timestamp read as text: `YYYY-MM-DD HH:MM:SS.fffffffff+HH:MM` and some slack.
const TIME_TEXT_BYTES: usize = 48;

/// What a system's query returns (`shape` in the config): sessions, or agent events acdsync pairs into
/// sessions (`crate::events`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    #[default]
    Sessions,
    Events,
}

/// The columns of the events query, in order (see sql/sources/README.md).
pub const EVENT_COLUMNS: [&str; 6] = [
    "agent_id",
    "event_time",
    "event",
    "activity_code",
    "scope",
    "sequence",
];

/// What the source needs to know of a system to read it.
pub struct Spec<'a> {
    /// The system's name, for messages.
    pub system: &'a str,
    /// The ODBC connection string (may hold a password: only for connecting).
    pub connection_string: String,
    pub window_parameters: WindowParameters,
    pub batch_rows: usize,
    pub max_text_bytes: usize,
    pub query_timeout_seconds: Option<usize>,
    /// Whether the queries return a 5th column, the change key (incremental systems).
    pub change_key: bool,
    pub shape: Shape,
}

/// What to read.
pub enum Read<'a> {
    /// A window query, for the window.
    Window {
        query: &'a SourceQuery,
        window: &'a Window,
    },
    /// A changes query, for the rows changed after the watermark (its window placeholders, if it has
    /// any, are today's).
    Changes {
        query: &'a SourceQuery,
        window: &'a Window,
        watermark: Watermark,
    },
}

/// One fetched batch of rows: as the driver returned them, or sessions paired from events.
pub struct Batch<'a> {
    rows: BatchRows<'a>,
    change_key: bool,
    /// The 1-based number of its first row in the whole result.
    first_row: u64,
}

enum BatchRows<'a> {
    Fetched(&'a TextRowSet),
    Paired(&'a [PairedRow]),
}

/// A session paired from events, as text (times in UTC with `+00:00`), and the row number of the event
/// that opened it.
pub struct PairedRow {
    pub values: [Option<String>; 4],
    pub row: u64,
}

/// One event as the driver returned it: raw bytes, `None` for SQL NULL (columns of `EVENT_COLUMNS`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RawEvent<'a> {
    pub values: [Option<&'a [u8]>; 6],
}

impl<'a> Batch<'a> {
    pub fn len(&self) -> usize {
        match self.rows {
            BatchRows::Fetched(rows) => rows.num_rows(),
            BatchRows::Paired(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of row `i` in the whole result (for paired sessions, of the event that opened it).
    pub fn row_no(&self, i: usize) -> u64 {
        match self.rows {
            BatchRows::Fetched(_) => self.first_row + i as u64,
            BatchRows::Paired(rows) => rows[i].row,
        }
    }

    pub fn row(&self, i: usize) -> RawRow<'a> {
        match self.rows {
            BatchRows::Fetched(rows) => RawRow {
                agent_id: rows.at(0, i),
                activity_code: rows.at(1, i),
                started_at: rows.at(2, i),
                ended_at: rows.at(3, i),
                change_key: if self.change_key { rows.at(4, i) } else { None },
            },
            BatchRows::Paired(rows) => {
                let v = |k: usize| rows[i].values[k].as_deref().map(str::as_bytes);
                RawRow {
                    agent_id: v(0),
                    activity_code: v(1),
                    started_at: v(2),
                    ended_at: v(3),
                    change_key: None,
                }
            }
        }
    }

    /// Row `i` of an events query.
    pub fn event(&self, i: usize) -> RawEvent<'a> {
        match self.rows {
            BatchRows::Fetched(rows) => RawEvent {
                values: std::array::from_fn(|k| rows.at(k, i)),
            },
            BatchRows::Paired(_) => RawEvent::default(),
        }
    }
}

type Fetcher = ConcurrentBlockCursor<OwnedCursor<Connection<'static>>, TextRowSet>;

/// The result of a source query, read batch by batch (`next_batch`): fetched from the driver, or the
/// sessions paired from an events query (`Rows::paired`).
pub struct Rows {
    fetcher: Option<Fetcher>,
    current: TextRowSet,
    paired: Option<Paired>,
    change_key: bool,
    /// Rows handed on so far.
    read: u64,
    system: String,
    sql_file: String,
    text_bytes: usize,
    /// Time spent waiting for the driver (debug log).
    waited: std::time::Duration,
}

/// Connects to the system's source and runs `what`. A system in incremental mode returns a 5th column, its
/// change key, from both of its queries.
pub fn open(spec: Spec<'_>, what: Read<'_>) -> anyhow::Result<Rows> {
    let (query, window, watermark) = match what {
        Read::Window { query, window } => (query, window, None),
        Read::Changes {
            query,
            window,
            watermark,
        } => (query, window, Some(watermark)),
    };
    let (sql, params) = query.render(spec.window_parameters, window, watermark);
    let expected: u16 = match (spec.shape, spec.change_key) {
        (Shape::Events, _) => 6,
        (Shape::Sessions, true) => 5,
        (Shape::Sessions, false) => 4,
    };
    let sql_file = query.path().display().to_string();
    let system = spec.system;
    let env = odbc_api::environment().map_err(|e| {
        Failure::Unavailable(format!("cannot set up ODBC (is unixODBC installed?): {e}"))
    })?;
    let conn = env
        .connect_with_connection_string(&spec.connection_string, ConnectionOptions::default())
        .map_err(|e| {
            Failure::Unavailable(format!(
                "system {system:?}: cannot connect to its ODBC source: {e}"
            ))
        })?;
    read_only(&conn, system)?;
    tracing::debug!(system, sql_file = %sql_file, parameters = params.len(), "running source query");
    let mut cursor = conn
        .into_cursor(&sql, &params[..], spec.query_timeout_seconds)
        .map_err(|e| anyhow!(odbc_api::Error::from(e)))
        .with_context(|| format!("system {system:?}: the query in {sql_file} failed"))?
        .ok_or_else(|| {
            Failure::Config(format!(
                "system {system:?}: the query in {sql_file} returned no result set"
            ))
        })?;
    let at = || format!("system {system:?}: reading the result of {sql_file}");
    let columns = cursor.num_result_cols().with_context(at)?;
    if columns != i16::try_from(expected).unwrap_or(i16::MAX) {
        let names = cursor
            .column_names()
            .map(|n| n.collect::<Result<Vec<_>, _>>().unwrap_or_default())
            .unwrap_or_default();
        let want = match (spec.shape, spec.change_key) {
            (Shape::Events, _) => "6: agent_id, event_time, event, activity_code, scope, sequence (shape = \"events\")",
            (Shape::Sessions, true) => "5: agent_id, activity_code, started_at, ended_at, change_key (the system has [system.incremental])",
            (Shape::Sessions, false) => "4: agent_id, activity_code, started_at, ended_at",
        };
        return Err(Failure::Config(format!(
            "system {system:?}: the query in {sql_file} returns {columns} column(s) ({}); it must return {want} (see sql/sources/README.md)",
            names.join(", ")
        ))
        .into());
    }
    let text = spec.max_text_bytes;
    let lens = match spec.shape {
        Shape::Sessions => [
            text,
            text,
            TIME_TEXT_BYTES,
            TIME_TEXT_BYTES,
            TIME_TEXT_BYTES,
            0,
        ],
        Shape::Events => [text, TIME_TEXT_BYTES, text, text, text, TIME_TEXT_BYTES],
    };
    let buffer = || {
        TextRowSet::from_max_str_lens(spec.batch_rows, lens[..usize::from(expected)].iter().copied())
            .with_context(|| {
                format!(
                    "system {system:?}: allocating the fetch buffer of batch_rows = {} rows of max_text_bytes = {text} (lower them)",
                    spec.batch_rows
                )
            })
    };
    let (first, current) = (buffer()?, buffer()?);
    let block: BlockCursor<_, _> = cursor.bind_buffer(first).with_context(at)?;
    Ok(Rows {
        // The driver fetches the next batch in its own thread while this one is merged.
        fetcher: Some(ConcurrentBlockCursor::from_block_cursor(block)),
        current,
        paired: None,
        change_key: spec.change_key,
        read: 0,
        system: system.to_owned(),
        sql_file,
        text_bytes: text,
        waited: std::time::Duration::ZERO,
    })
}

/// Puts the connection in read-only mode where acdsync knows how (see `read_only.rs`).
fn read_only(conn: &Connection<'_>, system: &str) -> anyhow::Result<()> {
    let dbms = conn.database_management_system_name().unwrap_or_default();
    match read_only::session_statement(&dbms) {
        Some(sql) => {
            conn.execute(sql, (), None).with_context(|| {
                format!("system {system:?}: making the source connection ({dbms}) read-only")
            })?;
        }
        None => tracing::debug!(
            system,
            dbms,
            "no read-only session statement known for this engine: the SQL file check applies"
        ),
    }
    Ok(())
}

impl Rows {
    /// The next batch, or `None` at the end of the result.
    pub fn next_batch(&mut self) -> anyhow::Result<Option<Batch<'_>>> {
        if let Some(p) = &mut self.paired {
            let from = p.next;
            p.next = (from + p.batch_rows).min(p.rows.len());
            return Ok((p.next > from).then(|| Batch {
                rows: BatchRows::Paired(&p.rows[from..p.next]),
                change_key: false,
                first_row: 0,
            }));
        }
        let Some(fetcher) = self.fetcher.as_mut() else {
            return Ok(None);
        };
        let wait_started = std::time::Instant::now();
        let fetched = fetcher.fetch_into(&mut self.current).map_err(|e| {
            fetch_error(&self.system, &self.sql_file, self.read, self.text_bytes, e)
        })?;
        self.waited += wait_started.elapsed();
        if !fetched {
            tracing::debug!(
                system = %self.system,
                rows = self.read,
                waiting_for_driver_s = self.waited.as_secs_f64(),
                "source result read"
            );
            return Ok(None);
        }
        let batch = Batch {
            rows: BatchRows::Fetched(&self.current),
            change_key: self.change_key,
            first_row: self.read + 1,
        };
        self.read += batch.len() as u64;
        Ok(Some(batch))
    }

    /// Rows handed on so far (for paired sessions: the events read).
    pub fn read(&self) -> u64 {
        self.read
    }

    /// These rows' events, paired: the sessions in start order, handed on in batches of `batch_rows`, and
    /// the events that could not be paired (`take_unpaired`). Reads the whole result.
    pub fn paired(mut self, tz: chrono_tz::Tz, batch_rows: usize) -> anyhow::Result<Rows> {
        let mut pairing = crate::events::Pairing::new(tz);
        let mut unpaired = Vec::new();
        let (system, sql_file) = (self.system.clone(), self.sql_file.clone());
        while let Some(batch) = self.next_batch()? {
            for i in 0..batch.len() {
                let no = batch.row_no(i);
                match crate::events::Event::read(no, &batch.event(i)) {
                    Ok(e) => pairing.push(e).map_err(|o| {
                        Failure::Config(format!(
                            "system {system:?}: row {} of {sql_file}: the events must come in the order they happened (ORDER BY the sequence column, else the time; see sql/sources/README.md)",
                            o.row
                        ))
                    })?,
                    Err(u) => unpaired.push(*u),
                }
            }
        }
        let (sessions, mut not_paired) = pairing.finish();
        unpaired.append(&mut not_paired);
        let rows = sessions.into_iter().map(|s| PairedRow {
            row: s.row,
            values: [
                Some(s.agent),
                s.code,
                Some(utc_text(s.start)),
                s.end.map(utc_text),
            ],
        });
        self.fetcher = None;
        self.paired = Some(Paired {
            rows: rows.collect(),
            next: 0,
            batch_rows: batch_rows.max(1),
            unpaired,
        });
        Ok(self)
    }

    /// The events that could not be paired (once).
    pub fn take_unpaired(&mut self) -> Vec<crate::events::Unpaired> {
        self.paired
            .as_mut()
            .map(|p| std::mem::take(&mut p.unpaired))
            .unwrap_or_default()
    }
}

/// Sessions paired from events, handed on batch by batch.
struct Paired {
    rows: Vec<PairedRow>,
    next: usize,
    batch_rows: usize,
    unpaired: Vec<crate::events::Unpaired>,
}

fn utc_text(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
}

fn fetch_error(
    system: &str,
    sql_file: &str,
    read: u64,
    text_bytes: usize,
    e: odbc_api::Error,
) -> anyhow::Error {
    {
        match e {
            odbc_api::Error::TooLargeValueForBuffer {
                indicator,
                buffer_index,
            } => {
                let field = Field::ALL
                    .get(buffer_index)
                    .map_or("change_key", |f| f.name());
                let size = if buffer_index < 2 {
                    text_bytes
                } else {
                    TIME_TEXT_BYTES
                };
                anyhow!(
                    "system {system:?}: a value of column {field} near row {} of {sql_file} is longer than its buffer ({size} bytes, driver says {indicator:?}); raise max_text_bytes for this system",
                    read + 1,
                )
            }
            e => anyhow!(
                "system {system:?}: fetching rows of {sql_file} after row {read} failed: {e}"
            ),
        }
    }
}

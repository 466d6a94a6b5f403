//! The source side: run a system's SQL file over ODBC and hand its rows on in bulk, batch by batch.
//!
//! One ODBC environment per process; rows are fetched into bound columnar text buffers (no per-row driver
//! call, no per-row allocation), in a thread of their own with two buffers: the driver fills one while the
//! sync works through the other. Times are fetched as text and parsed by `sessions`, because drivers turn
//! text they cannot parse into NULL without an error (SQLite ODBC), and we want the row and value named.

pub mod query;

use anyhow::{anyhow, Context};
use odbc_api::buffers::TextRowSet;
use odbc_api::{ConcurrentBlockCursor, ConnectionOptions, Cursor, ResultSetMetadata};

use crate::config::ExternalSystemConfig;
use crate::error::Failure;
use crate::secrets::redact;
use crate::sessions::{Field, RawRow};
use query::{LocalBounds, SourceQuery, Watermark};

/// Bytes for a timestamp read as text: `YYYY-MM-DD HH:MM:SS.fffffffff+HH:MM` and some slack.
const TIME_TEXT_BYTES: usize = 48;

/// One fetched batch; `first_row` is the 1-based number of its first row in the whole result.
pub struct Batch<'a> {
    rows: &'a TextRowSet,
    change_key: bool,
    pub first_row: u64,
}

impl<'a> Batch<'a> {
    pub fn len(&self) -> usize {
        self.rows.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn row(&self, i: usize) -> RawRow<'a> {
        RawRow {
            agent_id: self.rows.at(0, i),
            activity_code: self.rows.at(1, i),
            started_at: self.rows.at(2, i),
            ended_at: self.rows.at(3, i),
            change_key: if self.change_key {
                self.rows.at(4, i)
            } else {
                None
            },
        }
    }
}

/// What to read: the system's window query, or its changes query after a watermark.
pub enum Read<'q> {
    Window(&'q LocalBounds),
    Changes {
        query: &'q SourceQuery,
        watermark: Watermark,
        bounds: &'q LocalBounds,
    },
}

/// Runs the system's query for `bounds` and calls `on_batch` for every batch. Returns the number of rows read.
pub fn read_sessions(
    system: &ExternalSystemConfig,
    bounds: &LocalBounds,
    on_batch: impl FnMut(&Batch<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    read(system, Read::Window(bounds), on_batch)
}

/// Runs one of the system's queries and calls `on_batch` for every batch. Returns the number of rows read.
/// A system in incremental mode returns a 5th column, its change key, from both of its queries.
pub fn read(
    system: &ExternalSystemConfig,
    what: Read<'_>,
    mut on_batch: impl FnMut(&Batch<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let (query, sql, params) = match what {
        Read::Window(bounds) => {
            let (sql, params) = system.query.render(system.window_parameters, bounds);
            (&system.query, sql, params)
        }
        Read::Changes {
            query,
            watermark,
            bounds,
        } => {
            let (sql, params) =
                query.render_with(system.window_parameters, bounds, Some(watermark));
            (query, sql, params)
        }
    };
    let expected = if system.incremental.is_some() { 5 } else { 4 };
    let sql_file = query.path().display().to_string();
    let env = odbc_api::environment().map_err(|e| {
        Failure::Unavailable(format!(
            "cannot set up ODBC (is unixODBC installed?): {}",
            redact(&e.to_string())
        ))
    })?;
    let conn = env
        .connect_with_connection_string(&system.connection_string()?, ConnectionOptions::default())
        .map_err(|e| {
            Failure::Unavailable(format!(
                "system {:?}: cannot connect to its ODBC source: {}",
                system.name,
                redact(&e.to_string())
            ))
        })?;
    tracing::debug!(system = %system.name, sql_file = %sql_file, parameters = params.len(), "running source query");
    let mut cursor = conn
        .into_cursor(&sql, &params[..], system.query_timeout_seconds)
        .map_err(|e| anyhow!(redact(&odbc_api::Error::from(e).to_string())))
        .with_context(|| format!("system {:?}: the query in {sql_file} failed", system.name))?
        .ok_or_else(|| {
            Failure::Config(format!(
                "system {:?}: the query in {sql_file} returned no result set",
                system.name
            ))
        })?;
    tracing::debug!(system = %system.name, "source query executed, fetching");
    let at = || format!("system {:?}: reading the result of {sql_file}", system.name);
    let columns = cursor
        .num_result_cols()
        .map_err(|e| anyhow!(redact(&e.to_string())))
        .with_context(at)?;
    if columns != expected {
        let names = cursor
            .column_names()
            .map(|n| n.collect::<Result<Vec<_>, _>>().unwrap_or_default())
            .unwrap_or_default();
        let want = if expected == 5 {
            "5: agent_id, activity_code, started_at, ended_at, change_key (the system has [system.incremental])"
        } else {
            "4: agent_id, activity_code, started_at, ended_at"
        };
        return Err(Failure::Config(format!(
            "system {:?}: the query in {sql_file} returns {columns} column(s) ({}); it must return {want} (see sql/sources/README.md)",
            system.name,
            names.join(", ")
        ))
        .into());
    }
    let text = system.max_text_bytes;
    let lens = [
        text,
        text,
        TIME_TEXT_BYTES,
        TIME_TEXT_BYTES,
        TIME_TEXT_BYTES,
    ];
    let buffer = || {
        TextRowSet::from_max_str_lens(system.batch_rows, lens[..expected as usize].iter().copied())
            .with_context(|| {
                format!(
                    "system {:?}: allocating the fetch buffer of batch_rows = {} rows of max_text_bytes = {text} (lower them)",
                    system.name, system.batch_rows
                )
            })
    };
    let (first, mut current) = (buffer()?, buffer()?);
    let block = cursor
        .bind_buffer(first)
        .map_err(|e| anyhow!(redact(&e.to_string())))
        .with_context(at)?;
    // The driver fetches the next batch in its own thread while this one is merged.
    let mut fetcher = ConcurrentBlockCursor::from_block_cursor(block);
    let mut read: u64 = 0;
    // Where the time goes, for the debug log: waiting for the driver, or merging.
    let (mut waiting, mut merging) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    loop {
        let wait_started = std::time::Instant::now();
        let fetched = fetcher.fetch_into(&mut current).map_err(|e| {
            let detail = redact(&e.to_string());
            match e {
                odbc_api::Error::TooLargeValueForBuffer { indicator, buffer_index } => {
                    let field = Field::ALL.get(buffer_index).map_or("change_key", |f| f.name());
                    anyhow!(
                        "system {:?}: a value of column {field} near row {} of {sql_file} is longer than its buffer ({} bytes, driver says {indicator:?}); raise max_text_bytes for this system",
                        system.name,
                        read + 1,
                        if buffer_index < 2 { text } else { TIME_TEXT_BYTES }
                    )
                }
                _ => anyhow!("system {:?}: fetching rows of {sql_file} after row {read} failed: {detail}", system.name),
            }
        })?;
        waiting += wait_started.elapsed();
        if !fetched {
            tracing::debug!(
                system = %system.name,
                rows = read,
                waiting_for_driver_s = waiting.as_secs_f64(),
                merging_s = merging.as_secs_f64(),
                "source result read"
            );
            break;
        }
        let batch = Batch {
            rows: &current,
            change_key: expected == 5,
            first_row: read + 1,
        };
        read += batch.len() as u64;
        let merge_started = std::time::Instant::now();
        on_batch(&batch)?;
        merging += merge_started.elapsed();
    }
    Ok(read)
}

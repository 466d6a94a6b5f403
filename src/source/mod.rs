//! The source side: run a system's SQL file over ODBC and hand its rows on in bulk, batch by batch.
//!
//! One ODBC environment per process; rows are fetched into bound columnar text buffers (no per-row driver
//! call, no per-row allocation). Times are fetched as text and parsed by `sessions`, because drivers turn
//! text they cannot parse into NULL without an error (SQLite ODBC), and we want the row and value named.

pub mod query;

use anyhow::{anyhow, Context};
use odbc_api::buffers::TextRowSet;
use odbc_api::{ConnectionOptions, Cursor, ResultSetMetadata};

use crate::config::ExternalSystemConfig;
use crate::error::Failure;
use crate::secrets::redact;
use crate::sessions::{Field, RawRow};
use query::LocalBounds;

/// Bytes for a timestamp read as text: `YYYY-MM-DD HH:MM:SS.fffffffff+HH:MM` and some slack.
const TIME_TEXT_BYTES: usize = 48;

/// One fetched batch; `first_row` is the 1-based number of its first row in the whole result.
pub struct Batch<'a> {
    rows: &'a TextRowSet,
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
        }
    }
}

/// Runs the system's query for `bounds` and calls `on_batch` for every batch. Returns the number of rows read.
pub fn read_sessions(
    system: &ExternalSystemConfig,
    bounds: &LocalBounds,
    mut on_batch: impl FnMut(&Batch<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let sql_file = system.query.path().display().to_string();
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
    let (sql, params) = system.query.render(system.window_parameters, bounds);
    tracing::debug!(system = %system.name, sql_file = %sql_file, parameters = params.len(), "running source query");
    let mut cursor = conn
        .execute(&sql, &params[..], system.query_timeout_seconds)
        .map_err(|e| anyhow!(redact(&e.to_string())))
        .with_context(|| format!("system {:?}: the query in {sql_file} failed", system.name))?
        .ok_or_else(|| {
            Failure::Config(format!(
                "system {:?}: the query in {sql_file} returned no result set",
                system.name
            ))
        })?;
    let at = || format!("system {:?}: reading the result of {sql_file}", system.name);
    let columns = cursor
        .num_result_cols()
        .map_err(|e| anyhow!(redact(&e.to_string())))
        .with_context(at)?;
    if columns != 4 {
        let names = cursor
            .column_names()
            .map(|n| n.collect::<Result<Vec<_>, _>>().unwrap_or_default())
            .unwrap_or_default();
        return Err(Failure::Config(format!(
            "system {:?}: the query in {sql_file} returns {columns} column(s) ({}); it must return 4: agent_id, activity_code, started_at, ended_at (see sql/sources/README.md)",
            system.name,
            names.join(", ")
        ))
        .into());
    }
    let text = system.max_text_bytes;
    let buffer = TextRowSet::from_max_str_lens(
        system.batch_rows,
        [text, text, TIME_TEXT_BYTES, TIME_TEXT_BYTES],
    )
    .with_context(|| {
        format!(
            "system {:?}: allocating the fetch buffer of batch_rows = {} rows of max_text_bytes = {text} (lower them)",
            system.name, system.batch_rows
        )
    })?;
    let mut block = cursor
        .bind_buffer(buffer)
        .map_err(|e| anyhow!(redact(&e.to_string())))
        .with_context(at)?;
    let mut read: u64 = 0;
    loop {
        let fetched = block.fetch_with_truncation_check(true).map_err(|e| {
            let detail = redact(&e.to_string());
            match e {
                odbc_api::Error::TooLargeValueForBuffer { indicator, buffer_index } => {
                    let field = Field::ALL.get(buffer_index).map_or("?", |f| f.name());
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
        let Some(rows) = fetched else { break };
        let batch = Batch {
            rows,
            first_row: read + 1,
        };
        read += batch.len() as u64;
        on_batch(&batch)?;
    }
    Ok(read)
}

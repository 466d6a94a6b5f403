//! The fetch thread: the driver fills the next batch while the merge works on the current one (double
//! buffering, as odbc-api's `ConcurrentBlockCursor`), except that a value longer than its buffer does not
//! fail the whole result: it stays cut in the buffer, and the row holding it is rejected by name
//! (`Batch::too_long`), so that no value is imported cut and the other rows are imported.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use odbc_api::buffers::TextRowSet;
use odbc_api::handles::{AsStatementRef, Statement};
use odbc_api::{BlockCursor, Connection, Cursor, OwnedCursor, RowSetBuffer};

use crate::stop::Armed;

type Block = BlockCursor<OwnedCursor<Connection<'static>>, TextRowSet>;

/// Arms `SQLCancel` on `statement` for SIGTERM and SIGINT (`crate::stop`): a query still executing, or a
/// fetch waiting for the server, ends at once with the driver's error, and the run stops as interrupted.
///
/// The hook must be disarmed (dropped) before the statement is freed, as the fetch thread does. On the
/// error paths of `source::open` the statement is freed first (odbc-api frees it inside a failed execute or
/// bind): a signal in the microseconds before the hook is dropped reaches unixODBC with a freed handle,
/// which unixODBC checks against the handles it holds and refuses (SQL_INVALID_HANDLE).
pub(super) fn cancel_on_signal(statement: &mut impl AsStatementRef) -> Armed {
    let handle = statement.as_stmt_ref().as_sys().0 as usize;
    crate::stop::on_signal(move || {
        // Safety: the handle is live while the hook is armed (above); SQLCancel may be called from another
        // thread than the one running the statement (that is its purpose in the ODBC API).
        let code = unsafe { odbc_api::sys::SQLCancel(odbc_api::sys::HStmt(handle as *mut _)) };
        tracing::debug!(?code, "SQLCancel on the source statement");
    })
}

pub(super) struct Fetcher {
    /// Empty buffers back to the thread, to fill.
    to_fill: Option<SyncSender<TextRowSet>>,
    /// Filled buffers from the thread, and whether a value in one is longer than its buffer.
    filled: Option<Receiver<(TextRowSet, bool)>>,
    thread: Option<JoinHandle<Result<(), odbc_api::Error>>>,
}

impl Fetcher {
    /// Starts fetching into the buffer bound to `block`; `cancel` (the statement's cancel hook) is disarmed
    /// when the thread ends, before the statement is freed.
    pub fn new(block: Block, cancel: Armed) -> Fetcher {
        let (to_fill, fill_rx) = sync_channel::<TextRowSet>(1);
        let (filled_tx, filled) = sync_channel::<(TextRowSet, bool)>(1);
        let thread = std::thread::Builder::new()
            .name("acdsync-fetch".into())
            .spawn(move || -> Result<(), odbc_api::Error> {
                // The statement, bound to a buffer or between two: it is here at every return, so that it is
                // freed after the hook is disarmed.
                let mut bound = Some(block);
                let mut unbound = None;
                let result = (|| loop {
                    // (Values longer than their buffer are found row by row by the merge.)
                    let block = bound.as_mut().expect("a bound cursor");
                    if block.fetch_with_truncation_check(false)?.is_none() {
                        return Ok(());
                    }
                    let (cursor, buffer) = bound.take().expect("a bound cursor").unbind()?;
                    unbound = Some(cursor);
                    // (Looked for here, on this thread, once a batch: rows are scanned only when found.)
                    let too_long = buffer.find_truncation().is_some();
                    if filled_tx.send((buffer, too_long)).is_err() {
                        return Ok(()); // the reader went away
                    }
                    match fill_rx.recv() {
                        Ok(next) => {
                            let cursor = unbound.take().expect("an unbound cursor");
                            bound = Some(cursor.bind_buffer(next)?);
                        }
                        Err(_) => return Ok(()),
                    }
                })();
                drop(cancel);
                drop((bound, unbound));
                result
            })
            .expect("spawning the fetch thread");
        Fetcher {
            to_fill: Some(to_fill),
            filled: Some(filled),
            thread: Some(thread),
        }
    }

    /// The next batch, swapped into `buffer` (whose old contents go back to be filled): `Some(whether a
    /// value in it is longer than its buffer)`, `None` at the end of the result, or the driver's error.
    pub fn fetch_into(&mut self, buffer: &mut TextRowSet) -> Result<Option<bool>, odbc_api::Error> {
        let next = self.filled.as_ref().and_then(|f| f.recv().ok());
        match next {
            Some((mut batch, too_long)) => {
                std::mem::swap(buffer, &mut batch);
                if let Some(to_fill) = &self.to_fill {
                    let _ = to_fill.send(batch);
                }
                Ok(Some(too_long))
            }
            // The thread ended: at the end of the result, or on an error it returns.
            None => match self.thread.take() {
                Some(thread) => thread
                    .join()
                    .expect("the fetch thread panicked")
                    .map(|()| None),
                None => Ok(None),
            },
        }
    }
}

/// Stops the thread (its channels close, so it stops at its next batch) and joins it: it never outlives
/// the result it reads.
impl Drop for Fetcher {
    fn drop(&mut self) {
        drop(self.to_fill.take());
        drop(self.filled.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

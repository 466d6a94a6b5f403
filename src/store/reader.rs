//! The stored sessions of a window, read in key order (start, agent) on a second connection.

use anyhow::Context;

use super::models::StoredSession;
use super::{Create, Store};
use crate::config::DatabaseUrl;
use crate::window::Bounds;

/// The pages `WindowReader::read` sends, in key order; `None` once the window is read.
pub struct WindowPages {
    rx: Option<std::sync::mpsc::Receiver<anyhow::Result<Vec<StoredSession>>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

/// Joins the reader thread, also when a run stops before the window is read: its channel closes, so it stops
/// at its next page, and it never outlives the run (a thread still connecting while the process exits can
/// crash it in the TLS library's cleanup).
impl Drop for WindowPages {
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl WindowPages {
    pub fn next_page(&mut self) -> anyhow::Result<Option<Vec<StoredSession>>> {
        let Some(rx) = &self.rx else {
            return Ok(None);
        };
        match rx.recv() {
            Ok(page) => page.map(Some),
            Err(_) => {
                if let Some(h) = self.handle.take() {
                    let _ = h.join();
                }
                Ok(None)
            }
        }
    }
}

/// Reads the stored sessions of a window in key order (start, agent), page by page, on a second connection
/// and a thread of its own, so that the source fetch, the store read and the merge overlap. The reader sees
/// what is committed: not the writes of the sync running beside it (PostgreSQL's MVCC, SQLite's WAL), which
/// is what the merge wants. At most two pages wait in the channel.
pub struct WindowReader {
    url: DatabaseUrl,
    name: String,
}

impl Store {
    /// What a sync needs to read a window beside its own connection.
    pub fn window_reader(&self) -> WindowReader {
        WindowReader {
            url: self.url.clone(),
            name: self.name.clone(),
        }
    }
}

impl WindowReader {
    /// Starts reading the stored sessions of system `system_id` in `window` (UTC).
    pub fn read(&self, system_id: i64, window: Bounds, page_rows: usize) -> WindowPages {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let url = self.url.clone();
        let name = self.name.clone();
        let handle = std::thread::Builder::new()
            .name("acdsync-store-reader".into())
            .spawn(move || {
                let result = (|| -> anyhow::Result<()> {
                    let mut reader = Store::open(&url, Create::Never)?;
                    let mut send = |page| tx.send(Ok(page)).is_ok();
                    reader
                        .ops()
                        .stream_window(system_id, &window, page_rows, &mut send)
                        .with_context(|| {
                            format!("reading the stored sessions of the window from {name}")
                        })
                })();
                if let Err(e) = result {
                    let _ = tx.send(Err(e));
                }
            })
            .expect("spawning a thread");
        WindowPages {
            rx: Some(rx),
            handle: Some(handle),
        }
    }
}

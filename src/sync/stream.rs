//! The stored side of a full sync: the window's sessions, read in key order (start, agent) on another
//! connection (`store::WindowReader`), held from the current source start to one page ahead. Rows are
//! matched by binary search in key order: no hashing.

use std::collections::VecDeque;

use super::merge::Slot;
use crate::store::models::SessionKey;
use crate::store::reader::WindowPages;

pub(super) struct StoredStream {
    pages: WindowPages,
    done: bool,
    /// Start of the last stored session read, and its key.
    read_up_to: Option<i64>,
    last_key: Option<SessionKey>,
    /// Read and not settled yet, in key order.
    pending: VecDeque<(SessionKey, Slot)>,
    /// Time spent waiting for the reader (debug log).
    waited: std::time::Duration,
}

/// What the stored stream holds for a key.
pub(super) enum Stored {
    /// A stored session, now taken by this row.
    Taken(Slot),
    /// A stored session an earlier row of this result took: this row is a duplicate.
    AlreadyTaken,
    Absent,
}

impl StoredStream {
    pub fn new(pages: WindowPages) -> StoredStream {
        StoredStream {
            pages,
            done: false,
            read_up_to: None,
            last_key: None,
            pending: VecDeque::new(),
            waited: std::time::Duration::ZERO,
        }
    }

    /// Takes the stored session of `key` read and not taken yet.
    pub fn take(&mut self, key: SessionKey) -> Stored {
        match self.pending.binary_search_by(|(k, _)| k.cmp(&key)) {
            Err(_) => Stored::Absent,
            Ok(i) if self.pending[i].1.seen => Stored::AlreadyTaken,
            Ok(i) => {
                let slot = &mut self.pending[i].1;
                slot.seen = true;
                Stored::Taken(*slot)
            }
        }
    }

    /// Gives back the stored session of `key` taken earlier (a session paired from events that lasted no
    /// time): a later row may take it, or it is settled as no row's.
    pub fn put_back(&mut self, key: SessionKey) {
        if let Ok(i) = self.pending.binary_search_by(|(k, _)| k.cmp(&key)) {
            self.pending[i].1.seen = false;
        }
    }

    /// Whether the stream must be read further before rows starting at `start` can be matched.
    pub fn behind(&self, start: i64) -> bool {
        !self.done && self.read_up_to.is_none_or(|u| u <= start)
    }

    pub fn done(&self) -> bool {
        self.done
    }

    /// Removes the sessions read that start before `start`; returns those no source row matched.
    pub fn settle_before(&mut self, start: i64) -> Vec<(SessionKey, Slot)> {
        let mut gone = Vec::new();
        while self.pending.front().is_some_and(|(k, _)| k.start < start) {
            let (key, slot) = self.pending.pop_front().expect("checked above");
            if !slot.seen {
                gone.push((key, slot));
            }
        }
        gone
    }

    /// Reads the next page. Sessions that `hold` picks are returned instead of kept in the stream (the
    /// repeated hour, merged by key at the end).
    pub fn read_page(
        &mut self,
        hold: impl Fn(i64) -> bool,
    ) -> anyhow::Result<Vec<(SessionKey, Slot)>> {
        let wait_started = std::time::Instant::now();
        let page = self.pages.next_page()?;
        self.waited += wait_started.elapsed();
        let mut held = Vec::new();
        let Some(page) = page else {
            self.done = true;
            tracing::debug!(
                waiting_for_store_s = self.waited.as_secs_f64(),
                "stored window read to its end"
            );
            return Ok(held);
        };
        for s in page {
            let key = s.key();
            // The merge relies on this order (binary search, settling what lies behind).
            if self.last_key.is_some_and(|last| key <= last) {
                anyhow::bail!(
                    "the stored sessions of the window came out of key order at session id {} (a bug: please report it)",
                    s.id
                );
            }
            self.last_key = Some(key);
            self.read_up_to = Some(key.start);
            if hold(key.start) {
                held.push((key, Slot::of(&s)));
            } else {
                self.pending.push_back((key, Slot::of(&s)));
            }
        }
        Ok(held)
    }
}

//! The changes merge (incremental mode): the rows changed since the watermark come in any order and may
//! belong to any day, so each batch is merged by key with the stored sessions it names (inserts and
//! updates; deletions wait for the next full sync) and its writes are queued before the next batch looks
//! anything up. It costs what changed, not the size of the day.

use super::merge::{Core, ValidRow};
use super::queue::Queue;
use super::run::Merged;
use crate::source::{Batch, Rows};

pub(super) struct ChangesMerge<'p> {
    core: Core<'p>,
}

impl<'p> ChangesMerge<'p> {
    pub fn new(core: Core<'p>) -> ChangesMerge<'p> {
        ChangesMerge { core }
    }

    pub fn run(mut self, queue: &Queue, rows: &mut Rows) -> anyhow::Result<Merged> {
        while let Some(batch) = rows.next_batch()? {
            self.batch(queue, &batch)?;
        }
        self.core.counts.read = rows.read();
        self.core.flush(queue, true)?;
        Ok(self.core.into_merged(0, None))
    }

    fn batch(&mut self, queue: &Queue, batch: &Batch<'_>) -> anyhow::Result<()> {
        let mut valid: Vec<ValidRow<'_>> = Vec::with_capacity(batch.len());
        for i in 0..batch.len() {
            let no = batch.row_no(i);
            let raw = batch.row(i);
            if let Some(s) = self.core.admit(no, &raw) {
                valid.push(ValidRow { no, raw, s });
            }
        }
        if !self.core.deferred.is_empty() {
            let deferred = &self.core.deferred;
            valid.retain(|v| !deferred.contains(&(Box::from(v.s.agent_id), v.s.start)));
        }
        self.core.merge_keyed(queue, valid)?;
        // Nothing is held between batches: a later batch naming the same session finds it written.
        self.core.stored.clear();
        self.core.inserted.clear();
        self.core.flush(queue, true)
    }
}

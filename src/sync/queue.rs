//! The WFM connection during a merge, driven by a writer thread of its own: writes are queued (at most two
//! waiting) and run while the merge goes on with the next batch, so the database's work (PostgreSQL's COPY
//! and index updates, SQLite's B-tree) overlaps the fetch and the compare on the other core. Everything
//! runs in order on the one connection, inside the run's transaction.
//!
//! What the merge sends is typed. A `Write`, and a question that must see the writes queued before it
//! (`Queued::SessionsAt`), wait their turn. An `Ahead` question jumps the queue (it runs after the write
//! under way): only questions whose answer no queued write can change are `Ahead`, and the type says which
//! they are. After a failed write the thread runs nothing more: every message still queued is dropped
//! (a question waiting there gets no answer and fails at once), the merge's next message fails with
//! `WriterStopped`, and the writer's error is the one reported.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use crossbeam_channel::{bounded, select_biased, unbounded, Receiver, Sender};

use crate::store::models::*;
use crate::store::WfmOps;

/// Sessions and rejected rows to write.
pub(super) enum Write {
    Insert(Vec<NewSession>),
    Update(Vec<SessionChange>),
    Delete(Vec<i64>),
    Reject(Vec<NewRejectedRow>),
}

type Reply<T> = Sender<anyhow::Result<T>>;

/// Questions that run before the queued writes.
enum Ahead {
    /// New agent IDs or codes: the queued rows name only registered ones, and nothing else writes names.
    Register(NameKind, Vec<NewName>, Reply<Vec<(i64, String)>>),
    /// Stored names: only `Register` writes them.
    Named(NameKind, Vec<String>, Reply<Vec<NameRow>>),
    /// Sessions that start before the window and are not in the stored window: no queued write names
    /// them (they are neither read from the stored window nor written yet).
    BeforeWindow(Vec<SessionKey>, Reply<Vec<StoredSession>>),
}

/// What waits its turn.
enum Queued {
    Write(Write),
    /// Stored sessions by key, as the writes queued before this question left them.
    SessionsAt(Vec<SessionKey>, Reply<Vec<StoredSession>>),
}

/// Sessions the writer wrote.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Written {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

/// The merge's end of the queue.
pub(super) struct Queue {
    /// Set by the writer when it stops on a failure: the merge stops at its next write.
    stopped: Arc<AtomicBool>,
    queued: Sender<Queued>,
    ahead: Sender<Ahead>,
}

/// The merge's error when the writer stopped on a failure of its own (which is then reported instead).
#[derive(Debug, thiserror::Error)]
#[error("an earlier write to the WFM database failed")]
pub(super) struct WriterStopped;

/// Runs `merge` with a queue whose writer thread works on `ops`; returns what `merge` returned and what
/// was written. The writer's failure, the cause of the merge's, is reported first.
pub(super) fn with_queue<R>(
    ops: &mut (dyn WfmOps + Send),
    system_id: i64,
    merge: impl FnOnce(&Queue) -> anyhow::Result<R>,
) -> anyhow::Result<(R, Written)> {
    let (queued, queued_rx) = bounded(2);
    let (ahead, ahead_rx) = unbounded();
    let stopped = Arc::new(AtomicBool::new(false));
    let writer_stopped = Arc::clone(&stopped);
    std::thread::scope(|scope| {
        let writer = std::thread::Builder::new()
            .name("acdsync-writer".into())
            .spawn_scoped(scope, move || {
                run_writer(ops, system_id, queued_rx, ahead_rx, &writer_stopped)
            })
            .context("starting the writer thread")?;
        let merged = merge(&Queue {
            stopped,
            queued,
            ahead,
        });
        // The queue is dropped here: the writer runs what is left and stops.
        let written = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
        match (merged, written) {
            (Ok(merged), Ok(written)) => Ok((merged, written)),
            // The writer's failure is the cause of the merge's.
            (Err(e), Err(w)) if e.is::<WriterStopped>() => Err(w),
            (Err(e), _) => Err(e),
            (Ok(_), Err(w)) => Err(w),
        }
    })
}

impl Queue {
    pub fn write(&self, w: Write) -> anyhow::Result<()> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(WriterStopped.into());
        }
        self.queued
            .send(Queued::Write(w))
            .map_err(|_| WriterStopped.into())
    }

    /// Registers new agent IDs or codes; returns the ids of all of them.
    pub fn register(
        &self,
        kind: NameKind,
        rows: Vec<NewName>,
    ) -> anyhow::Result<Vec<(i64, String)>> {
        self.ask_ahead(|reply| Ahead::Register(kind, rows, reply))
    }

    /// The stored agent IDs or codes among `names`.
    pub fn named(&self, kind: NameKind, names: Vec<String>) -> anyhow::Result<Vec<NameRow>> {
        self.ask_ahead(|reply| Ahead::Named(kind, names, reply))
    }

    /// Stored sessions that start before the window and are not in the stored window.
    pub fn before_window(&self, keys: Vec<SessionKey>) -> anyhow::Result<Vec<StoredSession>> {
        self.ask_ahead(|reply| Ahead::BeforeWindow(keys, reply))
    }

    /// Stored sessions by key, after the writes queued so far.
    pub fn sessions_at(&self, keys: Vec<SessionKey>) -> anyhow::Result<Vec<StoredSession>> {
        let (reply, answer) = bounded(1);
        self.queued
            .send(Queued::SessionsAt(keys, reply))
            .map_err(|_| WriterStopped)?;
        answer.recv().map_err(|_| WriterStopped)?
    }

    fn ask_ahead<T>(&self, question: impl FnOnce(Reply<T>) -> Ahead) -> anyhow::Result<T> {
        let (reply, answer) = bounded(1);
        self.ahead
            .send(question(reply))
            .map_err(|_| WriterStopped)?;
        answer.recv().map_err(|_| WriterStopped)?
    }
}

/// The writer thread: `Ahead` questions first, then the queue in order, until the merge drops its end.
/// After a failure, what is still queued is dropped unanswered and the failure is returned.
fn run_writer(
    ops: &mut (dyn WfmOps + Send),
    system_id: i64,
    queued: Receiver<Queued>,
    ahead: Receiver<Ahead>,
    stopped: &AtomicBool,
) -> anyhow::Result<Written> {
    let result = serve(ops, system_id, &queued, &ahead);
    if result.is_err() {
        stopped.store(true, Ordering::Release);
        // A dropped receiver keeps a bounded channel's buffer: drop its messages (and the reply senders
        // of questions among them) so that nobody waits for an answer that will not come.
        drop(ahead);
        for _ in queued.iter() {}
    }
    result
}

fn serve(
    ops: &mut (dyn WfmOps + Send),
    system_id: i64,
    queued: &Receiver<Queued>,
    ahead: &Receiver<Ahead>,
) -> anyhow::Result<Written> {
    let mut written = Written::default();
    loop {
        if let Ok(q) = ahead.try_recv() {
            answer_ahead(ops, system_id, q);
            continue;
        }
        select_biased! {
            recv(ahead) -> q => match q {
                Ok(q) => answer_ahead(ops, system_id, q),
                // Closed together with `queued`: run what is left there.
                Err(_) => match queued.recv() {
                    Ok(job) => run_queued(ops, system_id, job, &mut written)?,
                    Err(_) => return Ok(written),
                },
            },
            recv(queued) -> job => match job {
                Ok(job) => run_queued(ops, system_id, job, &mut written)?,
                Err(_) => match ahead.recv() {
                    Ok(q) => answer_ahead(ops, system_id, q),
                    Err(_) => return Ok(written),
                },
            },
        }
    }
}

fn answer_ahead(ops: &mut (dyn WfmOps + Send), system_id: i64, q: Ahead) {
    // A receiver that went away (the merge failed meanwhile) needs no answer.
    match q {
        Ahead::Register(kind, rows, reply) => {
            let answer = ops.insert_names(kind, system_id, &rows);
            let _ = reply.send(answer.with_context(|| format!("registering new {}", kind.what())));
        }
        Ahead::Named(kind, names, reply) => {
            let answer = ops.load_names_named(kind, system_id, &names);
            let _ = reply.send(answer.with_context(|| format!("loading {}", kind.what())));
        }
        Ahead::BeforeWindow(keys, reply) => {
            let answer = ops.load_sessions_at(system_id, &keys);
            let _ = reply.send(answer.context("loading sessions that began before the window"));
        }
    }
}

fn run_queued(
    ops: &mut (dyn WfmOps + Send),
    system_id: i64,
    job: Queued,
    written: &mut Written,
) -> anyhow::Result<()> {
    // A safe point: after SIGTERM or SIGINT nothing more is written (the transaction rolls back).
    crate::stop::check()?;
    let started = std::time::Instant::now();
    match job {
        Queued::Write(Write::Insert(rows)) => {
            written.inserted += ops
                .insert_sessions(&rows)
                .context("inserting new sessions")? as u64;
        }
        Queued::Write(Write::Update(rows)) => {
            written.updated += ops
                .update_sessions(&rows)
                .context("updating changed sessions")? as u64;
        }
        Queued::Write(Write::Delete(ids)) => {
            written.deleted += ops
                .delete_sessions(&ids)
                .context("deleting sessions the source no longer returns")?
                as u64;
        }
        Queued::Write(Write::Reject(rows)) => {
            ops.insert_rejected(&rows)
                .context("keeping the rejected rows")?;
        }
        Queued::SessionsAt(keys, reply) => {
            let _ = reply.send(
                ops.load_sessions_at(system_id, &keys)
                    .context("loading the stored sessions of the rows read"),
            );
        }
    }
    crate::failpoint::hit("batch_written")?;
    let took = started.elapsed();
    if took > std::time::Duration::from_millis(200) {
        tracing::debug!(seconds = took.as_secs_f64(), "slow write");
    }
    Ok(())
}

//! An orderly stop on SIGTERM or SIGINT (a pod being stopped, Ctrl-C). The handlers only note the signal;
//! a sync looks at the note at its safe points (before each batch it fetches from the source, before each
//! write its writer thread runs, before each run it starts) and stops there with `Failure::Interrupted`:
//! the run's transaction rolls back, its `import_runs` row says `interrupted`, the run lock is released, the
//! threads are joined, and the process exits with 128 + the signal's number (143, 130).
//!
//! A statement that is waiting (a source query still executing, a fetch, a store statement behind a DBA's
//! lock) does not reach a safe point by itself: what runs it arms a cancel hook (`on_signal`) for as long as
//! it may wait, and a watcher thread runs the armed hooks when the signal comes (`SQLCancel` on the source
//! statement, `pg_cancel_backend` on the store's connections). The statement then fails, and the run stops
//! as interrupted (`interrupted_if_signalled`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::Failure;

static SIGNAL: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

type Hook = Box<dyn Fn() + Send>;

/// The armed cancel hooks, by id. A hook runs with this lock held, so disarming one waits for it to end:
/// what it cancels is never freed under it.
static HOOKS: Mutex<BTreeMap<u64, Hook>> = Mutex::new(BTreeMap::new());
static NEXT_HOOK: AtomicU64 = AtomicU64::new(1);

/// Installs the handlers of SIGTERM and SIGINT (once per process), and the thread that runs the cancel
/// hooks when one comes.
pub fn install() -> anyhow::Result<()> {
    let mut result = Ok(());
    SIGNAL.get_or_init(|| {
        let flag = Arc::new(AtomicUsize::new(0));
        let signals = [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT];
        for signal in signals {
            if let Err(e) =
                signal_hook::flag::register_usize(signal, Arc::clone(&flag), signal as usize)
            {
                result = Err(anyhow::Error::new(e).context("handling SIGTERM and SIGINT"));
            }
        }
        // Registered after the flag: by the time the watcher wakes, `requested` says which signal came.
        match signal_hook::iterator::Signals::new(signals) {
            Ok(mut incoming) => {
                let watcher = std::thread::Builder::new()
                    .name("acdsync-signals".into())
                    .spawn(move || {
                        for signal in incoming.forever() {
                            cancel_waits(signal);
                        }
                    });
                if let Err(e) = watcher {
                    result = Err(anyhow::Error::new(e).context("starting the signal watcher"));
                }
            }
            Err(e) => result = Err(anyhow::Error::new(e).context("handling SIGTERM and SIGINT")),
        }
        flag
    });
    result
}

/// Runs every armed cancel hook (on the watcher thread).
fn cancel_waits(signal: i32) {
    let hooks = HOOKS.lock().unwrap_or_else(|e| e.into_inner());
    if !hooks.is_empty() {
        tracing::info!(
            signal = name(signal),
            statements = hooks.len(),
            "cancelling the statements in flight"
        );
    }
    for hook in hooks.values() {
        hook();
    }
}

/// A cancel hook, armed until this is dropped (dropping waits for the hook if it is running).
#[must_use = "the hook is disarmed when this is dropped"]
pub struct Armed(u64);

/// Arms `cancel`, to be run (on another thread) if SIGTERM or SIGINT comes while the result lives.
pub fn on_signal(cancel: impl Fn() + Send + 'static) -> Armed {
    let id = NEXT_HOOK.fetch_add(1, Ordering::Relaxed);
    HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, Box::new(cancel));
    Armed(id)
}

impl Drop for Armed {
    fn drop(&mut self) {
        HOOKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

/// An error that came while a signal was pending is the interruption: a statement cancelled by a hook
/// fails with the driver's own words ("canceling statement due to user request", "Operation canceled"),
/// which are kept below.
pub fn interrupted_if_signalled(err: anyhow::Error) -> anyhow::Error {
    match requested() {
        Some(signal) if !crate::error::interrupted(&err) => {
            err.context(Failure::Interrupted(signal))
        }
        _ => err,
    }
}

/// The signal received, if one was.
pub fn requested() -> Option<i32> {
    let signal = SIGNAL.get()?.load(Ordering::SeqCst);
    (signal != 0).then_some(signal as i32)
}

/// At a safe point: stop here if a signal was received.
pub fn check() -> Result<(), Failure> {
    match requested() {
        Some(signal) => Err(Failure::Interrupted(signal)),
        None => Ok(()),
    }
}

/// The signal's name, for messages.
pub fn name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

//! An orderly stop on SIGTERM or SIGINT (a pod being stopped, Ctrl-C). The handlers only note the signal;
//! a sync looks at the note at its safe points (before each batch it fetches from the source, before each
//! write its writer thread runs, before each run it starts) and stops there with `Failure::Interrupted`:
//! the run's transaction rolls back, its `import_runs` row says `interrupted`, the run lock is released, the
//! threads are joined, and the process exits with 128 + the signal's number (143, 130).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::Failure;

static SIGNAL: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// Installs the handlers of SIGTERM and SIGINT (once per process).
pub fn install() -> anyhow::Result<()> {
    let mut result = Ok(());
    SIGNAL.get_or_init(|| {
        let flag = Arc::new(AtomicUsize::new(0));
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            if let Err(e) =
                signal_hook::flag::register_usize(signal, Arc::clone(&flag), signal as usize)
            {
                result = Err(anyhow::Error::new(e).context("handling SIGTERM and SIGINT"));
            }
        }
        flag
    });
    result
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

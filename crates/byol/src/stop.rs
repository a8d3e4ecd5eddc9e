//! The process-wide request to stop, for a process about to exit: its exit
//! runs libtorch's static destructors, which a thread still inside libtorch
//! does not survive (SIGSEGV instead of the exit code).
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks long work to stop at its next safe point: `fit` as at an abort (at
/// the next step boundary, with a checkpoint), evaluation between batches with
/// an error. For good: the process is on its way out.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether `request` has been called.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

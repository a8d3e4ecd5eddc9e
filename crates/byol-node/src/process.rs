//! Leaving the process: at once, or once the addon's threads have stopped.
use napi_derive::napi;
use std::time::Duration;

/// Ends the process with `code` as `_exit(2)` does: no exit handlers, no
/// static destructors. `process.exit` runs libtorch's static destructors
/// while a training thread may still be inside libtorch, which can end in
/// SIGSEGV rather than the exit code; the CLI calls this on a second stop signal.
#[napi]
pub fn exit_now(code: i32) {
    // SAFETY: _exit is async-signal-safe and touches no Rust or JS state.
    unsafe { libc::_exit(code) }
}

/// How long an exit waits for training to reach its next step boundary and
/// write its checkpoint.
const EXIT_WAIT: Duration = Duration::from_secs(30);

/// For the process's `exit` event: asks the addon's running work to stop (a
/// fit at its next step boundary, writing its checkpoint; an evaluation
/// between batches) and waits up to `EXIT_WAIT` for its threads to end, so
/// that the exit's static destructors find no thread inside libtorch.
/// Returns whether they ended; if not, the caller leaves with `exit_now`.
#[napi]
pub fn settle_for_exit() -> bool {
    byol::stop::request();
    crate::worker::wait_until_idle(EXIT_WAIT)
}

//! Leaving the process at once.
use napi_derive::napi;

/// Ends the process with `code` as `_exit(2)` does: no exit handlers, no
/// static destructors. `process.exit` runs libtorch's static destructors
/// while a training thread may still be inside libtorch, which can end in
/// SIGSEGV rather than the exit code; the CLI calls this on a second stop signal.
#[napi]
pub fn exit_now(code: i32) {
    // SAFETY: _exit is async-signal-safe and touches no Rust or JS state.
    unsafe { libc::_exit(code) }
}

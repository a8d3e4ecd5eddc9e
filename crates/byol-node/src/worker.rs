//! Long work (training, embedding, evaluation, waiting for batches) on
//! threads the addon owns, not on libuv's pool: that pool has 4 threads by
//! default and serves every `fs` call, DNS lookup and zlib stream of the
//! process, which would wait behind training.
use crate::error::js_error;
use napi::bindgen_prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How many of `spawn`'s threads are running, and the signal that one ended.
static RUNNING: Mutex<usize> = Mutex::new(0);
static ENDED: Condvar = Condvar::new();

fn running() -> MutexGuard<'static, usize> {
    // A count only: a thread that panicked holding the lock left it whole.
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts one thread as running until dropped (also when its work panics).
struct Running;

impl Running {
    fn start() -> Self {
        *running() += 1;
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        *running() -= 1;
        ENDED.notify_all();
    }
}

/// Waits up to `timeout` for every thread `spawn` started to end; whether they did.
pub(crate) fn wait_until_idle(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut count = running();
    while *count > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        count = ENDED.wait_timeout(count, left).unwrap_or_else(PoisonError::into_inner).0;
    }
    true
}

/// Runs `work` on a new thread and returns a promise that `finish` settles on
/// the JS thread with the work's value; a core error (or a panic) rejects it
/// with the JS error. `threads` is the caller's libtorch thread count, which
/// the new thread takes (each thread keeps its own).
pub(crate) fn spawn<'env, T, J, W, F>(env: &'env Env, name: &str, threads: i32, work: W, finish: F) -> napi::Result<Object<'env>>
where
    T: Send + 'static,
    J: ToNapiValue + 'static,
    W: FnOnce() -> byol::Result<T> + Send + 'static,
    F: FnOnce(&Env, T) -> napi::Result<J> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred()?;
    if threads > 1 {
        // The work's own team replaces the JS thread's, which would sit idle
        // meanwhile and, counted by libgomp, make both teams' threads sleep
        // at every wait (see release_thread_team).
        byol::tensor::device::release_thread_team();
    }
    let what = name.to_string();
    let counted = Running::start();
    std::thread::Builder::new()
        .name(format!("byol-{name}"))
        .stack_size(8 << 20)
        .spawn(move || {
            let _counted = counted;
            byol::tensor::device::set_thread_count(threads);
            let result = catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
                let message = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
                Err(byol::Error::State(format!("internal error in {what}: {}", message.unwrap_or_default())))
            });
            deferred.resolve(move |env| match result {
                Ok(value) => finish(&env, value),
                Err(e) => Err(js_error(&env, e)),
            });
        })
        .map_err(|e| napi::Error::new(Status::GenericFailure, format!("cannot start a thread for {name}: {e}")))?;
    Ok(promise)
}

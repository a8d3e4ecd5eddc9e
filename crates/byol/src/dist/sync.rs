//! Which process group BatchNorm layers synchronise over while a step's
//! forwards run (`syncBatchNorm`): set for the current thread by a guard, as
//! autocast is, so that the layers need no extra argument.
use crate::dist::ProcessGroup;
use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    static GROUP: Cell<*const ProcessGroup> = const { Cell::new(std::ptr::null()) };
}

/// While it lives, BatchNorm layers in training mode on this thread compute
/// their batch statistics over every rank of the group.
pub struct SyncBatchNormScope<'a> {
    previous: *const ProcessGroup,
    _group: PhantomData<&'a ProcessGroup>,
}

impl<'a> SyncBatchNormScope<'a> {
    pub fn enter(group: &'a ProcessGroup) -> Self {
        let previous = GROUP.with(|g| g.replace(group as *const ProcessGroup));
        Self { previous, _group: PhantomData }
    }
}

impl Drop for SyncBatchNormScope<'_> {
    fn drop(&mut self) {
        GROUP.with(|g| g.set(self.previous));
    }
}

/// Calls `f` with the group of the innermost live scope on this thread.
pub fn with_sync_group<R>(f: impl FnOnce(Option<&ProcessGroup>) -> R) -> R {
    let ptr = GROUP.with(Cell::get);
    // SAFETY: a non-null pointer was set by a scope that borrows the group
    // and is still alive on this thread (a scope resets it when dropped, and
    // the type is neither Send nor Sync because of the raw pointer).
    f(unsafe { ptr.as_ref() })
}

//! Data-parallel training on torch.distributed's engine, c10d: a process
//! group joined through a TCPStore rendezvous (Gloo), the environment
//! `torchrun` and other launchers set, and how an epoch is shared out.
mod env;
mod group;
mod sync;

pub use env::{DistEnv, Strategy};
pub use group::{GroupOptions, ProcessGroup, DEFAULT_BUCKET_BYTES, DEFAULT_TIMEOUT_SECONDS};
pub use sync::{with_sync_group, SyncBatchNormScope};

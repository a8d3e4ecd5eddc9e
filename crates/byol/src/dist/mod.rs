//! Data-parallel training on torch.distributed's engine, c10d: a process
//! group joined through a TCPStore rendezvous (Gloo, and NCCL for CUDA
//! tensors), the environment
//! `torchrun` and other launchers set, and how an epoch is shared out.
mod backend;
mod env;
mod group;
mod sync;

pub use backend::DistBackend;
pub use env::{DistEnv, Strategy};
pub use group::{nccl_loaded, GroupOptions, ProcessGroup, DEFAULT_BUCKET_BYTES, DEFAULT_TIMEOUT_SECONDS};
pub use sync::{with_sync_group, SyncBatchNormScope};

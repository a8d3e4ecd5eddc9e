//! BYOL self-supervised learning on libtorch: the core of byol-torch.
//!
//! Everything the Node package does happens here; the binding crate only
//! converts types and errors. The modules follow the data: images (`data`)
//! become two augmented views (`transforms`) in batches (`loader`) that train
//! networks (`nn`) with optimisers (`optim`) in the BYOL model's step
//! (`model`), driven by the trainer (`train`) and judged by `eval`; all on
//! `tensor`. A module uses only those before it in this list:
//! tensor, dist, data, transforms, loader, nn, optim, model, eval, train.
//! `dist` holds the process group of data-parallel training (c10d); `stop`,
//! which any module may read, the request to stop before the process exits.
pub mod data;
pub mod dist;
pub mod error;
pub mod eval;
pub mod loader;
pub mod model;
pub mod nn;
pub mod optim;
pub mod stop;
pub mod tensor;
pub mod train;
pub mod transforms;

pub use error::{Error, ErrorKind, Result};
pub use loader::{Batch, DataLoader, LoaderConfig};
pub use model::{Byol, ByolConfig};
pub use tch;
pub use train::{fit, Progress, TrainerConfig, TrainerOptions};
pub use transforms::{ByolTransform, ByolTransformConfig};

//! BYOL self-supervised learning on libtorch: the core of byol-torch.
//!
//! Everything the Node package does happens here; the binding crate only
//! converts types and errors.
pub mod amp;
pub mod backbones;
pub mod byol;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod eval;
pub mod error;
pub mod heads;
pub mod layers;
pub mod loss;
pub mod momentum;
pub mod network;
pub mod optim;
pub mod params;
pub mod schedule;
pub mod train;
pub mod transforms;

pub use error::{Error, Result};
pub use tch;

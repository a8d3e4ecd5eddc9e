//! Image transforms on batches: the functional ops (torchvision's semantics,
//! one parameter per image) and BYOL's two views built from them.
pub mod byol;
pub mod functional;
pub mod pixels;

pub use byol::{ByolTransform, ByolTransformConfig, ViewConfig};
pub use functional::*;

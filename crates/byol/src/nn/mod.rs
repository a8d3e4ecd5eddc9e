//! Networks: named parameter stores, the layers BYOL needs, ResNet trunks,
//! projection and prediction heads, TorchScript modules, and the `Network`
//! that pairs an architecture with its parameters. Builds on `tensor` only.
pub mod heads;
pub mod layers;
pub mod network;
pub mod params;
pub mod resnet;
pub mod torchscript;

pub use heads::{BlockSpec, Head, HeadDims, Layer, NonLinearity, Preprocess};
pub use network::{Arch, Network};
pub use params::{fresh_copy, Params, Role};
pub use resnet::{ResNet, ResNetKind, ResNetOptions};
pub use torchscript::TorchScript;

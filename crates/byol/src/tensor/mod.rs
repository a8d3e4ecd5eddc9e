//! Tensors as libtorch holds them: element types, devices and threads, mixed
//! precision, the C++ shim for what tch does not expose, and tensors in files.
//! Everything else builds on this module; it imports nothing of the crate.
pub mod autocast;
pub mod create;
pub mod device;
pub mod io;
pub mod kind;
pub mod shim;

pub use autocast::{to_channels_last, Autocast, Precision};
pub use create::{from_bytes, item, nbytes, randn, to_f32_vec, zeros};
pub use device::{device_name, parse_device};
pub use io::{load_safetensors, replace_atomically, save_npy, save_safetensors, write_atomically};
pub use kind::{check_float, is_float, kind_name, parse_dtype};

//! Node-API binding of the `byol` crate. It converts and nothing else: each
//! exported class has its file, each options object its conversion into the
//! core's configuration (`options/`), string options are string enums
//! (`enums.rs`), and core errors become JS errors with their codes
//! (`error.rs`). Long work runs on threads of the addon's own (`worker.rs`).
#![deny(clippy::all)]
// napi registers the exports at load time; a test build of the library sees none of them used.
#![cfg_attr(test, allow(dead_code))]

mod data;
mod defaults;
mod enums;
mod error;
mod eval;
mod memory;
mod model;
mod module;
mod options;
mod process;
mod state_dict;
mod tensor;
mod tensorboard;
mod trainer;
mod transforms;
mod worker;

/// When the addon loads: keep the memory a training step frees for the next
/// (see `byol::tensor::device::tune_allocator`).
#[napi_derive::module_init]
fn init() {
    byol::tensor::device::tune_allocator();
}

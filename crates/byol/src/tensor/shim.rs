//! The C++ shim in `csrc/shim.cpp`: what tch does not expose, wrapped safely.
//! Every entry point catches C++ exceptions; a failure comes back as -1 (or
//! null) with the message kept per thread.
use crate::error::{Error, Result};
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn byol_autocast_enter(cuda: i32, dtype: i32) -> i32;
    fn byol_autocast_exit(cuda: i32) -> i32;
    fn byol_last_error() -> *const std::os::raw::c_char;
    fn byol_add_(this: *mut C_tensor, other: *const C_tensor, alpha: f64) -> i32;
    fn byol_add(this: *const C_tensor, other: *const C_tensor, alpha: f64) -> *mut C_tensor;
    fn byol_cpu_capability(out: *mut std::os::raw::c_char, len: usize) -> i32;
}

fn shim_error(what: &str) -> Error {
    // SAFETY: the shim keeps a NUL-terminated message per thread.
    let message = unsafe { std::ffi::CStr::from_ptr(byol_last_error()) }.to_string_lossy().into_owned();
    Error::Torch(tch::TchError::Torch(format!("{what}: {message}")))
}

/// `t.add_(other, alpha=alpha)`: one rounding, as PyTorch's optimisers step.
pub fn add_scaled_(t: &Tensor, other: &Tensor, alpha: f64) -> Result<()> {
    let mut t = t.shallow_clone();
    // SAFETY: both pointers are live at::Tensor handles owned by tch.
    if unsafe { byol_add_(t.as_mut_ptr(), other.as_ptr(), alpha) } != 0 {
        return Err(shim_error("add_"));
    }
    Ok(())
}

/// `t.add(other, alpha=alpha)` as a new tensor.
pub fn add_scaled(t: &Tensor, other: &Tensor, alpha: f64) -> Result<Tensor> {
    // SAFETY: as in `add_scaled_`; a non-null result is a new at::Tensor that
    // `from_ptr` takes ownership of.
    let ptr = unsafe { byol_add(t.as_ptr(), other.as_ptr(), alpha) };
    if ptr.is_null() {
        return Err(shim_error("add"));
    }
    Ok(unsafe { Tensor::from_ptr(ptr) })
}

/// Turns autocast on for CUDA or the CPU with bfloat16 (`dtype` 0) or float16 (1).
pub(crate) fn autocast_enter(cuda: bool, dtype: i32) -> bool {
    // SAFETY: only libtorch's thread-local autocast state is touched.
    unsafe { byol_autocast_enter(i32::from(cuda), dtype) == 0 }
}

/// Undoes `autocast_enter` on this thread.
pub(crate) fn autocast_exit(cuda: bool) {
    // SAFETY: as in `autocast_enter`.
    unsafe { byol_autocast_exit(i32::from(cuda)) };
}

/// libtorch's kernel level on this CPU (`"AVX512"`, `"AVX2"`, `"DEFAULT"`), as
/// `torch.backends.cpu.get_cpu_capability()` says it.
pub fn cpu_capability() -> Option<String> {
    let mut buf = [0 as std::os::raw::c_char; 64];
    // SAFETY: the shim writes at most `buf.len()` bytes, NUL-terminated.
    if unsafe { byol_cpu_capability(buf.as_mut_ptr(), buf.len()) } != 0 {
        return None;
    }
    // SAFETY: NUL-terminated within `buf` (see above).
    Some(unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
}

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
    fn byol_add(this: *const C_tensor, other: *const C_tensor, alpha: f64) -> *mut C_tensor;
    fn byol_cpu_capability(out: *mut std::os::raw::c_char, len: usize) -> i32;
    fn byol_cuda_math(set: *const i32, out: *mut i32) -> i32;
    fn byol_release_thread_team();
    fn byol_ema_update(ema: *const *const C_tensor, online: *const *const C_tensor, n: usize, m: f64) -> i32;
    fn byol_foreach_add_(this: *const *const C_tensor, other: *const *const C_tensor, n: usize, alpha: f64) -> i32;
    fn byol_foreach_mul_(this: *const *const C_tensor, n: usize, scalar: f64) -> i32;
    fn byol_inference_mode_enter() -> *mut std::os::raw::c_void;
    fn byol_inference_mode_exit(guard: *mut std::os::raw::c_void);
    fn byol_views_conv2d(x: *const C_tensor, w: *const C_tensor, stride: i64, padding: i64, views: i64) -> *mut C_tensor;
    fn byol_max_pool2d(x: *const C_tensor, k: i64, s: i64, p: i64) -> *mut C_tensor;
    fn byol_crop_resize(x: *const C_tensor, boxes: *const i64, size: i64) -> *mut C_tensor;
    fn byol_views_linear(x: *const C_tensor, w: *const C_tensor, b: *const C_tensor, views: i64) -> *mut C_tensor;
    fn byol_views_batch_norm(
        x: *const C_tensor,
        w: *const C_tensor,
        b: *const C_tensor,
        running_mean: *const C_tensor,
        running_var: *const C_tensor,
        momentum: f64,
        eps: f64,
        views: i64,
    ) -> *mut C_tensor;
}

fn handles(tensors: &[&Tensor]) -> Vec<*const C_tensor> {
    tensors.iter().map(|t| t.as_ptr()).collect()
}

/// `ema = ema * m + online * (1 - m)` for each pair (lightly's
/// `update_momentum`), bit-identical to its three ATen ops: one pass without
/// temporaries for contiguous float32 CPU tensors, the ops themselves otherwise.
pub fn ema_update_(ema: &[&Tensor], online: &[&Tensor], m: f64) -> Result<()> {
    let (e, o) = (handles(ema), handles(online));
    if e.len() != o.len() {
        return Err(Error::invalid("online", format!("{} tensors, as ema", e.len()), o.len()));
    }
    // SAFETY: every pointer is a live at::Tensor handle borrowed for the call.
    if unsafe { byol_ema_update(e.as_ptr(), o.as_ptr(), e.len(), m) } != 0 {
        return Err(shim_error("update_momentum"));
    }
    Ok(())
}

/// `torch._foreach_add_(tensors, others, alpha=alpha)`.
pub fn foreach_add_(tensors: &[&Tensor], others: &[&Tensor], alpha: f64) -> Result<()> {
    let (a, b) = (handles(tensors), handles(others));
    if a.len() != b.len() {
        return Err(Error::invalid("others", format!("{} tensors", a.len()), b.len()));
    }
    if a.is_empty() {
        return Ok(());
    }
    // SAFETY: as in `ema_update_`.
    if unsafe { byol_foreach_add_(a.as_ptr(), b.as_ptr(), a.len(), alpha) } != 0 {
        return Err(shim_error("_foreach_add_"));
    }
    Ok(())
}

/// `torch._foreach_mul_(tensors, scalar)`.
pub fn foreach_mul_(tensors: &[&Tensor], scalar: f64) -> Result<()> {
    let a = handles(tensors);
    if a.is_empty() {
        return Ok(());
    }
    // SAFETY: as in `ema_update_`.
    if unsafe { byol_foreach_mul_(a.as_ptr(), a.len(), scalar) } != 0 {
        return Err(shim_error("_foreach_mul_"));
    }
    Ok(())
}

/// `torch.inference_mode()` on this thread while it lives: no autograd
/// bookkeeping at all (no version counters, no view tracking) for the
/// momentum network's forwards. Tensors made under it cannot be saved for
/// backward: clone what autograd will need.
pub struct InferenceMode {
    guard: *mut std::os::raw::c_void,
}

impl InferenceMode {
    pub fn enter() -> Result<Self> {
        // SAFETY: makes a c10::InferenceMode guard for this thread.
        let guard = unsafe { byol_inference_mode_enter() };
        if guard.is_null() {
            return Err(shim_error("inference_mode"));
        }
        Ok(Self { guard })
    }
}

impl Drop for InferenceMode {
    fn drop(&mut self) {
        // SAFETY: the guard made by `enter` on this thread (the type is not
        // Send), ended once, in reverse order of creation as Rust drops.
        unsafe { byol_inference_mode_exit(self.guard) }
    }
}

fn shim_error(what: &str) -> Error {
    // SAFETY: the shim keeps a NUL-terminated message per thread.
    let message = unsafe { std::ffi::CStr::from_ptr(byol_last_error()) }.to_string_lossy().into_owned();
    Error::Torch(tch::TchError::Torch(format!("{what}: {message}")))
}

/// `t.add(other, alpha=alpha)` as a new tensor.
pub fn add_scaled(t: &Tensor, other: &Tensor, alpha: f64) -> Result<Tensor> {
    // SAFETY: both pointers are live at::Tensor handles owned by tch.
    owned(unsafe { byol_add(t.as_ptr(), other.as_ptr(), alpha) }, "add")
}

/// Takes ownership of a tensor the shim returned, or its error.
fn owned(ptr: *mut C_tensor, what: &str) -> Result<Tensor> {
    if ptr.is_null() {
        return Err(shim_error(what));
    }
    // SAFETY: a non-null result is a new at::Tensor that `from_ptr` owns.
    Ok(unsafe { Tensor::from_ptr(ptr) })
}

/// `conv2d(x, w)` (no bias, dilation 1, one group) over `views` batches
/// stacked along dimension 0, with the weight's gradient reduced view by view
/// as separate calls reduce it (csrc/views.cpp says why).
pub fn views_conv2d(x: &Tensor, w: &Tensor, stride: i64, padding: i64, views: i64) -> Result<Tensor> {
    // SAFETY: both pointers are live at::Tensor handles owned by tch.
    owned(unsafe { byol_views_conv2d(x.as_ptr(), w.as_ptr(), stride, padding, views) }, "conv2d")
}

/// `max_pool2d(x, k, s, p)` (dilation 1, floor mode): ATen's numbers and
/// gradients, bit for bit; the ResNet stem's 3x3/2/1 on contiguous float CPU
/// batches by the shim's faster kernel (csrc/maxpool.cpp).
pub fn max_pool2d(x: &Tensor, k: i64, s: i64, p: i64) -> Result<Tensor> {
    // SAFETY: a live at::Tensor handle owned by tch.
    owned(unsafe { byol_max_pool2d(x.as_ptr(), k, s, p) }, "max_pool2d")
}

/// Image `n` of `x` ([N, C, H, W]) cropped to `boxes[n]` (`[top, left,
/// height, width]`, inside the image) and resized to `size x size`, bilinear
/// with antialiasing; uint8 images are converted to float in [0, 1] first.
/// ATen's numbers bit for bit; contiguous uint8 CPU batches by the shim's
/// faster kernel (csrc/resize.cpp).
pub fn crop_resize(x: &Tensor, boxes: &[[i64; 4]], size: i64) -> Result<Tensor> {
    let (n, _, hgt, wid) = x.size4()?;
    if boxes.len() as i64 != n {
        return Err(Error::invalid("boxes", format!("{n} crop boxes (one per image)"), format!("{} boxes", boxes.len())));
    }
    if size < 1 {
        return Err(Error::range("size", "an output size >= 1", size));
    }
    for (i, &[top, left, height, width]) in boxes.iter().enumerate() {
        if height < 1 || width < 1 || top < 0 || left < 0 || height > hgt - top || width > wid - left {
            return Err(Error::range(
                format!("boxes[{i}]"),
                format!("a box inside the {hgt}x{wid} image"),
                format!("[top {top}, left {left}, height {height}, width {width}]"),
            ));
        }
    }
    // SAFETY: a live at::Tensor handle owned by tch, and four box values per
    // image (a slice of [i64; 4] is that many i64 in a row), each box inside
    // its image.
    owned(unsafe { byol_crop_resize(x.as_ptr(), boxes.as_ptr().cast::<i64>(), size) }, "resized_crop")
}

/// Training-mode `batch_norm` over `views` batches stacked in `x`, each
/// normalised by its own statistics and moving the running ones in turn, as
/// that many separate calls would; ATen's numbers bit for bit, the statistics
/// of contiguous float CPU batches by the shim's faster kernel
/// (csrc/batchnorm.cpp).
pub fn views_batch_norm(
    x: &Tensor,
    [w, b, running_mean, running_var]: [&Tensor; 4],
    momentum: f64,
    eps: f64,
    views: i64,
) -> Result<Tensor> {
    // SAFETY: live at::Tensor handles owned by tch.
    owned(
        unsafe {
            byol_views_batch_norm(x.as_ptr(), w.as_ptr(), b.as_ptr(), running_mean.as_ptr(), running_var.as_ptr(), momentum, eps, views)
        },
        "batch_norm",
    )
}

/// `linear(x, w, b)` over `views` stacked batches, as `views_conv2d`.
pub fn views_linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, views: i64) -> Result<Tensor> {
    let b = b.map_or(std::ptr::null(), |b| b.as_ptr());
    // SAFETY: live handles owned by tch; `b` may be null, which the shim reads as no bias.
    owned(unsafe { byol_views_linear(x.as_ptr(), w.as_ptr(), b, views) }, "linear")
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

/// Ends the calling thread's OpenMP team, keeping its thread count.
///
/// libgomp counts the threads of every team in the process, and while they
/// outnumber the cores its threads wait for each other by sleeping at once
/// instead of spinning briefly: every barrier of every parallel op then
/// costs a futex wake-up. A team left idle on a thread that handed its work
/// to another (the JS thread, once training moves to a thread of its own)
/// counts as much as a busy one; in the 2-core training loop it made all of
/// the step's waits sleep.
pub fn release_thread_team() {
    // SAFETY: no arguments; the shim checks it is outside a parallel region.
    unsafe { byol_release_thread_team() }
}

/// torch.backends' switches for CUDA arithmetic, process-wide as in PyTorch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CudaMath {
    /// `torch.backends.cudnn.allow_tf32`: convolutions may round fp32 inputs to TF32.
    pub cudnn_allow_tf32: bool,
    /// `torch.backends.cuda.matmul.allow_tf32`: matrix products may.
    pub matmul_allow_tf32: bool,
    /// `torch.backends.cudnn.deterministic`: only deterministic cuDNN algorithms.
    pub cudnn_deterministic: bool,
    /// `torch.backends.cudnn.benchmark`: cuDNN times algorithms per shape and keeps the fastest.
    pub cudnn_benchmark: bool,
}

/// Sets each switch given, then returns them all.
pub fn cuda_math(set: [Option<bool>; 4]) -> Result<CudaMath> {
    let set = set.map(|s| s.map_or(-1, i32::from));
    let mut out = [0i32; 4];
    // SAFETY: two arrays of four ints, alive for the call.
    if unsafe { byol_cuda_math(set.as_ptr(), out.as_mut_ptr()) } != 0 {
        return Err(shim_error("setting torch.backends' CUDA switches"));
    }
    Ok(CudaMath {
        cudnn_allow_tf32: out[0] != 0,
        matmul_allow_tf32: out[1] != 0,
        cudnn_deterministic: out[2] != 0,
        cudnn_benchmark: out[3] != 0,
    })
}

//! Mixed precision: autocast through the C++ shim in `csrc/shim.cpp`, and the
//! dynamic loss scaler that fp16 needs (`torch.amp.GradScaler`'s rule).
use crate::error::{Error, Result};
use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn byol_autocast_enter(cuda: i32, dtype: i32) -> i32;
    fn byol_autocast_exit(cuda: i32) -> i32;
    fn byol_last_error() -> *const std::os::raw::c_char;
    fn byol_add_(this: *mut C_tensor, other: *const C_tensor, alpha: f64) -> i32;
    fn byol_add(this: *const C_tensor, other: *const C_tensor, alpha: f64) -> *mut C_tensor;
}

fn shim_error(what: &str) -> Error {
    // SAFETY: the shim keeps a NUL-terminated message per thread.
    let message = unsafe { std::ffi::CStr::from_ptr(byol_last_error()) }.to_string_lossy().into_owned();
    Error::Torch(tch::TchError::Torch(format!("{what}: {message}")))
}

/// `t.add_(other, alpha=alpha)`: one rounding, as PyTorch's optimisers step.
pub fn add_scaled_(t: &Tensor, other: &Tensor, alpha: f64) -> Result<()> {
    let mut t = t.shallow_clone();
    // SAFETY: both pointers are live at::Tensor handles owned by tch; the shim
    // catches C++ exceptions.
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

/// Lightning's `precision` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// float32 throughout.
    Full,
    /// bfloat16 autocast; no loss scaling (bf16 has float32's range).
    Bf16Mixed,
    /// float16 autocast with a dynamic loss scaler.
    Fp16Mixed,
}

impl Precision {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "32" | "32-true" => Ok(Self::Full),
            "bf16-mixed" => Ok(Self::Bf16Mixed),
            "16-mixed" => Ok(Self::Fp16Mixed),
            other => Err(Error::invalid("precision", "'32', 'bf16-mixed' or '16-mixed'", format!("'{other}'"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "32",
            Self::Bf16Mixed => "bf16-mixed",
            Self::Fp16Mixed => "16-mixed",
        }
    }
}

/// Autocast on `device` while alive (the forward passes only; backward runs
/// in the dtypes the forward chose, as with `torch.autocast`).
pub struct Autocast {
    cuda: Option<i32>,
}

impl Autocast {
    pub fn new(precision: Precision, device: Device) -> Result<Self> {
        let dtype = match precision {
            Precision::Full => return Ok(Self { cuda: None }),
            Precision::Bf16Mixed => 0,
            Precision::Fp16Mixed => 1,
        };
        let cuda = i32::from(device.is_cuda());
        // SAFETY: the shim only touches libtorch's thread-local autocast state
        // and catches every C++ exception.
        if unsafe { byol_autocast_enter(cuda, dtype) } != 0 {
            return Err(Error::Device(format!("libtorch refused autocast to {} on {:?}", precision.name(), device)));
        }
        Ok(Self { cuda: Some(cuda) })
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        if let Some(cuda) = self.cuda {
            // SAFETY: as in `new`; undoes exactly what `new` did on this thread.
            unsafe { byol_autocast_exit(cuda) };
        }
    }
}

/// `torch.amp.GradScaler` with its defaults: the loss is multiplied by `scale`;
/// a step whose gradients hold inf/NaN is skipped and halves the scale; 2000
/// good steps in a row double it.
#[derive(Clone, Debug, PartialEq)]
pub struct GradScaler {
    pub scale: f64,
    pub growth_tracker: i64,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: i64,
}

impl Default for GradScaler {
    fn default() -> Self {
        Self { scale: 65536.0, growth_tracker: 0, growth_factor: 2.0, backoff_factor: 0.5, growth_interval: 2000 }
    }
}

impl GradScaler {
    /// Unscales `grads` in place; returns false (and backs off) when any is not finite.
    pub fn unscale(&mut self, grads: &mut [Tensor]) -> Result<bool> {
        let _guard = tch::no_grad_guard();
        let inv = 1.0 / self.scale;
        let mut bad: Option<Tensor> = None;
        for g in grads.iter_mut().filter(|g| g.defined()) {
            let _ = g.f_mul_scalar_(inv)?;
            let b = g.f_isfinite()?.f_logical_not()?.f_any()?;
            bad = Some(match bad {
                None => b,
                Some(acc) => acc.f_logical_or(&b)?,
            });
        }
        let found_inf = match bad {
            Some(b) => b.f_to_kind(Kind::Int64)?.f_int64_value(&[])? != 0,
            None => false,
        };
        self.update(found_inf);
        Ok(!found_inf)
    }

    fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.scale *= self.backoff_factor;
            self.growth_tracker = 0;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker == self.growth_interval {
                self.scale *= self.growth_factor;
                self.growth_tracker = 0;
            }
        }
    }
}

/// Lays 4-D tensors out as channels_last (NHWC in memory, NCHW in shape),
/// which convolutions in low precision on a GPU run fastest in. tch has no
/// `memory_format` argument; a permuted contiguous copy gives the same strides.
pub fn to_channels_last(t: &Tensor) -> Result<Tensor> {
    if t.dim() != 4 {
        return Ok(t.shallow_clone());
    }
    Ok(t.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])?)
}

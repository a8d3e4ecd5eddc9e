//! Mixed precision: Lightning's precision names and autocast (through the C++
//! shim, which sets the dtype and works on the CPU too), and the
//! channels_last layout that low-precision convolutions run fastest in.
use crate::error::{Error, Result};
use crate::tensor::shim::{autocast_enter, autocast_exit};
use tch::{Device, Tensor};

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
    cuda: Option<bool>,
}

impl Autocast {
    pub fn new(precision: Precision, device: Device) -> Result<Self> {
        let dtype = match precision {
            Precision::Full => return Ok(Self { cuda: None }),
            Precision::Bf16Mixed => 0,
            Precision::Fp16Mixed => 1,
        };
        let cuda = device.is_cuda();
        if !autocast_enter(cuda, dtype) {
            return Err(Error::Device(format!("libtorch refused autocast to {} on {:?}", precision.name(), device)));
        }
        Ok(Self { cuda: Some(cuda) })
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        if let Some(cuda) = self.cuda {
            autocast_exit(cuda);
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

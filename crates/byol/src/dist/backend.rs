//! Which c10d backend carries the collectives of a process group.
use crate::error::{Error, Result};
use tch::Device;

/// The backend of `init_process_group`: NCCL for CUDA tensors, Gloo for CPU
/// tensors. The group always has Gloo, for the trainer's CPU flags and
/// barriers; the choice is what carries the model's tensors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DistBackend {
    /// As `init_process_group(backend=None)`: NCCL when training on CUDA,
    /// else Gloo.
    #[default]
    Auto,
    /// Gloo for every tensor, CUDA tensors too.
    Gloo,
    /// NCCL for CUDA tensors; needs CUDA.
    Nccl,
}

impl DistBackend {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "gloo" => Ok(Self::Gloo),
            "nccl" => Ok(Self::Nccl),
            other => Err(Error::invalid("backend", "'auto', 'gloo' or 'nccl'", format!("'{other}'"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Gloo => "gloo",
            Self::Nccl => "nccl",
        }
    }

    /// Whether a group that trains on `device` adds NCCL for its CUDA tensors.
    pub fn uses_nccl(self, device: Device) -> bool {
        match self {
            Self::Auto => device.is_cuda(),
            Self::Gloo => false,
            Self::Nccl => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_nccl_for_cuda_and_gloo_for_the_cpu() {
        assert!(DistBackend::Auto.uses_nccl(Device::Cuda(0)));
        assert!(!DistBackend::Auto.uses_nccl(Device::Cpu));
    }

    #[test]
    fn a_forced_backend_ignores_the_device() {
        assert!(!DistBackend::Gloo.uses_nccl(Device::Cuda(1)));
        assert!(DistBackend::Nccl.uses_nccl(Device::Cpu));
    }

    #[test]
    fn an_unknown_backend_is_an_error_naming_backend() {
        assert_eq!(DistBackend::parse("mpi").err().and_then(|e| e.argument().map(String::from)).as_deref(), Some("backend"));
    }
}

//! Device names as users write them: `cpu`, `cuda`, `cuda:N`, `auto`.
use crate::error::{Error, Result};
use tch::{Cuda, Device};

/// Parses a device name and checks that the device exists here, so that a
/// missing GPU is reported when the model is made, not deep inside a kernel.
pub fn parse_device(name: &str) -> Result<Device> {
    let name = name.trim();
    let device = match name {
        "cpu" => Device::Cpu,
        "auto" => Device::cuda_if_available(),
        "cuda" => Device::Cuda(0),
        _ => match name.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(index)) => Device::Cuda(index),
            _ => {
                return Err(Error::invalid(
                    "device",
                    "'cpu', 'cuda', 'cuda:N' or 'auto'",
                    format!("'{name}'"),
                ))
            }
        },
    };
    if let Device::Cuda(index) = device {
        let count = Cuda::device_count() as usize;
        if index >= count {
            return Err(Error::Device(format!(
                "'{name}' was asked for but this machine has {count} CUDA device(s){}",
                if count == 0 { " (libtorch found no GPU or was loaded without CUDA)" } else { "" }
            )));
        }
    }
    Ok(device)
}

/// The name `parse_device` accepts for `device`, as PyTorch prints it.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
    }
}

pub fn cuda_is_available() -> bool {
    Cuda::is_available()
}

pub fn cuda_device_count() -> usize {
    Cuda::device_count() as usize
}

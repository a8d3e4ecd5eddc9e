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

/// Sets libtorch's intra-op thread count for the calling thread, for good.
///
/// ATen keeps one process-wide count that each thread copies, on its first
/// parallel operation, into its own OpenMP setting. The data workers set theirs
/// to 1 (and with it the process-wide count); a thread that had been given a
/// count but not yet run a parallel operation would then copy their 1 and run
/// single-threaded. Reading the count back makes the thread take its own now.
pub fn set_thread_count(n: i32) {
    tch::set_num_threads(n);
    let _ = tch::get_num_threads();
}

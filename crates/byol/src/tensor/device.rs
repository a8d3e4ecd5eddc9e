//! Device names as users write them (`cpu`, `cuda`, `cuda:N`, `auto`), what
//! the machine has, and libtorch's thread count.
use crate::error::{Error, Result};
pub use crate::tensor::shim::{cpu_capability, release_thread_team};
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
            _ => return Err(Error::invalid("device", "'cpu', 'cuda', 'cuda:N' or 'auto'", format!("'{name}'"))),
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

/// The environment variable that, set to `0`, leaves glibc's allocator as it is.
pub const MALLOC_TUNING_ENV: &str = "BYOL_TORCH_MALLOC_TUNING";

/// Keeps the memory a training step frees for the next step. glibc's defaults
/// hand large freed blocks back to the kernel (a 128 KiB mmap threshold that
/// rises only as far as the largest block freed, and a trim threshold twice
/// that), so every step's gradients and temporaries, as large as the
/// parameters, were mapped and zero-filled again: a quarter of a small step
/// went to page faults. Blocks up to 10 MiB (ResNet18's and the heads' largest
/// gradients are 8-9 MiB) now come from the heap, and the heap keeps up to
/// 128 MiB of free space. Larger thresholds buy no speed and cost peak memory
/// (32 MiB and 512 MiB: +40 MiB at batch 32, 64x64). Call once, before
/// training; `BYOL_TORCH_MALLOC_TUNING=0` opts out. Returns whether it applied.
pub fn tune_allocator() -> bool {
    tune_allocator_unless(std::env::var(MALLOC_TUNING_ENV).ok().as_deref())
}

/// `tune_allocator` with the environment variable's value handed in.
fn tune_allocator_unless(setting: Option<&str>) -> bool {
    if setting == Some("0") {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets two of glibc's allocator parameters.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 10 << 20) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// The names of the CUDA devices (`torch.cuda.get_device_name(i)`), read from
/// the driver; empty where there is no driver or no GPU. libtorch does not
/// export the name, and the driver API is stable and tiny.
pub fn cuda_device_names() -> Vec<String> {
    type Init = unsafe extern "C" fn(u32) -> i32;
    type Count = unsafe extern "C" fn(*mut i32) -> i32;
    type Get = unsafe extern "C" fn(*mut i32, i32) -> i32;
    type Name = unsafe extern "C" fn(*mut std::os::raw::c_char, i32, i32) -> i32;
    // SAFETY: libcuda's C entry points with their documented signatures; each
    // result code is checked before its output is read, and the name buffer
    // is NUL-terminated by the driver within the length given.
    unsafe {
        let Ok(lib) = libloading::Library::new("libcuda.so.1") else { return Vec::new() };
        let (Ok(init), Ok(count), Ok(get), Ok(name)) = (
            lib.get::<Init>(b"cuInit\0"),
            lib.get::<Count>(b"cuDeviceGetCount\0"),
            lib.get::<Get>(b"cuDeviceGet\0"),
            lib.get::<Name>(b"cuDeviceGetName\0"),
        ) else {
            return Vec::new();
        };
        let mut n = 0;
        if init(0) != 0 || count(&mut n) != 0 {
            return Vec::new();
        }
        (0..n)
            .filter_map(|i| {
                let mut device = 0;
                let mut buf = [0 as std::os::raw::c_char; 256];
                (get(&mut device, i) == 0 && name(buf.as_mut_ptr(), buf.len() as i32, device) == 0)
                    .then(|| std::ffi::CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned())
            })
            .collect()
    }
}

/// `torch.set_num_threads(n)` for the calling thread (see `set_thread_count`).
pub fn set_threads(n: i32) -> Result<()> {
    if n < 1 {
        return Err(Error::range("n", "a thread count >= 1", n));
    }
    set_thread_count(n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocator_is_tuned_on_glibc_unless_the_variable_says_0() {
        assert!(!tune_allocator_unless(Some("0")));
        assert_eq!(tune_allocator_unless(None), cfg!(all(target_os = "linux", target_env = "gnu")));
        assert_eq!(tune_allocator_unless(Some("1")), cfg!(all(target_os = "linux", target_env = "gnu")));
    }
}

//! Device names as users write them (`cpu`, `cuda`, `cuda:N`, `auto`), what
//! the machine has, and libtorch's thread count.
use crate::error::{Error, Result};
pub use crate::tensor::shim::{cpu_capability, release_thread_team};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
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
/// went to page faults. Blocks up to 32 MiB (glibc's most; at batch 32 on
/// 64x64 images the stem's two-view activations are 16 MiB) now come from
/// the heap, and the main heap keeps up to 128 MiB of free space; threads
/// that train keep theirs whole while they do (`HeapsKept`). Call once,
/// before training; `BYOL_TORCH_MALLOC_TUNING=0` opts out. Returns whether it
/// applied.
pub fn tune_allocator() -> bool {
    let applied = tune_allocator_unless(std::env::var(MALLOC_TUNING_ENV).ok().as_deref());
    TUNED.store(applied, Ordering::SeqCst);
    applied
}

/// `tune_allocator` with the environment variable's value handed in.
fn tune_allocator_unless(setting: Option<&str>) -> bool {
    if setting == Some("0") {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets two of glibc's allocator parameters.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Whether `tune_allocator` applied: `HeapsKept` only changes a tuned allocator.
static TUNED: AtomicBool = AtomicBool::new(false);
/// How many `HeapsKept` guards are alive.
static KEEPING: Mutex<usize> = Mutex::new(0);
/// glibc's `M_TOP_PAD` by default (mallopt(3)).
const DEFAULT_TOP_PAD: i32 = 128 << 10;
/// A whole heap of a thread's arena (glibc's `HEAP_MAX_SIZE` on 64-bit).
const THREAD_HEAP: i32 = 64 << 20;

/// While alive, threads keep the heaps their freed memory is in (when
/// `tune_allocator` applied). A thread other than the first allocates from
/// an arena of 64 MiB heaps, and glibc unmaps such a heap as soon as all of
/// it is free, whatever the trim threshold says; `Trainer.fit` steps on a
/// thread of its own, whose activations emptied and unmapped heaps every
/// step: 20,000 page faults and 50 ms of kernel time a step at batch 32,
/// 64x64, against a handful with the heaps kept. A top pad of a whole heap
/// keeps them (glibc's `heap_trim`). When the last guard goes, the pad is
/// glibc's default again and the dropping thread's free heaps, and the free
/// pages of every arena, go back to the kernel: a run does not hold its peak
/// memory after it ends. Take it on the thread that trains.
pub struct HeapsKept {
    active: bool,
}

impl HeapsKept {
    pub fn new() -> Self {
        if !TUNED.load(Ordering::SeqCst) {
            return Self { active: false };
        }
        let mut n = KEEPING.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        if *n == 1 {
            set_top_pad(THREAD_HEAP);
        }
        Self { active: true }
    }
}

impl Default for HeapsKept {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for HeapsKept {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let mut n = KEEPING.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            set_top_pad(DEFAULT_TOP_PAD);
            release_free_memory();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_top_pad(bytes: i32) {
    // SAFETY: mallopt only sets one of glibc's allocator parameters.
    unsafe { libc::mallopt(libc::M_TOP_PAD, bytes) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_top_pad(_: i32) {}

/// Hands free memory back to the kernel: this thread's wholly free heaps
/// (glibc trims a thread's heaps when a block of 64 KiB or more is freed in
/// them; `malloc_trim` does not), then the free pages of every arena.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        drop(std::hint::black_box(Vec::<u8>::with_capacity(128 << 10)));
        // SAFETY: malloc_trim only returns free pages; it takes each arena's lock.
        unsafe { libc::malloc_trim(0) };
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

//! A TorchScript module as a network: any PyTorch module exported with
//! `torch.jit.script` or `torch.jit.trace`, its parameters trained here and
//! its buffers (BatchNorm's running statistics) kept with them.
use crate::error::{Error, Result};
use crate::nn::params::{Params, Role};
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::{Device, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn byol_jit_load(path: *const c_char, cuda: i32) -> *mut c_void;
    fn byol_jit_free(module: *mut c_void);
    fn byol_jit_train(module: *mut c_void, on: i32) -> i32;
    fn byol_jit_forward(module: *mut c_void, x: *const C_tensor) -> *mut C_tensor;
    fn byol_jit_named(
        module: *mut c_void,
        buffers: i32,
        data: *mut c_void,
        f: extern "C" fn(*mut c_void, *const c_char, *mut C_tensor),
    ) -> i32;
    fn byol_last_error() -> *const c_char;
}

/// The shim's `torch::jit::Module`, freed on drop.
#[derive(Debug)]
struct Module(*mut c_void);

// SAFETY: a torch::jit::Module may move between threads; `TorchScript`
// serialises its use behind a mutex.
unsafe impl Send for Module {}

impl Drop for Module {
    fn drop(&mut self) {
        // SAFETY: made by byol_jit_load, freed once.
        unsafe { byol_jit_free(self.0) }
    }
}

extern "C" fn collect(data: *mut c_void, name: *const c_char, t: *mut C_tensor) {
    // SAFETY: `data` is the Vec byol_jit_named was given; `name` a NUL-terminated
    // string alive for the call; `t` a new handle that becomes ours.
    let (list, name) = unsafe { (&mut *(data as *mut Vec<(String, Tensor)>), CStr::from_ptr(name)) };
    list.push((name.to_string_lossy().into_owned(), unsafe { Tensor::from_ptr(t) }));
}

fn last_error() -> String {
    // SAFETY: the shim keeps a NUL-terminated message per thread.
    unsafe { CStr::from_ptr(byol_last_error()) }.to_string_lossy().into_owned()
}

/// A TorchScript module; it owns its parameters and buffers, which `Params` shares.
#[derive(Debug)]
pub struct TorchScript {
    /// The file it was loaded from, absolute.
    pub path: PathBuf,
    module: Mutex<Module>,
    training: Mutex<Option<bool>>,
}

impl TorchScript {
    pub fn load(path: &Path, device: Device) -> Result<(Self, Params)> {
        if !path.is_file() {
            return Err(Error::file(
                path,
                "no such TorchScript file (export one with torch.jit.script or torch.jit.trace, then torch.jit.save)",
            ));
        }
        // Kept absolute: a saved model names it relative to where it is written.
        let path = std::fs::canonicalize(path).map_err(|e| Error::file(path, format!("cannot be resolved: {e}")))?;
        let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Error::file(&path, "a path with a NUL byte"))?;
        let cuda = match device {
            Device::Cpu => -1,
            Device::Cuda(i) => i32::try_from(i).unwrap_or(i32::MAX),
            other => return Err(Error::invalid("device", "'cpu' or a CUDA device for a TorchScript module", format!("{other:?}"))),
        };
        // SAFETY: a NUL-terminated path alive for the call.
        let raw = unsafe { byol_jit_load(c_path.as_ptr(), cuda) };
        if raw.is_null() {
            return Err(Error::file(&path, format!("not a loadable TorchScript module: {}", last_error())));
        }
        let module = Module(raw);
        let mut params = Params::new();
        for (buffers, role) in [(0, Role::Parameter), (1, Role::Buffer)] {
            let mut named: Vec<(String, Tensor)> = Vec::new();
            // SAFETY: the module is live; `collect` receives `named` for the call only.
            if unsafe { byol_jit_named(module.0, buffers, (&mut named as *mut Vec<(String, Tensor)>).cast(), collect) } != 0 {
                return Err(Error::file(&path, format!("cannot list the module's tensors: {}", last_error())));
            }
            for (name, t) in named {
                params.add(name, role, t);
            }
        }
        Ok((Self { path, module: Mutex::new(module), training: Mutex::new(None) }, params))
    }

    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let module = self.module.lock().map_err(|_| Error::file(&self.path, "module lock poisoned"))?;
        let mut mode = self.training.lock().map_err(|_| Error::file(&self.path, "module lock poisoned"))?;
        if *mode != Some(train) {
            // SAFETY: the module is live and locked.
            if unsafe { byol_jit_train(module.0, i32::from(train)) } != 0 {
                return Err(Error::Torch(tch::TchError::Torch(last_error())));
            }
            *mode = Some(train);
        }
        // SAFETY: the module is live and locked; `x` a live tensor handle.
        let y = unsafe { byol_jit_forward(module.0, x.as_ptr()) };
        if y.is_null() {
            return Err(Error::Torch(tch::TchError::Torch(format!("the TorchScript module's forward failed: {}", last_error()))));
        }
        // SAFETY: a new at::Tensor the shim made for us to own.
        Ok(unsafe { Tensor::from_ptr(y) })
    }
}

//! A TorchScript module as a network: any PyTorch module exported with
//! `torch.jit.script` or `torch.jit.trace`, its parameters trained here.
use crate::error::{Error, Result};
use crate::nn::params::{Params, Role};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::{CModule, Device, Tensor};

/// A TorchScript module; it owns its parameters, which `Params` shares.
#[derive(Debug)]
pub struct TorchScript {
    pub path: PathBuf,
    module: Mutex<CModule>,
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
        let module =
            CModule::load_on_device(path, device).map_err(|e| Error::file(path, format!("not a loadable TorchScript module: {e}")))?;
        let mut params = Params::new();
        for (name, t) in module.named_parameters()? {
            params.add(name, Role::Parameter, t);
        }
        Ok((Self { path: path.to_path_buf(), module: Mutex::new(module), training: Mutex::new(None) }, params))
    }

    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut module = self.module.lock().map_err(|_| Error::file(&self.path, "module lock poisoned"))?;
        let mut mode = self.training.lock().map_err(|_| Error::file(&self.path, "module lock poisoned"))?;
        if *mode != Some(train) {
            if train {
                module.f_set_train()?
            } else {
                module.f_set_eval()?
            }
            *mode = Some(train);
        }
        Ok(module.forward_ts(&[x])?)
    }
}

//! A network: an architecture plus its `Params`. What minerva passes around as
//! an `nn.Module` (backbone, heads, their momentum copies).
use crate::backbones::{ResNet, ResNetKind, ResNetOptions};
use crate::error::{Error, Result};
use crate::heads::Head;
use crate::params::{Params, Role};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tch::{CModule, Device, Kind, Tensor};

#[derive(Debug)]
pub enum Arch {
    ResNet(ResNet),
    Head(Head),
    TorchScript(TorchScript),
}

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
            return Err(Error::file(path, "no such TorchScript file (export one with torch.jit.script or torch.jit.trace, then torch.jit.save)"));
        }
        let module = CModule::load_on_device(path, device)
            .map_err(|e| Error::file(path, format!("not a loadable TorchScript module: {e}")))?;
        let mut params = Params::new();
        for (name, t) in module.named_parameters()? {
            params.add(name, Role::Parameter, t);
        }
        Ok((Self { path: path.to_path_buf(), module: Mutex::new(module), training: Mutex::new(None) }, params))
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut module = self.module.lock().map_err(|_| Error::file(&self.path, "module lock poisoned"))?;
        let mut mode = self.training.lock().map_err(|_| Error::file(&self.path, "module lock poisoned"))?;
        if *mode != Some(train) {
            if train { module.f_set_train()? } else { module.f_set_eval()? }
            *mode = Some(train);
        }
        Ok(module.forward_ts(&[x])?)
    }
}

#[derive(Debug)]
pub struct Network {
    pub arch: Arc<Arch>,
    pub params: Params,
}

impl Network {
    pub fn resnet(kind: ResNetKind, device: Device) -> Result<Self> {
        Self::resnet_with(kind, ResNetOptions::default(), device)
    }

    pub fn resnet_with(kind: ResNetKind, options: ResNetOptions, device: Device) -> Result<Self> {
        let mut params = Params::new();
        let arch = ResNet::new(kind, options, &mut params, device)?;
        Ok(Self { arch: Arc::new(Arch::ResNet(arch)), params })
    }

    pub fn head(blocks: &[crate::heads::BlockSpec], preprocess: crate::heads::Preprocess, device: Device) -> Result<Self> {
        let mut params = Params::new();
        let arch = Head::new(blocks, preprocess, &mut params, device)?;
        Ok(Self { arch: Arc::new(Arch::Head(arch)), params })
    }

    pub fn torchscript(path: &Path, device: Device) -> Result<Self> {
        let (arch, params) = TorchScript::load(path, device)?;
        Ok(Self { arch: Arc::new(Arch::TorchScript(arch)), params })
    }

    pub fn device(&self) -> Device {
        self.params.device()
    }

    /// Another handle on the same network: same architecture, same tensors.
    pub fn shallow_clone(&self) -> Network {
        Network { arch: Arc::clone(&self.arch), params: self.params.shallow_clone() }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &*self.arch {
            Arch::ResNet(r) => {
                check_images(x, "x", self.params.get(0))?;
                if train && x.size()[0] < 2 {
                    return Err(Error::range(
                        "x",
                        "a batch of more than 1 image in training mode (BatchNorm needs more than one value per channel)",
                        format!("batch size {}", x.size()[0]),
                    ));
                }
                r.forward(&self.params, x, train)
            }
            Arch::Head(h) => {
                check_float(x, "x", self.device())?;
                h.forward(&self.params, x, train)
            }
            Arch::TorchScript(t) => {
                check_float(x, "x", self.device())?;
                t.forward(x, train)
            }
        }
    }

    /// `copy.deepcopy`: same architecture, values copied, nothing shared.
    pub fn deep_copy(&self) -> Result<Network> {
        match &*self.arch {
            Arch::TorchScript(t) => {
                // A CModule cannot be cloned: load the file again and copy the values over.
                let copy = Network::torchscript(&t.path, self.device())?;
                copy.params.copy_from(&self.params)?;
                Ok(copy)
            }
            _ => Ok(Network { arch: Arc::clone(&self.arch), params: self.params.deep_copy()? }),
        }
    }

    /// The number of features the network outputs for images of `size`,
    /// found by a forward pass in eval mode (which leaves BatchNorm alone).
    pub fn probe_feature_dim(&self, size: i64) -> Result<i64> {
        if let Arch::ResNet(r) = &*self.arch {
            return Ok(r.feature_dim());
        }
        let _guard = tch::no_grad_guard();
        let x = Tensor::f_zeros([2, 3, size, size], (Kind::Float, self.device()))?;
        let y = self.forward(&x, false)?;
        let dims = y.size();
        if dims.len() < 2 {
            return Err(Error::invalid("backbone", "a module whose output is [N, C, ...]", format!("output shape {dims:?}")));
        }
        Ok(dims[1])
    }
}

pub(crate) fn check_float(x: &Tensor, arg: &str, device: Device) -> Result<()> {
    let kind = x.f_kind()?;
    if !is_float(kind) {
        return Err(Error::invalid(arg, "a floating-point tensor", format!("dtype {}", kind_name(kind))));
    }
    if x.device() != device {
        return Err(Error::invalid(
            arg,
            format!("a tensor on the model's device {}", crate::device::device_name(device)),
            format!("a tensor on {}", crate::device::device_name(x.device())),
        ));
    }
    Ok(())
}

fn check_images(x: &Tensor, arg: &str, conv1_weight: &Tensor) -> Result<()> {
    check_float(x, arg, conv1_weight.device())?;
    let size = x.size();
    let channels = conv1_weight.size()[1];
    if size.len() != 4 || size[1] != channels {
        return Err(Error::invalid(arg, format!("images of shape [N, {channels}, H, W]"), format!("shape {size:?}")));
    }
    if size[2] < 2 || size[3] < 2 {
        return Err(Error::range(arg, "images of at least 2x2 pixels", format!("shape {size:?}")));
    }
    Ok(())
}

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Uint8 => "uint8",
        Kind::Int8 => "int8",
        Kind::Int16 => "int16",
        Kind::Int => "int32",
        Kind::Int64 => "int64",
        Kind::Half => "float16",
        Kind::Float => "float32",
        Kind::Double => "float64",
        Kind::Bool => "bool",
        Kind::BFloat16 => "bfloat16",
        _ => "other",
    }
}

pub fn is_float(kind: Kind) -> bool {
    matches!(kind, Kind::Half | Kind::Float | Kind::Double | Kind::BFloat16)
}

impl Network {
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        self.params.state_dict("")
    }

    /// `load_state_dict(strict=True)`. A ResNet trunk also takes a torchvision
    /// `resnet*` state dict (`conv1.weight`, `layer1.0...`; `fc.*` is ignored).
    pub fn load_state_dict(&self, dict: &[(String, Tensor)]) -> Result<()> {
        let translated;
        let dict = if matches!(&*self.arch, Arch::ResNet(_)) && dict.iter().any(|(k, _)| k.starts_with("conv1.")) {
            translated = dict
                .iter()
                .filter(|(k, _)| !k.starts_with("fc."))
                .map(|(k, t)| {
                    crate::backbones::from_torchvision_key(k)
                        .map(|k| (k, t.shallow_clone()))
                        .ok_or_else(|| Error::StateDict(format!("unexpected keys: '{k}'")))
                })
                .collect::<Result<Vec<_>>>()?;
            &translated[..]
        } else {
            dict
        };
        let known: std::collections::BTreeSet<&str> = self.params.entries().iter().map(|e| e.name.as_str()).collect();
        let unexpected: Vec<String> = dict.iter().map(|(k, _)| k.clone()).filter(|k| !known.contains(k.as_str())).collect();
        if !unexpected.is_empty() {
            return Err(Error::StateDict(format!("unexpected keys: {}", crate::params::list(&unexpected))));
        }
        self.params.load_from(dict, "")
    }

    /// The trunk's state dict with torchvision's keys (`conv1.weight`, ...).
    pub fn torchvision_state_dict(&self) -> Result<Vec<(String, Tensor)>> {
        if !matches!(&*self.arch, Arch::ResNet(_)) {
            return Err(Error::invalid("backbone", "a ResNet trunk", "another module"));
        }
        Ok(self
            .state_dict()
            .into_iter()
            .filter_map(|(k, t)| crate::backbones::to_torchvision_key(&k).map(|k| (k, t)))
            .collect())
    }
}

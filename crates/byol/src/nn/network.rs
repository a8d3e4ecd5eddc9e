//! A network: an architecture plus its `Params`. What minerva passes around as
//! an `nn.Module` (backbone, heads, their momentum copies).
use crate::error::{Error, Result};
use crate::nn::heads::{BlockSpec, Head, HeadDims, Preprocess};
use crate::nn::params::Params;
use crate::nn::resnet::{from_torchvision_key, to_torchvision_key, ResNet, ResNetKind, ResNetOptions};
use crate::nn::torchscript::TorchScript;
use crate::tensor::check_float;
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

#[derive(Debug)]
pub enum Arch {
    ResNet(ResNet),
    Head(Head),
    TorchScript(TorchScript),
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

    pub fn head(blocks: &[BlockSpec], preprocess: Preprocess, device: Device) -> Result<Self> {
        let mut params = Params::new();
        let arch = Head::new(blocks, preprocess, &mut params, device)?;
        Ok(Self { arch: Arc::new(Arch::Head(arch)), params })
    }

    /// minerva's `BYOLProjectionHead` (with `Preprocess::AvgPoolFlatten`) or `BYOLPredictionHead`.
    pub fn byol_head(dims: HeadDims, preprocess: Preprocess, device: Device) -> Result<Self> {
        Self::head(&Head::byol_blocks(dims.input_dim, dims.hidden_dim, dims.output_dim), preprocess, device)
    }

    pub fn torchscript(path: &Path, device: Device) -> Result<Self> {
        let (arch, params) = TorchScript::load(path, device)?;
        Ok(Self { arch: Arc::new(Arch::TorchScript(arch)), params })
    }

    pub fn device(&self) -> Device {
        self.params.device()
    }

    /// `"resnet18"`, `"resnet34"`, `"resnet50"`, `"torchscript"` or `"head"`.
    pub fn kind_name(&self) -> &'static str {
        match &*self.arch {
            Arch::ResNet(r) => r.kind.name(),
            Arch::TorchScript(_) => "torchscript",
            Arch::Head(_) => "head",
        }
    }

    fn head_arch(&self) -> Result<&Head> {
        match &*self.arch {
            Arch::Head(h) => Ok(h),
            _ => Err(Error::invalid("module", "a projection or prediction head", "a backbone")),
        }
    }

    /// A head's layers as PyTorch prints them (`repr` of its `layers` Sequential).
    pub fn layer_descriptions(&self) -> Result<Vec<String>> {
        Ok(self.head_arch()?.layers.iter().map(|l| l.describe()).collect())
    }

    /// A head's `preprocess_step(x)`.
    pub fn preprocess_step(&self, x: &Tensor) -> Result<Tensor> {
        self.head_arch()?.preprocess_step(x)
    }

    /// Another handle on the same network: same architecture, same tensors.
    pub fn shallow_clone(&self) -> Network {
        Network { arch: Arc::clone(&self.arch), params: self.params.shallow_clone() }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_views(x, train, 1)
    }

    /// The forward of `views` equal batches stacked along dimension 0, as if
    /// each went through by itself: BatchNorm keeps per-view statistics in
    /// training mode. Built-in networks take them in one call (fewer, larger
    /// kernels); a TorchScript module, whose layers are not ours, takes them
    /// one after the other.
    pub fn forward_views(&self, x: &Tensor, train: bool, views: i64) -> Result<Tensor> {
        match &*self.arch {
            Arch::ResNet(r) => {
                check_images(x, "x", self.params.get(0))?;
                let per_view = x.size()[0] / views.max(1);
                if train && per_view < 2 {
                    return Err(Error::range(
                        "x",
                        "a batch of more than 1 image in training mode (BatchNorm needs more than one value per channel)",
                        format!("batch size {per_view}"),
                    ));
                }
                r.forward(&self.params, x, train, views)
            }
            Arch::Head(h) => {
                check_float(x, "x", self.device())?;
                h.forward(&self.params, x, train, views)
            }
            Arch::TorchScript(t) => {
                check_float(x, "x", self.device())?;
                if views <= 1 {
                    return t.forward(x, train);
                }
                let outputs = x.f_chunk(views, 0)?.iter().map(|v| t.forward(v, train)).collect::<Result<Vec<_>>>()?;
                Ok(Tensor::f_cat(&outputs, 0)?)
            }
        }
    }

    /// `copy.deepcopy`: same architecture, values copied, nothing shared.
    pub fn deep_copy(&self) -> Result<Network> {
        match &*self.arch {
            Arch::TorchScript(t) => {
                // A scripted module is not cloned here: load the file again and copy the values over.
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

impl Network {
    /// The bytes of its parameters and buffers.
    pub fn nbytes(&self) -> i64 {
        self.state_dict().iter().map(|(_, t)| crate::tensor::nbytes(t)).sum()
    }

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
                    from_torchvision_key(k)
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
            return Err(Error::StateDict(format!("unexpected keys: {}", crate::nn::params::list(&unexpected))));
        }
        self.params.load_from(dict, "")
    }

    /// The trunk's state dict with torchvision's keys (`conv1.weight`, ...).
    pub fn torchvision_state_dict(&self) -> Result<Vec<(String, Tensor)>> {
        match &*self.arch {
            Arch::ResNet(_) => {}
            Arch::TorchScript(t) => {
                return Err(Error::invalid(
                    "backbone",
                    "a ResNet trunk (torchvision's keys)",
                    format!(
                        "a TorchScript module ({}), which has no torchvision keys: export the trained module with exportTorchScript(path, {{ example }}) (byol-torch export --format torchscript), or the whole model with save(path)",
                        t.path.display()
                    ),
                ))
            }
            Arch::Head(_) => return Err(Error::invalid("backbone", "a ResNet trunk (torchvision's keys)", "a head")),
        }
        Ok(self.state_dict().into_iter().filter_map(|(k, t)| to_torchvision_key(&k).map(|k| (k, t))).collect())
    }
}

//! `NativeModule`: a network of its own (a backbone or head made from JS), or
//! one of a BYOL model's five (Python would share the object), and the
//! functions that make modules or work on them.
use crate::enums::{NonLinearity, Preprocess, ResNetName};
use crate::error::{poisoned, OrThrow};
use crate::memory::External;
use crate::model::SharedModel;
use crate::state_dict::NativeStateDict;
use crate::tensor::{device, NativeTensor};
use byol::model::Part;
use byol::nn::{BlockSpec, HeadDims, Network, ResNetOptions};
use byol::tch;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::Path;
use std::sync::Mutex;

pub(crate) enum Holder {
    /// A module of its own (made by `resnet18()`, `new BYOLProjectionHead()`, ...).
    Owned { net: Network, training: bool },
    /// A module that now lives inside a BYOL model.
    Part(SharedModel, Part),
}

/// A network: backbone, head or momentum copy.
#[napi(custom_finalize)]
pub struct NativeModule {
    pub(crate) holder: Mutex<Holder>,
    /// What an owned network holds; a part's memory is its model's.
    pub(crate) external: External,
}

impl ObjectFinalize for NativeModule {
    fn finalize(self, env: Env) -> Result<()> {
        self.external.release(&env);
        Ok(())
    }
}

impl NativeModule {
    pub(crate) fn owned(env: &Env, net: Network, training: bool) -> Self {
        let external = External::new(env, net.nbytes());
        Self { holder: Mutex::new(Holder::Owned { net, training }), external }
    }

    pub(crate) fn part(model: SharedModel, part: Part) -> Self {
        Self { holder: Mutex::new(Holder::Part(model, part)), external: External::default() }
    }

    /// Runs `f` on the network behind the module, with the module's training flag.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Network, &mut bool) -> byol::Result<T>) -> byol::Result<T> {
        let mut holder = self.holder.lock().map_err(|_| poisoned())?;
        match &mut *holder {
            Holder::Owned { net, training } => f(net, training),
            Holder::Part(model, part) => {
                let mut model = model.lock().map_err(|_| poisoned())?;
                let mut training = model.training;
                let r = f(model.part_mut(*part), &mut training);
                model.training = training;
                r
            }
        }
    }

    /// Another handle on the module's network for a new model; the module
    /// keeps its own until the model exists, so a failed construction leaves it usable.
    pub(crate) fn share(&self, arg: &str) -> byol::Result<Network> {
        match &*self.holder.lock().map_err(|_| poisoned())? {
            Holder::Part(..) => {
                Err(byol::Error::invalid(arg, "a module that is not already part of a BYOL model", "a module of another model"))
            }
            Holder::Owned { net, .. } => Ok(net.shallow_clone()),
        }
    }
}

#[napi]
impl NativeModule {
    #[napi]
    pub fn forward(&self, env: &Env, x: &NativeTensor) -> Result<NativeTensor> {
        self.with(|n, training| Ok(NativeTensor::wrap(env, n.forward(x.get()?, *training)?))).or_throw(env)
    }

    #[napi]
    pub fn preprocess_step(&self, env: &Env, x: &NativeTensor) -> Result<NativeTensor> {
        self.with(|n, _| Ok(NativeTensor::wrap(env, n.preprocess_step(x.get()?)?))).or_throw(env)
    }

    #[napi(getter)]
    pub fn training(&self, env: &Env) -> Result<bool> {
        self.with(|_, t| Ok(*t)).or_throw(env)
    }

    #[napi]
    pub fn train(&self, env: &Env, mode: bool) -> Result<()> {
        self.with(|_, t| {
            *t = mode;
            Ok(())
        })
        .or_throw(env)
    }

    /// `"resnet18"`, `"resnet34"`, `"resnet50"`, `"torchscript"` or `"head"`.
    #[napi(getter)]
    pub fn kind(&self, env: &Env) -> Result<String> {
        self.with(|n, _| Ok(n.kind_name().to_string())).or_throw(env)
    }

    /// `repr()` of each layer of a head's `layers` Sequential.
    #[napi(getter)]
    pub fn layers(&self, env: &Env) -> Result<Vec<String>> {
        self.with(|n, _| n.layer_descriptions()).or_throw(env)
    }

    #[napi(getter)]
    pub fn device(&self, env: &Env) -> Result<String> {
        self.with(|n, _| Ok(byol::tensor::device_name(n.device()))).or_throw(env)
    }

    #[napi(getter)]
    pub fn requires_grad(&self, env: &Env) -> Result<bool> {
        self.with(|n, _| Ok(n.params.requires_grad())).or_throw(env)
    }

    #[napi(getter)]
    pub fn num_parameters(&self, env: &Env) -> Result<i64> {
        self.with(|n, _| Ok(n.params.parameters().map(|t| t.numel() as i64).sum())).or_throw(env)
    }

    /// Features the trunk outputs (512 for ResNet18, 2048 for ResNet50).
    #[napi]
    pub fn feature_dim(&self, env: &Env) -> Result<i64> {
        self.with(|n, _| n.probe_feature_dim(64)).or_throw(env)
    }

    #[napi]
    pub fn state_dict(&self, env: &Env) -> Result<NativeStateDict> {
        self.with(|n, _| Ok(NativeStateDict { entries: n.state_dict() })).or_throw(env)
    }

    #[napi]
    pub fn torchvision_state_dict(&self, env: &Env) -> Result<NativeStateDict> {
        self.with(|n, _| Ok(NativeStateDict { entries: n.torchvision_state_dict()? })).or_throw(env)
    }

    #[napi]
    pub fn load_state_dict(&self, env: &Env, dict: &NativeStateDict) -> Result<()> {
        self.with(|n, _| n.load_state_dict(&dict.entries)).or_throw(env)
    }

    /// A deep copy, as `copy.deepcopy(module)`.
    #[napi]
    pub fn deep_copy(&self, env: &Env) -> Result<NativeModule> {
        let (net, training) = self.with(|n, t| Ok((n.deep_copy()?, *t))).or_throw(env)?;
        Ok(NativeModule::owned(env, net, training))
    }

    #[napi]
    pub fn deactivate_requires_grad(&self, env: &Env) -> Result<()> {
        self.with(|n, _| byol::model::deactivate_requires_grad(n)).or_throw(env)
    }

    /// True when the module now lives inside a BYOL model.
    #[napi(getter)]
    pub fn is_attached(&self, env: &Env) -> Result<bool> {
        Ok(matches!(&*self.holder.lock().map_err(|_| poisoned()).or_throw(env)?, Holder::Part(..)))
    }
}

/// The weights of a new module come from libtorch's generator, seeded first if asked.
fn seeded(seed: Option<i64>) {
    if let Some(s) = seed {
        tch::manual_seed(s);
    }
}

#[napi]
pub fn resnet(
    env: &Env,
    name: ResNetName,
    device_name: Option<String>,
    seed: Option<i64>,
    width: Option<i64>,
    small_inputs: Option<bool>,
) -> Result<NativeModule> {
    let d = ResNetOptions::default();
    let options = ResNetOptions { width: width.unwrap_or(d.width), small_inputs: small_inputs.unwrap_or(d.small_inputs) };
    let device = device(device_name.as_deref()).or_throw(env)?;
    seeded(seed);
    Ok(NativeModule::owned(env, Network::resnet_with(name.into(), options, device).or_throw(env)?, true))
}

#[napi]
pub fn torchscript(env: &Env, path: String, device_name: Option<String>) -> Result<NativeModule> {
    let device = device(device_name.as_deref()).or_throw(env)?;
    Ok(NativeModule::owned(env, Network::torchscript(Path::new(&path), device).or_throw(env)?, true))
}

/// One block of a head: minerva's `(input_dim, output_dim, batch_norm, non_linearity, bias?)`.
#[napi(object)]
pub struct Block {
    pub input_dim: i64,
    pub output_dim: i64,
    pub batch_norm: bool,
    pub non_linearity: Option<NonLinearity>,
    pub bias: Option<bool>,
}

impl From<Block> for BlockSpec {
    fn from(b: Block) -> Self {
        BlockSpec {
            input_dim: b.input_dim,
            output_dim: b.output_dim,
            batch_norm: b.batch_norm,
            non_linearity: b.non_linearity.map(Into::into),
            bias: b.bias,
        }
    }
}

/// A head from its blocks.
#[napi]
pub fn projection_head(
    env: &Env,
    blocks: Vec<Block>,
    preprocess: Preprocess,
    device_name: Option<String>,
    seed: Option<i64>,
) -> Result<NativeModule> {
    let specs: Vec<BlockSpec> = blocks.into_iter().map(Into::into).collect();
    let device = device(device_name.as_deref()).or_throw(env)?;
    seeded(seed);
    Ok(NativeModule::owned(env, Network::head(&specs, preprocess.into(), device).or_throw(env)?, true))
}

/// minerva's `BYOLProjectionHead` (pooling first) or `BYOLPredictionHead`;
/// each dimension left out takes minerva's default.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn byol_head(
    env: &Env,
    preprocess: Preprocess,
    input_dim: Option<i64>,
    hidden_dim: Option<i64>,
    output_dim: Option<i64>,
    device_name: Option<String>,
    seed: Option<i64>,
) -> Result<NativeModule> {
    let preprocess = byol::nn::Preprocess::from(preprocess);
    let d = match preprocess {
        byol::nn::Preprocess::AvgPoolFlatten => HeadDims::PROJECTION,
        byol::nn::Preprocess::Identity => HeadDims::PREDICTION,
    };
    let dims = HeadDims {
        input_dim: input_dim.unwrap_or(d.input_dim),
        hidden_dim: hidden_dim.unwrap_or(d.hidden_dim),
        output_dim: output_dim.unwrap_or(d.output_dim),
    };
    let device = device(device_name.as_deref()).or_throw(env)?;
    seeded(seed);
    Ok(NativeModule::owned(env, Network::byol_head(dims, preprocess, device).or_throw(env)?, true))
}

/// `update_momentum(model, model_ema, m)`.
#[napi]
pub fn update_momentum(env: &Env, model: &NativeModule, model_ema: &NativeModule, m: f64) -> Result<()> {
    // Both may be parts of one BYOL model behind one lock: take handles on the
    // online parameters first, then update the copy.
    let online = model.with(|n, _| Ok(n.params.parameters().map(|t| t.shallow_clone()).collect::<Vec<_>>())).or_throw(env)?;
    model_ema
        .with(|ema, _| {
            let targets: Vec<_> = ema.params.parameters().collect();
            byol::model::update_momentum_tensors(&online.iter().collect::<Vec<_>>(), &targets, m)
        })
        .or_throw(env)
}

#[napi(object)]
pub struct Scheduled {
    pub value: f64,
    pub past_end: bool,
}

#[napi]
pub fn cosine_schedule(env: &Env, step: i64, max_steps: i64, start_value: f64, end_value: f64, period: Option<i64>) -> Result<Scheduled> {
    let s = byol::model::cosine_schedule(step, max_steps, start_value, end_value, period).or_throw(env)?;
    Ok(Scheduled { value: s.value, past_end: s.past_end })
}

/// lightly's `NegativeCosineSimilarity()(x0, x1)`.
#[napi]
pub fn negative_cosine_similarity(env: &Env, x0: &NativeTensor, x1: &NativeTensor) -> Result<NativeTensor> {
    let (x0, x1) = (x0.get().or_throw(env)?, x1.get().or_throw(env)?);
    Ok(NativeTensor::wrap(env, byol::model::negative_cosine_similarity(x0, x1).or_throw(env)?))
}

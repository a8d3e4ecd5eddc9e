//! Node-API binding of the `byol` crate: type and error conversions only.
#![deny(clippy::all)]

use byol::byol::{BackboneSpec, Byol, ByolConfig, MomentumSchedule, Part};
use byol::backbones::ResNetKind;
use byol::heads::{BlockSpec, NonLinearity, Preprocess};
use byol::network::{Arch, Network};
use byol::optim::{OptimizerConfig as CoreOptimizerConfig, OptimizerKind};
use std::sync::atomic::{AtomicBool, Ordering};
use byol::tch::{self, Kind, Tensor};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// napi-rs only throws errors whose `code` is a napi `Status`, so the core
/// error's code travels in front of the message as `[CODE] `; the TypeScript
/// facade turns it back into `error.code` and a `TypeError`/`RangeError`.


fn js(e: byol::Error) -> napi::Error {
    let status = match e {
        byol::Error::InvalidArgument { .. } | byol::Error::OutOfRange { .. } => Status::InvalidArg,
        _ => Status::GenericFailure,
    };
    napi::Error::new(status, format!("[{}] {}", e.code(), e))
}

fn invalid(arg: &str, expected: &str, got: impl ToString) -> napi::Error {
    js(byol::Error::invalid(arg, expected, got))
}

fn poisoned() -> napi::Error {
    napi::Error::new(Status::GenericFailure, "[ERR_BYOL_STATE] the model was left inconsistent by an earlier panic".to_string())
}

fn device(name: Option<String>) -> Result<tch::Device> {
    byol::device::parse_device(name.as_deref().unwrap_or("cpu")).map_err(js)
}

fn kind_from_name(name: &str) -> Result<Kind> {
    Ok(match name {
        "float32" => Kind::Float,
        "float64" => Kind::Double,
        "int32" => Kind::Int,
        "int64" => Kind::Int64,
        "uint8" => Kind::Uint8,
        "int8" => Kind::Int8,
        "int16" => Kind::Int16,
        other => return Err(invalid("dtype", "'float32', 'float64', 'int32', 'int64', 'int16', 'int8' or 'uint8'", format!("'{other}'"))),
    })
}

// ---------------------------------------------------------------- tensors

/// A libtorch tensor. `None` once disposed.
#[napi]
pub struct NativeTensor {
    pub(crate) tensor: Option<Tensor>,
}

impl NativeTensor {
    fn wrap(inner: Tensor) -> Self {
        Self { tensor: Some(inner) }
    }

    fn get(&self) -> Result<&Tensor> {
        self.tensor.as_ref().ok_or_else(|| {
            napi::Error::new(Status::InvalidArg, "[ERR_BYOL_DISPOSED] tensor: this tensor was disposed and holds no data".to_string())
        })
    }
}

#[napi]
impl NativeTensor {
    #[napi(getter)]
    pub fn shape(&self) -> Result<Vec<i64>> {
        Ok(self.get()?.size())
    }

    #[napi(getter)]
    pub fn dtype(&self) -> Result<String> {
        Ok(byol::network::kind_name(self.get()?.kind()).to_string())
    }

    #[napi(getter)]
    pub fn device(&self) -> Result<String> {
        Ok(byol::device::device_name(self.get()?.device()))
    }

    #[napi(getter)]
    pub fn requires_grad(&self) -> Result<bool> {
        Ok(self.get()?.requires_grad())
    }

    /// Frees the tensor's memory now rather than when JS garbage-collects it
    /// (Node runs addon finalizers only between event-loop turns).
    #[napi]
    pub fn dispose(&mut self) {
        self.tensor = None;
    }

    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.tensor.is_none()
    }

    /// The values as float32, in row-major order. The buffer is handed to JS without a further copy.
    #[napi]
    pub fn to_float32_array(&self) -> Result<Float32Array> {
        let t = self
            .get()?
            .f_detach()
            .and_then(|t| t.f_to_device(tch::Device::Cpu))
            .and_then(|t| t.f_to_kind(Kind::Float))
            .and_then(|t| t.f_contiguous())
            .and_then(|t| t.f_flatten(0, -1))
            .map_err(|e| js(e.into()))?;
        let v = Vec::<f32>::try_from(&t).map_err(|e| js(e.into()))?;
        Ok(Float32Array::new(v))
    }

    #[napi]
    pub fn to(&self, device_name: String) -> Result<NativeTensor> {
        let d = device(Some(device_name))?;
        Ok(Self::wrap(self.get()?.f_to_device(d).map_err(|e| js(e.into()))?))
    }

    #[napi]
    pub fn item(&self) -> Result<f64> {
        let t = self.get()?;
        if t.numel() != 1 {
            return Err(js(byol::Error::range(
                "tensor",
                "a tensor with exactly one element for item()",
                format!("shape {:?}", t.size()),
            )));
        }
        t.f_double_value(&[]).map_err(|e| js(e.into()))
    }
}

/// Makes a tensor from the bytes of a typed array (copied once, into libtorch).
#[napi]
pub fn tensor_from_bytes(bytes: Uint8Array, shape: Vec<i64>, dtype: String, device_name: Option<String>) -> Result<NativeTensor> {
    let kind = kind_from_name(&dtype)?;
    if let Some((i, d)) = shape.iter().enumerate().find(|(_, d)| **d < 0) {
        return Err(js(byol::Error::range(format!("shape[{i}]"), "a dimension >= 0", d)));
    }
    let numel: i64 = shape.iter().product();
    let expected = numel as usize * kind.elt_size_in_bytes();
    if bytes.len() != expected {
        return Err(js(byol::Error::range(
            "data",
            format!("{numel} elements for shape {shape:?}"),
            format!("{} elements", bytes.len() / kind.elt_size_in_bytes()),
        )));
    }
    let d = device(device_name)?;
    let t = Tensor::f_from_data_size(&bytes, &shape, kind).and_then(|t| t.f_to_device(d)).map_err(|e| js(e.into()))?;
    Ok(NativeTensor::wrap(t))
}

fn check_shape(shape: &[i64]) -> Result<()> {
    if let Some((i, d)) = shape.iter().enumerate().find(|(_, d)| **d < 0) {
        return Err(js(byol::Error::range(format!("shape[{i}]"), "a dimension >= 0", d)));
    }
    Ok(())
}

/// Standard normal values; `seed` reseeds libtorch's generator first.
#[napi]
pub fn randn(shape: Vec<i64>, seed: Option<i64>, device_name: Option<String>) -> Result<NativeTensor> {
    check_shape(&shape)?;
    let d = device(device_name)?;
    if let Some(s) = seed {
        tch::manual_seed(s);
    }
    Ok(NativeTensor::wrap(Tensor::f_randn(&shape, (Kind::Float, d)).map_err(|e| js(e.into()))?))
}

#[napi]
pub fn zeros(shape: Vec<i64>, device_name: Option<String>) -> Result<NativeTensor> {
    check_shape(&shape)?;
    let d = device(device_name)?;
    Ok(NativeTensor::wrap(Tensor::f_zeros(&shape, (Kind::Float, d)).map_err(|e| js(e.into()))?))
}

#[napi]
pub fn manual_seed(seed: i64) {
    tch::manual_seed(seed);
}

#[napi]
pub fn cuda_is_available() -> bool {
    byol::device::cuda_is_available()
}

#[napi]
pub fn cuda_device_count() -> u32 {
    byol::device::cuda_device_count() as u32
}

/// The addon's version (its crate's, kept equal to the npm package's).
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// libtorch's kernel level on this CPU, e.g. `"AVX512"`.
#[napi]
pub fn cpu_capability() -> Option<String> {
    byol::device::cpu_capability()
}

/// The names of the CUDA devices, from the driver.
#[napi]
pub fn cuda_device_names() -> Vec<String> {
    byol::device::cuda_device_names()
}

#[napi]
pub fn set_num_threads(n: i32) -> Result<()> {
    if n < 1 {
        return Err(js(byol::Error::range("n", "a thread count >= 1", n)));
    }
    byol::device::set_thread_count(n);
    Ok(())
}

#[napi]
pub fn get_num_threads() -> i32 {
    tch::get_num_threads()
}

// ---------------------------------------------------------------- state dicts

/// An ordered list of named tensors, as `state_dict()` returns.
#[napi]
pub struct NativeStateDict {
    entries: Vec<(String, Tensor)>,
}

#[napi]
impl NativeStateDict {
    #[napi(constructor)]
    pub fn new() -> Self {
        Self { entries: Vec::new() }
    }

    #[napi]
    pub fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.clone()).collect()
    }

    #[napi]
    pub fn get(&self, key: String) -> Option<NativeTensor> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, t)| NativeTensor::wrap(t.shallow_clone()))
    }

    #[napi]
    pub fn set(&mut self, key: String, tensor: &NativeTensor) -> Result<()> {
        let t = tensor.get()?.shallow_clone();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = t,
            None => self.entries.push((key, t)),
        }
        Ok(())
    }

    /// Copies every tensor (so the dict no longer shares storage with a model).
    #[napi]
    pub fn detach_copy(&self) -> Result<NativeStateDict> {
        let entries = self
            .entries
            .iter()
            .map(|(k, t)| Ok((k.clone(), byol::params::fresh_copy(t).map_err(js)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { entries })
    }

    #[napi]
    pub fn save(&self, path: String) -> Result<()> {
        byol::checkpoint::save_safetensors(&self.entries, None, Path::new(&path)).map_err(js)
    }

    #[napi(factory)]
    pub fn load(path: String) -> Result<Self> {
        Ok(Self { entries: byol::checkpoint::load_safetensors(Path::new(&path)).map_err(js)?.tensors })
    }
}

impl Default for NativeStateDict {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------- modules

enum Holder {
    /// A module of its own (made by `resnet18()`, `new BYOLProjectionHead()`, ...).
    Owned { net: Network, training: bool },
    /// A module that now lives inside a BYOL model (Python would share the object).
    Part(Arc<Mutex<Byol>>, Part),
}

/// A network: backbone, head or momentum copy.
#[napi]
pub struct NativeModule {
    holder: Mutex<Holder>,
}

/// Runs `f` on the network behind a module, with the module's training flag.
fn with_net<T>(m: &NativeModule, f: impl FnOnce(&mut Network, &mut bool) -> Result<T>) -> Result<T> {
    let mut holder = m.holder.lock().map_err(|_| poisoned())?;
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

fn module_of(net: Network) -> NativeModule {
    NativeModule { holder: Mutex::new(Holder::Owned { net, training: true }) }
}

#[napi]
impl NativeModule {
    #[napi]
    pub fn forward(&self, x: &NativeTensor) -> Result<NativeTensor> {
        with_net(self, |n, training| Ok(NativeTensor::wrap(n.forward(x.get()?, *training).map_err(js)?)))
    }

    #[napi]
    pub fn preprocess_step(&self, x: &NativeTensor) -> Result<NativeTensor> {
        with_net(self, |n, _| match &*n.arch {
            Arch::Head(h) => Ok(NativeTensor::wrap(h.preprocess_step(x.get()?).map_err(js)?)),
            _ => Err(invalid("module", "a projection or prediction head", "a backbone")),
        })
    }

    #[napi(getter)]
    pub fn training(&self) -> Result<bool> {
        with_net(self, |_, t| Ok(*t))
    }

    #[napi]
    pub fn train(&self, mode: bool) -> Result<()> {
        with_net(self, |_, t| {
            *t = mode;
            Ok(())
        })
    }

    /// `"resnet18"`, `"resnet50"`, `"torchscript"` or `"head"`.
    #[napi(getter)]
    pub fn kind(&self) -> Result<String> {
        with_net(self, |n, _| {
            Ok(match &*n.arch {
                Arch::ResNet(r) => r.kind.name().to_string(),
                Arch::TorchScript(_) => "torchscript".to_string(),
                Arch::Head(_) => "head".to_string(),
            })
        })
    }

    /// `repr()` of each layer of a head's `layers` Sequential.
    #[napi(getter)]
    pub fn layers(&self) -> Result<Vec<String>> {
        with_net(self, |n, _| match &*n.arch {
            Arch::Head(h) => Ok(h.layers.iter().map(|l| l.describe()).collect()),
            _ => Err(invalid("module", "a projection or prediction head", "a backbone")),
        })
    }

    #[napi(getter)]
    pub fn device(&self) -> Result<String> {
        with_net(self, |n, _| Ok(byol::device::device_name(n.device())))
    }

    #[napi(getter)]
    pub fn requires_grad(&self) -> Result<bool> {
        with_net(self, |n, _| Ok(n.params.requires_grad()))
    }

    #[napi(getter)]
    pub fn num_parameters(&self) -> Result<i64> {
        with_net(self, |n, _| Ok(n.params.parameters().map(|t| t.numel() as i64).sum()))
    }

    /// Features the trunk outputs (512 for ResNet18, 2048 for ResNet50).
    #[napi]
    pub fn feature_dim(&self) -> Result<i64> {
        with_net(self, |n, _| n.probe_feature_dim(64).map_err(js))
    }

    #[napi]
    pub fn state_dict(&self) -> Result<NativeStateDict> {
        with_net(self, |n, _| Ok(NativeStateDict { entries: n.state_dict() }))
    }

    #[napi]
    pub fn torchvision_state_dict(&self) -> Result<NativeStateDict> {
        with_net(self, |n, _| Ok(NativeStateDict { entries: n.torchvision_state_dict().map_err(js)? }))
    }

    #[napi]
    pub fn load_state_dict(&self, dict: &NativeStateDict) -> Result<()> {
        with_net(self, |n, _| n.load_state_dict(&dict.entries).map_err(js))
    }

    /// A deep copy, as `copy.deepcopy(module)`.
    #[napi]
    pub fn deep_copy(&self) -> Result<NativeModule> {
        with_net(self, |n, t| {
            let copy = n.deep_copy().map_err(js)?;
            Ok(NativeModule { holder: Mutex::new(Holder::Owned { net: copy, training: *t }) })
        })
    }

    #[napi]
    pub fn deactivate_requires_grad(&self) -> Result<()> {
        with_net(self, |n, _| byol::momentum::deactivate_requires_grad(n).map_err(js))
    }

    /// True when the module now lives inside a BYOL model.
    #[napi(getter)]
    pub fn is_attached(&self) -> Result<bool> {
        Ok(matches!(&*self.holder.lock().map_err(|_| poisoned())?, Holder::Part(..)))
    }
}

#[napi]
pub fn resnet(name: String, device_name: Option<String>, seed: Option<i64>, width: Option<i64>, small_inputs: Option<bool>) -> Result<NativeModule> {
    let kind = ResNetKind::parse(&name).map_err(js)?;
    let options = byol::backbones::ResNetOptions { width: width.unwrap_or(64), small_inputs: small_inputs.unwrap_or(false) };
    let d = device(device_name)?;
    if let Some(s) = seed {
        tch::manual_seed(s);
    }
    Ok(module_of(Network::resnet_with(kind, options, d).map_err(js)?))
}

#[napi]
pub fn torchscript(path: String, device_name: Option<String>) -> Result<NativeModule> {
    let d = device(device_name)?;
    Ok(module_of(Network::torchscript(Path::new(&path), d).map_err(js)?))
}

#[napi(object)]
pub struct BlockSpecJs {
    pub input_dim: i64,
    pub output_dim: i64,
    pub batch_norm: bool,
    pub non_linearity: Option<String>,
    pub bias: Option<bool>,
}

/// A head from its blocks; `preprocess` is `"identity"` or `"avgpool"`.
#[napi]
pub fn projection_head(blocks: Vec<BlockSpecJs>, preprocess: String, device_name: Option<String>, seed: Option<i64>) -> Result<NativeModule> {
    let specs = blocks
        .into_iter()
        .map(|b| {
            Ok(BlockSpec {
                input_dim: b.input_dim,
                output_dim: b.output_dim,
                batch_norm: b.batch_norm,
                non_linearity: b.non_linearity.as_deref().map(NonLinearity::parse).transpose().map_err(js)?,
                bias: b.bias,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let pre = match preprocess.as_str() {
        "identity" => Preprocess::Identity,
        "avgpool" => Preprocess::AvgPoolFlatten,
        other => return Err(invalid("preprocess", "'identity' or 'avgpool'", format!("'{other}'"))),
    };
    let d = device(device_name)?;
    if let Some(s) = seed {
        tch::manual_seed(s);
    }
    Ok(module_of(Network::head(&specs, pre, d).map_err(js)?))
}

/// `update_momentum(model, model_ema, m)`.
#[napi]
pub fn update_momentum(model: &NativeModule, model_ema: &NativeModule, m: f64) -> Result<()> {
    // Both may be parts of one BYOL model behind one lock: take each network
    // through `with_net` in turn, taking handles on the online parameters first.
    let online = with_net(model, |n, _| {
        let _g = tch::no_grad_guard();
        Ok(n.params.named_parameters().map(|e| e.tensor.shallow_clone()).collect::<Vec<_>>())
    })?;
    with_net(model_ema, |ema, _| {
        let targets: Vec<&Tensor> = ema.params.parameters().collect();
        let online: Vec<&Tensor> = online.iter().collect();
        byol::momentum::update_momentum_tensors(&online, &targets, m).map_err(js)
    })
}

#[napi(object)]
pub struct Scheduled {
    pub value: f64,
    pub past_end: bool,
}

#[napi]
pub fn cosine_schedule(step: i64, max_steps: i64, start_value: f64, end_value: f64, period: Option<i64>) -> Result<Scheduled> {
    let s = byol::schedule::cosine_schedule(step, max_steps, start_value, end_value, period).map_err(js)?;
    Ok(Scheduled { value: s.value, past_end: s.past_end })
}

// ---------------------------------------------------------------- BYOL

#[napi(object)]
pub struct ByolOptions {
    pub backbone_name: Option<String>,
    pub learning_rate: f64,
    pub schedule: i64,
    pub momentum_schedule: String,
    pub device: Option<String>,
    pub seed: Option<i64>,
}

#[napi(object)]
pub struct OptimizerConfig {
    /// 'SGD', 'LARS' or 'AdamW'.
    pub name: String,
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub trust_coefficient: Option<f64>,
    pub betas: Option<Vec<f64>>,
    pub eps: Option<f64>,
    pub exclude_bias_and_norm: Option<bool>,
}

impl From<CoreOptimizerConfig> for OptimizerConfig {
    fn from(c: CoreOptimizerConfig) -> Self {
        Self {
            name: c.kind.name().into(),
            lr: c.lr,
            momentum: c.momentum,
            dampening: c.dampening,
            weight_decay: c.weight_decay,
            nesterov: c.nesterov,
            // Only the settings the optimiser has: SGD stays torch.optim.SGD's five.
            trust_coefficient: (c.kind == OptimizerKind::Lars).then_some(c.trust_coefficient),
            betas: (c.kind == OptimizerKind::AdamW).then(|| vec![c.betas.0, c.betas.1]),
            eps: (c.kind == OptimizerKind::AdamW).then_some(c.eps),
            exclude_bias_and_norm: (c.kind != OptimizerKind::Sgd || c.exclude_bias_and_norm).then_some(c.exclude_bias_and_norm),
        }
    }
}

fn betas(v: &[f64]) -> Result<(f64, f64)> {
    match v {
        [a, b] => Ok((*a, *b)),
        other => Err(invalid("betas", "two numbers", format!("{} numbers", other.len()))),
    }
}

fn core_optimizer(c: &OptimizerConfig) -> Result<CoreOptimizerConfig> {
    let kind = OptimizerKind::parse(&c.name).map_err(js)?;
    let base = match kind {
        OptimizerKind::Sgd => CoreOptimizerConfig::sgd(c.lr, c.momentum, c.weight_decay, c.nesterov),
        OptimizerKind::Lars => CoreOptimizerConfig::lars(c.lr, c.weight_decay),
        OptimizerKind::AdamW => CoreOptimizerConfig::adamw(c.lr, c.weight_decay),
    };
    let betas = c.betas.as_deref().map(betas).transpose()?.unwrap_or(base.betas);
    Ok(CoreOptimizerConfig {
        momentum: if kind == OptimizerKind::AdamW { 0.0 } else { c.momentum },
        dampening: c.dampening,
        nesterov: c.nesterov,
        trust_coefficient: c.trust_coefficient.unwrap_or(base.trust_coefficient),
        betas,
        eps: c.eps.unwrap_or(base.eps),
        exclude_bias_and_norm: c.exclude_bias_and_norm.unwrap_or(base.exclude_bias_and_norm),
        ..base
    })
}

#[napi]
pub struct NativeByol {
    model: Arc<Mutex<Byol>>,
    last_momentum: f64,
    /// Set while `Trainer.fit` trains this model.
    busy: Arc<AtomicBool>,
}

fn check_idle(busy: &AtomicBool, what: &str) -> Result<()> {
    if busy.load(Ordering::SeqCst) {
        return Err(js(byol::Error::State(format!("{what}: the model is being trained by Trainer.fit; wait for it to finish"))));
    }
    Ok(())
}

/// A handle on a module's network for a new model. The module keeps its own
/// until the model exists, so a failed construction leaves it usable.
fn share_owned(m: &NativeModule, arg: &str) -> Result<Network> {
    match &*m.holder.lock().map_err(|_| poisoned())? {
        Holder::Part(..) => Err(invalid(arg, "a module that is not already part of a BYOL model", "a module of another model")),
        Holder::Owned { net, .. } => Ok(net.shallow_clone()),
    }
}

fn lock(model: &Arc<Mutex<Byol>>) -> Result<MutexGuard<'_, Byol>> {
    model.lock().map_err(|_| poisoned())
}

#[napi]
impl NativeByol {
    #[napi(constructor)]
    pub fn new(
        options: ByolOptions,
        backbone: Option<&NativeModule>,
        projection_head: Option<&NativeModule>,
        prediction_head: Option<&NativeModule>,
    ) -> Result<Self> {
        let d = device(options.device)?;
        let momentum_schedule = MomentumSchedule::parse(&options.momentum_schedule).map_err(js)?;
        // Validate before taking any module, so that a bad option leaves the modules usable.
        byol::optim::check_learning_rate(options.learning_rate, "learningRate").map_err(js)?;
        byol::byol::check_schedule(options.schedule).map_err(js)?;
        let share = |m: Option<&NativeModule>, arg: &str| m.map(|m| share_owned(m, arg)).transpose();
        let backbone_net = share(backbone, "backbone")?;
        let projection_net = share(projection_head, "projectionHead")?;
        let prediction_net = share(prediction_head, "predictionHead")?;
        let spec = match (backbone_net, options.backbone_name) {
            (Some(n), _) => BackboneSpec::Network(n),
            (None, Some(name)) => BackboneSpec::ResNet(ResNetKind::parse(&name).map_err(js)?, Default::default()),
            (None, None) => BackboneSpec::ResNet(ResNetKind::ResNet18, Default::default()),
        };
        let config = ByolConfig {
            backbone: spec,
            projection_head: projection_net,
            prediction_head: prediction_net,
            learning_rate: options.learning_rate,
            schedule: options.schedule,
            momentum_schedule,
            device: d,
            seed: options.seed,
        };
        let model = Arc::new(Mutex::new(Byol::new(config).map_err(js)?));
        for (m, part) in [backbone.map(|m| (m, Part::Backbone)), projection_head.map(|m| (m, Part::ProjectionHead)), prediction_head.map(|m| (m, Part::PredictionHead))]
            .into_iter()
            .flatten()
        {
            *m.holder.lock().map_err(|_| poisoned())? = Holder::Part(Arc::clone(&model), part);
        }
        Ok(Self { model, last_momentum: f64::NAN, busy: Arc::new(AtomicBool::new(false)) })
    }

    #[napi(factory)]
    pub fn load(path: String, device_name: Option<String>) -> Result<Self> {
        let d = device(device_name)?;
        let model = Byol::load(Path::new(&path), d).map_err(js)?;
        Ok(Self { model: Arc::new(Mutex::new(model)), last_momentum: f64::NAN, busy: Arc::new(AtomicBool::new(false)) })
    }

    /// One of `backbone`, `projection_head`, `prediction_head`, `backbone_momentum`, `projection_head_momentum`.
    #[napi]
    pub fn part(&self, name: String) -> Result<NativeModule> {
        let part = Part::ALL
            .into_iter()
            .find(|p| p.prefix() == name)
            .ok_or_else(|| invalid("name", "a BYOL part name", format!("'{name}'")))?;
        Ok(NativeModule { holder: Mutex::new(Holder::Part(Arc::clone(&self.model), part)) })
    }

    #[napi]
    pub fn forward(&self, x: &NativeTensor) -> Result<NativeTensor> {
        Ok(NativeTensor::wrap(lock(&self.model)?.forward(x.get()?).map_err(js)?))
    }

    #[napi]
    pub fn forward_momentum(&self, x: &NativeTensor) -> Result<NativeTensor> {
        Ok(NativeTensor::wrap(lock(&self.model)?.forward_momentum(x.get()?).map_err(js)?))
    }

    #[napi]
    pub fn training_step(&mut self, x0: &NativeTensor, x1: &NativeTensor) -> Result<NativeTensor> {
        check_idle(&self.busy, "trainingStep")?;
        let out = lock(&self.model)?.training_step(x0.get()?, x1.get()?).map_err(js)?;
        self.last_momentum = out.momentum;
        Ok(NativeTensor::wrap(out.loss))
    }

    /// The momentum the last `trainingStep` used (NaN before the first).
    #[napi(getter)]
    pub fn last_momentum(&self) -> f64 {
        self.last_momentum
    }

    #[napi]
    pub fn current_momentum(&self) -> Result<f64> {
        lock(&self.model)?.current_momentum().map_err(js)
    }

    #[napi]
    pub fn configure_optimizers(&self) -> Result<OptimizerConfig> {
        Ok(lock(&self.model)?.configure_optimizers().map_err(js)?.into())
    }

    #[napi]
    pub fn set_optimizer(&self, c: OptimizerConfig) -> Result<OptimizerConfig> {
        check_idle(&self.busy, "setOptimizer")?;
        let config = core_optimizer(&c)?;
        Ok(lock(&self.model)?.set_optimizer(config).map_err(js)?.into())
    }

    #[napi]
    pub fn optimizer(&self) -> Result<Option<OptimizerConfig>> {
        Ok(lock(&self.model)?.optimizer_config().map(Into::into))
    }

    #[napi(getter)]
    pub fn learning_rate(&self) -> Result<f64> {
        Ok(lock(&self.model)?.learning_rate)
    }

    #[napi(setter)]
    pub fn set_learning_rate(&self, lr: f64) -> Result<()> {
        byol::optim::check_learning_rate(lr, "learningRate").map_err(js)?;
        lock(&self.model)?.learning_rate = lr;
        Ok(())
    }

    #[napi(getter)]
    pub fn schedule_length(&self) -> Result<i64> {
        Ok(lock(&self.model)?.schedule_length)
    }

    #[napi(setter)]
    pub fn set_schedule_length(&self, n: i64) -> Result<()> {
        byol::byol::check_schedule(n).map_err(js)?;
        lock(&self.model)?.schedule_length = n;
        Ok(())
    }

    #[napi(getter)]
    pub fn momentum_schedule(&self) -> Result<String> {
        Ok(lock(&self.model)?.momentum_schedule.name().to_string())
    }

    #[napi(getter)]
    pub fn global_step(&self) -> Result<i64> {
        Ok(lock(&self.model)?.global_step)
    }

    #[napi(setter)]
    pub fn set_global_step(&self, n: i64) -> Result<()> {
        if n < 0 {
            return Err(js(byol::Error::range("globalStep", "a step >= 0", n)));
        }
        lock(&self.model)?.global_step = n;
        Ok(())
    }

    #[napi(getter)]
    pub fn current_epoch(&self) -> Result<i64> {
        Ok(lock(&self.model)?.current_epoch)
    }

    #[napi(setter)]
    pub fn set_current_epoch(&self, n: i64) -> Result<()> {
        if n < 0 {
            return Err(js(byol::Error::range("currentEpoch", "an epoch >= 0", n)));
        }
        lock(&self.model)?.current_epoch = n;
        Ok(())
    }

    #[napi(getter)]
    pub fn training(&self) -> Result<bool> {
        Ok(lock(&self.model)?.training)
    }

    #[napi]
    pub fn train(&self, mode: bool) -> Result<()> {
        lock(&self.model)?.training = mode;
        Ok(())
    }

    #[napi(getter)]
    pub fn device(&self) -> Result<String> {
        Ok(byol::device::device_name(lock(&self.model)?.device()))
    }

    #[napi]
    pub fn state_dict(&self) -> Result<NativeStateDict> {
        Ok(NativeStateDict { entries: lock(&self.model)?.state_dict() })
    }

    #[napi]
    pub fn load_state_dict(&self, dict: &NativeStateDict) -> Result<()> {
        lock(&self.model)?.load_state_dict(&dict.entries).map_err(js)
    }

    /// Writes the backbone's weights with torchvision's keys (`conv1.weight`,
    /// `layer1.0.bn1.weight`, ...) as safetensors, atomically.
    #[napi]
    pub fn export_backbone(&self, path: String) -> Result<()> {
        let dict = lock(&self.model)?.backbone.torchvision_state_dict().map_err(js)?;
        let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        byol::checkpoint::save_safetensors(&dict, Some(meta), Path::new(&path)).map_err(js)
    }

    /// Backbone features of every image of `loader` (first view), in eval mode.
    #[napi(ts_return_type = "Promise<Embedding>")]
    pub fn embed(&self, loader: &NativeDataLoader) -> Result<AsyncTask<EmbedTask>> {
        check_idle(&self.busy, "embed")?;
        Ok(AsyncTask::new(EmbedTask { model: Arc::clone(&self.model), loader: loader.snapshot()?, threads: tch::get_num_threads() }))
    }

    #[napi(getter)]
    pub fn fitting(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    #[napi]
    pub fn save(&self, path: String) -> Result<()> {
        lock(&self.model)?.save(Path::new(&path)).map_err(js)
    }
}

/// lightly's `NegativeCosineSimilarity()(x0, x1)`.
#[napi]
pub fn negative_cosine_similarity(x0: &NativeTensor, x1: &NativeTensor) -> Result<NativeTensor> {
    Ok(NativeTensor::wrap(byol::loss::negative_cosine_similarity(x0.get()?, x1.get()?).map_err(js)?))
}

// ---------------------------------------------------------------- transforms

fn images_out(r: byol::Result<Tensor>) -> Result<NativeTensor> {
    Ok(NativeTensor::wrap(r.map_err(js)?))
}

#[napi]
pub fn transform_hflip(x: &NativeTensor, flags: Vec<bool>) -> Result<NativeTensor> {
    images_out(byol::transforms::hflip(x.get()?, &flags))
}

#[napi]
pub fn transform_rgb_to_grayscale(x: &NativeTensor) -> Result<NativeTensor> {
    images_out(byol::transforms::rgb_to_grayscale(x.get()?))
}

#[napi]
pub fn transform_random_grayscale(x: &NativeTensor, flags: Vec<bool>) -> Result<NativeTensor> {
    images_out(byol::transforms::random_grayscale(x.get()?, &flags))
}

/// `op` is `brightness`, `contrast`, `saturation` or `hue`.
#[napi]
pub fn transform_adjust(x: &NativeTensor, op: String, factors: Vec<f64>) -> Result<NativeTensor> {
    let x = x.get()?;
    images_out(match op.as_str() {
        "brightness" => byol::transforms::adjust_brightness(x, &factors),
        "contrast" => byol::transforms::adjust_contrast(x, &factors),
        "saturation" => byol::transforms::adjust_saturation(x, &factors),
        "hue" => byol::transforms::adjust_hue(x, &factors),
        other => Err(byol::Error::invalid("op", "'brightness', 'contrast', 'saturation' or 'hue'", format!("'{other}'"))),
    })
}

#[napi]
pub fn transform_solarize(x: &NativeTensor, threshold: f64, flags: Vec<bool>) -> Result<NativeTensor> {
    images_out(byol::transforms::solarize(x.get()?, threshold, &flags))
}

#[napi]
pub fn transform_gaussian_blur(x: &NativeTensor, kernel_size: i64, sigmas: Vec<f64>) -> Result<NativeTensor> {
    images_out(byol::transforms::gaussian_blur(x.get()?, kernel_size, &sigmas))
}

#[napi]
pub fn transform_normalize(x: &NativeTensor, mean: Vec<f64>, std: Vec<f64>) -> Result<NativeTensor> {
    images_out(byol::transforms::normalize(x.get()?, &mean, &std))
}

/// `boxes` holds `[top, left, height, width]` per image.
#[napi]
pub fn transform_resized_crop(x: &NativeTensor, boxes: Vec<Vec<i64>>, size: i64) -> Result<NativeTensor> {
    let boxes = boxes
        .iter()
        .enumerate()
        .map(|(i, b)| match b.as_slice() {
            [top, left, height, width] => Ok(byol::transforms::CropBox { top: *top, left: *left, height: *height, width: *width }),
            _ => Err(invalid(&format!("boxes[{i}]"), "[top, left, height, width]", format!("{} numbers", b.len()))),
        })
        .collect::<Result<Vec<_>>>()?;
    images_out(byol::transforms::resized_crop(x.get()?, &boxes, size))
}

#[napi(object)]
pub struct ViewOptions {
    pub gaussian_blur: f64,
    pub solarization: f64,
}

/// lightly's `BYOLTransform` settings; every field is filled in by the facade.
#[napi(object)]
pub struct ByolTransformOptions {
    pub input_size: i64,
    pub cj_prob: f64,
    pub cj_strength: f64,
    pub cj_bright: f64,
    pub cj_contrast: f64,
    pub cj_sat: f64,
    pub cj_hue: f64,
    pub min_scale: f64,
    pub max_scale: f64,
    pub ratio: Vec<f64>,
    pub random_gray_scale: f64,
    pub hf_prob: f64,
    pub sigmas: Vec<f64>,
    pub kernel_size: Option<i64>,
    pub solarize_threshold: f64,
    pub normalize: Option<Vec<Vec<f64>>>,
    pub view1: ViewOptions,
    pub view2: ViewOptions,
}

fn pair(v: &[f64], arg: &str) -> Result<(f64, f64)> {
    match v {
        [a, b] => Ok((*a, *b)),
        _ => Err(invalid(arg, "a pair [low, high]", format!("{} numbers", v.len()))),
    }
}

fn transform_config(o: ByolTransformOptions) -> Result<byol::transforms::ByolTransformConfig> {
    let normalize = match o.normalize {
        None => None,
        Some(ms) if ms.len() == 2 => Some((ms[0].clone(), ms[1].clone())),
        Some(_) => return Err(invalid("normalize", "{ mean, std } or null", "another value")),
    };
    Ok(byol::transforms::ByolTransformConfig {
        input_size: o.input_size,
        cj_prob: o.cj_prob,
        cj_strength: o.cj_strength,
        cj_bright: o.cj_bright,
        cj_contrast: o.cj_contrast,
        cj_sat: o.cj_sat,
        cj_hue: o.cj_hue,
        min_scale: o.min_scale,
        max_scale: o.max_scale,
        ratio: pair(&o.ratio, "ratio")?,
        random_gray_scale: o.random_gray_scale,
        hf_prob: o.hf_prob,
        sigmas: pair(&o.sigmas, "sigmas")?,
        kernel_size: o.kernel_size,
        solarize_threshold: o.solarize_threshold,
        normalize,
        view1: byol::transforms::ViewConfig { gaussian_blur: o.view1.gaussian_blur, solarization: o.view1.solarization },
        view2: byol::transforms::ViewConfig { gaussian_blur: o.view2.gaussian_blur, solarization: o.view2.solarization },
    })
}

#[napi]
pub struct NativeByolTransform {
    inner: byol::transforms::ByolTransform,
}

#[napi]
impl NativeByolTransform {
    #[napi(constructor)]
    pub fn new(o: ByolTransformOptions, seed: i64) -> Result<Self> {
        let config = transform_config(o)?;
        Ok(Self { inner: byol::transforms::ByolTransform::new(config, seed as u64).map_err(js)? })
    }

    /// The two views of a batch.
    #[napi]
    pub fn apply(&mut self, images: &NativeTensor) -> Result<Vec<NativeTensor>> {
        let (a, b) = self.inner.apply(images.get()?).map_err(js)?;
        Ok(vec![NativeTensor::wrap(a), NativeTensor::wrap(b)])
    }
}

// ---------------------------------------------------------------- data

#[napi]
pub struct NativeDataset {
    inner: Arc<dyn byol::data::Dataset>,
    classes: Vec<String>,
}

#[napi]
impl NativeDataset {
    #[napi(factory)]
    pub fn from_tensor(images: &NativeTensor, labels: Option<Vec<i64>>, channels_last: bool) -> Result<Self> {
        let d = byol::data::TensorDataset::new(images.get()?, labels, channels_last).map_err(js)?;
        Ok(Self { inner: Arc::new(d), classes: Vec::new() })
    }

    /// The items at `indices` (`torch.utils.data.Subset`).
    #[napi]
    pub fn subset(&self, indices: Vec<u32>) -> Result<NativeDataset> {
        let subset = byol::data::Subset::new(Arc::clone(&self.inner), indices.into_iter().map(|i| i as usize).collect()).map_err(js)?;
        Ok(NativeDataset { inner: Arc::new(subset), classes: self.classes.clone() })
    }

    #[napi(factory)]
    pub fn image_folder(root: String, extensions: Vec<String>) -> Result<Self> {
        let d = byol::data::ImageFolder::new(Path::new(&root), &extensions).map_err(js)?;
        let classes = d.classes.clone();
        Ok(Self { inner: Arc::new(d), classes })
    }

    #[napi(getter)]
    pub fn length(&self) -> u32 {
        self.inner.len() as u32
    }

    #[napi(getter)]
    pub fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }

    /// Item `index` as `[3, H, W]` uint8 and its label; null if it cannot be read.
    #[napi]
    pub fn get(&self, index: u32) -> Result<Option<NativeTensor>> {
        if index as usize >= self.inner.len() {
            return Err(js(byol::Error::range("index", format!("an index below {}", self.inner.len()), index)));
        }
        Ok(self.inner.get(index as usize).map_err(js)?.map(|s| NativeTensor::wrap(s.image)))
    }
}

#[napi(object)]
pub struct LoaderOptions {
    pub batch_size: u32,
    pub shuffle: bool,
    pub drop_last: bool,
    pub num_workers: u32,
    pub prefetch: u32,
    pub seed: i64,
    pub image_size: Option<i64>,
    pub device: Option<String>,
    pub normalize_mean: Option<Vec<f64>>,
    pub normalize_std: Option<Vec<f64>>,
}

/// One batch: two views, labels, and what could not be read.
#[napi]
pub struct NativeBatch {
    x0: Option<Tensor>,
    x1: Option<Tensor>,
    labels: Vec<i64>,
    skipped: Vec<String>,
}

#[napi]
impl NativeBatch {
    #[napi]
    pub fn views(&mut self) -> Vec<NativeTensor> {
        [self.x0.take(), self.x1.take()].into_iter().flatten().map(NativeTensor::wrap).collect()
    }

    #[napi(getter)]
    pub fn labels(&self) -> Vec<i64> {
        self.labels.clone()
    }

    #[napi(getter)]
    pub fn skipped(&self) -> Vec<String> {
        self.skipped.clone()
    }
}

type OpenEpoch = Arc<Mutex<Option<byol::data::Epoch>>>;

#[napi]
pub struct NativeDataLoader {
    loader: Arc<Mutex<byol::data::DataLoader>>,
    epoch: OpenEpoch,
}

pub struct NextBatch {
    epoch: OpenEpoch,
}

impl Task for NextBatch {
    type Output = Option<byol::data::Batch>;
    type JsValue = Option<NativeBatch>;

    fn compute(&mut self) -> Result<Self::Output> {
        let mut guard = self.epoch.lock().map_err(|_| poisoned())?;
        match guard.as_mut() {
            None => Ok(None),
            Some(e) => {
                let next = e.next_batch().map_err(js)?;
                if next.is_none() {
                    *guard = None;
                }
                Ok(next)
            }
        }
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output.map(|b| NativeBatch { x0: Some(b.x0), x1: Some(b.x1), labels: b.labels, skipped: b.skipped }))
    }
}

#[napi]
impl NativeDataLoader {
    #[napi(constructor)]
    pub fn new(dataset: &NativeDataset, o: LoaderOptions, transform: Option<ByolTransformOptions>) -> Result<Self> {
        let transform = transform.map(transform_config).transpose()?;
        let config = byol::data::LoaderConfig {
            batch_size: o.batch_size as usize,
            shuffle: o.shuffle,
            drop_last: o.drop_last,
            num_workers: o.num_workers as usize,
            prefetch: o.prefetch as usize,
            seed: o.seed as u64,
            image_size: o.image_size,
            transform,
            normalize: o.normalize_mean.zip(o.normalize_std),
            device: device(o.device)?,
        };
        let loader = byol::data::DataLoader::new(Arc::clone(&dataset.inner), config).map_err(js)?;
        Ok(Self { loader: Arc::new(Mutex::new(loader)), epoch: Arc::new(Mutex::new(None)) })
    }

    #[napi(getter)]
    pub fn num_batches(&self) -> Result<u32> {
        Ok(self.loader.lock().map_err(|_| poisoned())?.num_batches() as u32)
    }

    /// Starts a new epoch (ending any open one): workers begin to prefetch.
    #[napi]
    pub fn start_epoch(&self) -> Result<()> {
        let epoch = self.loader.lock().map_err(|_| poisoned())?.epoch();
        *self.epoch.lock().map_err(|_| poisoned())? = Some(epoch);
        Ok(())
    }

    /// The next batch of the open epoch, off the JS thread; null at its end.
    #[napi(ts_return_type = "Promise<NativeBatch | null>")]
    pub fn next(&self) -> AsyncTask<NextBatch> {
        AsyncTask::new(NextBatch { epoch: Arc::clone(&self.epoch) })
    }

    fn snapshot(&self) -> Result<byol::data::DataLoader> {
        Ok(self.loader.lock().map_err(|_| poisoned())?.clone())
    }

    /// Ends the open epoch and stops its workers.
    #[napi]
    pub fn close(&self) -> Result<()> {
        *self.epoch.lock().map_err(|_| poisoned())? = None;
        Ok(())
    }
}

/// Writes a `[C, H, W]` image (uint8, or float in [0, 1]; C = 1 or 3) as a PNG, atomically.
#[napi]
pub fn save_image(image: &NativeTensor, path: String) -> Result<()> {
    byol::data::save_png(image.get()?, Path::new(&path)).map_err(js)
}

// ---------------------------------------------------------------- evaluation

#[napi(object)]
pub struct Embedding {
    /// Row-major `[rows, dim]` features.
    pub data: Float32Array,
    pub rows: u32,
    pub dim: u32,
    pub labels: Vec<i64>,
}

pub struct EmbedTask {
    model: Arc<Mutex<Byol>>,
    loader: byol::data::DataLoader,
    threads: i32,
}

fn to_embedding(e: byol::eval::Embedding) -> Result<Embedding> {
    let size = e.features.size();
    let v = Vec::<f32>::try_from(&e.features.f_contiguous().and_then(|t| t.f_flatten(0, -1)).map_err(|e| js(e.into()))?).map_err(|e| js(e.into()))?;
    Ok(Embedding { data: Float32Array::new(v), rows: size[0] as u32, dim: size[1] as u32, labels: e.labels })
}

impl Task for EmbedTask {
    type Output = byol::eval::Embedding;
    type JsValue = Embedding;

    fn compute(&mut self) -> Result<Self::Output> {
        byol::device::set_thread_count(self.threads);
        let device = lock(&self.model)?.device();
        let model = &self.model;
        byol::eval::embed(&self.loader, device, |x| {
            let m = model.lock().map_err(|_| byol::Error::State("the model was left inconsistent by an earlier panic".into()))?;
            m.backbone.forward(x, false)
        })
        .map_err(js)
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        to_embedding(output)
    }
}

/// Features handed in from JS, checked and copied for a worker thread.
pub struct Features {
    data: Vec<f32>,
    rows: i64,
    dim: i64,
    labels: Vec<i64>,
}

fn features(data: &Float32Array, dim: u32, labels: Vec<i64>, arg: &str) -> Result<Features> {
    let dim = dim as i64;
    if dim < 1 || data.len() as i64 % dim != 0 {
        return Err(invalid(&format!("{arg}Features"), &format!("a Float32Array whose length is a multiple of dim ({dim})"), data.len()));
    }
    Ok(Features { data: data.to_vec(), rows: data.len() as i64 / dim, dim, labels })
}

impl Features {
    fn tensor(&self) -> byol::Result<Tensor> {
        Ok(Tensor::from_slice(&self.data).f_view([self.rows, self.dim])?)
    }
}

pub struct KnnTask {
    train: Features,
    test: Features,
    k: i64,
    temperature: f64,
}

impl Task for KnnTask {
    type Output = f64;
    type JsValue = f64;
    fn compute(&mut self) -> Result<f64> {
        (|| byol::eval::knn_accuracy(&self.train.tensor()?, &self.train.labels, &self.test.tensor()?, &self.test.labels, self.k, self.temperature))()
            .map_err(js)
    }
    fn resolve(&mut self, _env: Env, output: f64) -> Result<f64> {
        Ok(output)
    }
}

#[napi(ts_return_type = "Promise<number>")]
#[allow(clippy::too_many_arguments)]
pub fn knn_accuracy(
    train: Float32Array,
    train_labels: Vec<i64>,
    test: Float32Array,
    test_labels: Vec<i64>,
    dim: u32,
    k: i64,
    temperature: f64,
) -> Result<AsyncTask<KnnTask>> {
    Ok(AsyncTask::new(KnnTask {
        train: features(&train, dim, train_labels, "train")?,
        test: features(&test, dim, test_labels, "test")?,
        k,
        temperature,
    }))
}

#[napi(object)]
pub struct ProbeOptions {
    pub epochs: i64,
    pub batch_size: i64,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: i64,
}

#[napi(object)]
pub struct ProbeResult {
    pub train_accuracy: f64,
    pub test_accuracy: f64,
}

pub struct ProbeTask {
    train: Features,
    test: Features,
    config: byol::eval::ProbeConfig,
}

impl Task for ProbeTask {
    type Output = byol::eval::ProbeResult;
    type JsValue = ProbeResult;
    fn compute(&mut self) -> Result<Self::Output> {
        (|| byol::eval::linear_probe(&self.train.tensor()?, &self.train.labels, &self.test.tensor()?, &self.test.labels, &self.config))().map_err(js)
    }
    fn resolve(&mut self, _env: Env, o: Self::Output) -> Result<ProbeResult> {
        Ok(ProbeResult { train_accuracy: o.train_accuracy, test_accuracy: o.test_accuracy })
    }
}

#[napi(ts_return_type = "Promise<ProbeResult>")]
pub fn linear_probe(
    train: Float32Array,
    train_labels: Vec<i64>,
    test: Float32Array,
    test_labels: Vec<i64>,
    dim: u32,
    o: ProbeOptions,
) -> Result<AsyncTask<ProbeTask>> {
    if !(o.lr.is_finite() && o.lr > 0.0) {
        return Err(js(byol::Error::range("lr", "a number > 0", o.lr)));
    }
    Ok(AsyncTask::new(ProbeTask {
        train: features(&train, dim, train_labels, "train")?,
        test: features(&test, dim, test_labels, "test")?,
        config: byol::eval::ProbeConfig { epochs: o.epochs, batch_size: o.batch_size, lr: o.lr, weight_decay: o.weight_decay, seed: o.seed as u64 },
    }))
}

// ---------------------------------------------------------------- trainer

/// Trainer options as the facade resolved them (defaults filled in there).
#[napi(object)]
#[derive(Clone)]
pub struct TrainerOptions {
    pub max_epochs: Option<i64>,
    pub max_steps: Option<i64>,
    pub device: String,
    pub precision: String,
    pub log_every_n_steps: i64,
    pub checkpoint_dir: Option<String>,
    pub checkpoint_every_n_steps: Option<i64>,
    pub keep_checkpoints: i64,
    pub seed: i64,
    /// 'minerva' or 'paper'.
    pub recipe: String,
    pub optimizer: Option<String>,
    pub learning_rate: Option<f64>,
    pub momentum: Option<f64>,
    pub weight_decay: Option<f64>,
    pub nesterov: Option<bool>,
    pub trust_coefficient: Option<f64>,
    pub betas: Option<Vec<f64>>,
    pub eps: Option<f64>,
    pub lr_schedule: Option<String>,
    pub warmup_steps: Option<i64>,
    pub warmup_epochs: Option<f64>,
    pub loss: Option<String>,
    pub channels_last: bool,
    pub knn_every_n_epochs: Option<i64>,
    pub base_momentum: Option<f64>,
    pub fast_dev_run: Option<i64>,
}

#[napi(object)]
pub struct ProgressEvent {
    pub kind: String,
    pub step: i64,
    pub total_steps: i64,
    pub epoch: i64,
    pub batch: i64,
    pub batches_per_epoch: i64,
    pub loss: f64,
    pub learning_rate: f64,
    pub momentum: f64,
    pub images_per_second: f64,
    pub eta_seconds: f64,
    pub projection_std: f64,
    pub loss_scale: f64,
    pub epoch_loss: f64,
    pub knn_accuracy: f64,
    pub path: String,
    pub message: String,
}

impl From<byol::train::Progress> for ProgressEvent {
    fn from(p: byol::train::Progress) -> Self {
        Self {
            kind: p.kind.into(),
            step: p.step,
            total_steps: p.total_steps,
            epoch: p.epoch,
            batch: p.batch,
            batches_per_epoch: p.batches_per_epoch,
            loss: p.loss,
            learning_rate: p.learning_rate,
            momentum: p.momentum,
            images_per_second: p.images_per_second,
            eta_seconds: p.eta_seconds,
            projection_std: p.projection_std,
            loss_scale: p.loss_scale,
            epoch_loss: p.epoch_loss,
            knn_accuracy: p.knn_accuracy,
            path: p.path,
            message: p.message,
        }
    }
}

#[napi(object)]
pub struct FitResult {
    /// 'finished' or 'aborted'.
    pub stop: String,
    pub global_step: i64,
    pub current_epoch: i64,
    pub last_checkpoint: Option<String>,
    pub warnings: Vec<String>,
    /// Progress events sent; the facade waits for all before resolving.
    pub events: u32,
}

/// Builds the core configuration: the recipe first, then every option given.
fn trainer_config(o: &TrainerOptions, batch_size: usize, model_lr: f64, has_optimizer: bool) -> Result<byol::train::TrainerConfig> {
    use byol::train::{paper_recipe, LrSchedule, TrainerConfig};
    let mut c = TrainerConfig {
        max_epochs: o.max_epochs,
        max_steps: o.max_steps,
        device: byol::device::parse_device(&o.device).map_err(js)?,
        precision: byol::amp::Precision::parse(&o.precision).map_err(js)?,
        log_every_n_steps: o.log_every_n_steps,
        checkpoint_dir: o.checkpoint_dir.as_ref().map(std::path::PathBuf::from),
        checkpoint_every_n_steps: o.checkpoint_every_n_steps,
        keep_checkpoints: o.keep_checkpoints.max(0) as usize,
        seed: o.seed as u64,
        channels_last: o.channels_last,
        knn_every_n_epochs: o.knn_every_n_epochs,
        base_momentum: o.base_momentum,
        fast_dev_run: o.fast_dev_run,
        ..TrainerConfig::default()
    };
    match o.recipe.as_str() {
        "minerva" => {}
        "paper" => c = paper_recipe(c, batch_size),
        other => return Err(invalid("recipe", "'minerva' or 'paper'", format!("'{other}'"))),
    }
    let overrides = byol::train::OptimizerOverrides {
        kind: o.optimizer.as_deref().map(OptimizerKind::parse).transpose().map_err(js)?,
        lr: o.learning_rate,
        momentum: o.momentum,
        weight_decay: o.weight_decay,
        nesterov: o.nesterov,
        trust_coefficient: o.trust_coefficient,
        betas: o.betas.as_deref().map(betas).transpose()?,
        eps: o.eps,
    };
    c.override_optimizer(&overrides, model_lr, has_optimizer);
    if let Some(s) = &o.lr_schedule {
        c.lr_schedule = LrSchedule::parse(s).map_err(js)?;
    }
    if let Some(w) = o.warmup_steps {
        c.warmup_steps = w;
    }
    if let Some(w) = o.warmup_epochs {
        c.warmup_epochs = w;
    }
    if let Some(l) = &o.loss {
        c.loss = byol::loss::LossForm::parse(l).map_err(js)?;
    }
    c.validate().map_err(js)?;
    Ok(c)
}

type ProgressFn = ThreadsafeFunction<ProgressEvent, (), ProgressEvent, Status, false>;

pub struct FitTask {
    model: Arc<Mutex<Byol>>,
    busy: Arc<AtomicBool>,
    loader: byol::data::DataLoader,
    knn: Option<(byol::data::DataLoader, byol::data::DataLoader, i64, f64)>,
    config: byol::train::TrainerConfig,
    resume_from: Option<std::path::PathBuf>,
    abort: Arc<AtomicBool>,
    progress: Option<ProgressFn>,
    /// The caller's intra-op thread count: OpenMP keeps it per thread, and the
    /// worker thread would otherwise use every core.
    threads: i32,
}

/// Clears the model's busy flag however the fit ends.
struct Idle<'a>(&'a AtomicBool);
impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Task for FitTask {
    type Output = (byol::train::FitResult, u32);
    type JsValue = FitResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let _idle = Idle(&self.busy);
        byol::device::set_thread_count(self.threads);
        let knn = self.knn.as_ref().map(|(train, test, k, t)| byol::train::KnnEval { train, test, k: *k, temperature: *t });
        let options = byol::train::FitOptions { resume_from: self.resume_from.clone(), knn, abort: Some(&self.abort) };
        let progress = self.progress.as_ref();
        let mut sent = 0u32;
        let r = byol::train::fit(&self.model, &self.loader, &self.config, options, &mut |p| {
            if let Some(f) = progress {
                if f.call(p.into(), ThreadsafeFunctionCallMode::Blocking) == Status::Ok {
                    sent += 1;
                }
            }
        })
        .map_err(js)?;
        Ok((r, sent))
    }

    fn resolve(&mut self, _env: Env, (r, events): Self::Output) -> Result<FitResult> {
        Ok(FitResult {
            stop: match r.stop {
                byol::train::Stop::Finished => "finished".into(),
                byol::train::Stop::Aborted => "aborted".into(),
            },
            global_step: r.global_step,
            current_epoch: r.current_epoch,
            last_checkpoint: r.last_checkpoint.map(|p| p.display().to_string()),
            warnings: r.warnings,
            events,
        })
    }
}

#[napi]
pub struct NativeTrainer {
    options: TrainerOptions,
    abort: Arc<AtomicBool>,
}

#[napi]
impl NativeTrainer {
    #[napi(constructor)]
    pub fn new(options: TrainerOptions) -> Result<Self> {
        // Checked now with a nominal batch size so that bad options fail at
        // construction; the recipe is resolved again with the loader's.
        trainer_config(&options, 256, byol::byol::DEFAULT_LEARNING_RATE, false)?;
        Ok(Self { options, abort: Arc::new(AtomicBool::new(false)) })
    }

    /// Trains `model` on `loader` on a worker thread; `progress` receives events.
    #[napi(ts_return_type = "Promise<FitResult>")]
    pub fn fit(
        &self,
        model: &NativeByol,
        loader: &NativeDataLoader,
        resume_from: Option<String>,
        knn_train: Option<&NativeDataLoader>,
        knn_test: Option<&NativeDataLoader>,
        knn_k: Option<i64>,
        knn_temperature: Option<f64>,
        #[napi(ts_arg_type = "((event: ProgressEvent) => void) | undefined | null")] progress: Option<ProgressFn>,
    ) -> Result<AsyncTask<FitTask>> {
        let loader = loader.snapshot()?;
        let (model_lr, has_optimizer) = {
            let m = lock(&model.model)?;
            (m.learning_rate, m.optimizer_config().is_some())
        };
        let config = trainer_config(&self.options, loader.config.batch_size, model_lr, has_optimizer)?;
        let knn = match (knn_train, knn_test) {
            (Some(a), Some(b)) => Some((a.snapshot()?, b.snapshot()?, knn_k.unwrap_or(200), knn_temperature.unwrap_or(0.1))),
            _ => None,
        };
        if model.busy.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Err(js(byol::Error::State("fit: this model is already being trained by another fit call".into())));
        }
        self.abort.store(false, Ordering::SeqCst);
        Ok(AsyncTask::new(FitTask {
            model: Arc::clone(&model.model),
            busy: Arc::clone(&model.busy),
            loader,
            knn,
            config,
            resume_from: resume_from.map(std::path::PathBuf::from),
            abort: Arc::clone(&self.abort),
            progress,
            threads: tch::get_num_threads(),
        }))
    }

    /// Stops a running fit at the next step boundary (after a checkpoint).
    #[napi]
    pub fn abort(&self) {
        self.abort.store(true, Ordering::SeqCst);
    }
}

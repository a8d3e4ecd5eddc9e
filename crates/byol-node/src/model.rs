//! `NativeByol`: the BYOL model, shared with the modules that are its parts
//! and with `Trainer.fit` while it trains.
use crate::data::NativeDataLoader;
use crate::enums::{MomentumSchedule, PartName};
use crate::error::{poisoned, OrThrow};
use crate::eval::Embedding;
use crate::memory::External;
use crate::module::{Holder, NativeModule};
use crate::options::model::ByolOptions;
use crate::options::optimizer::OptimizerConfig;
use crate::state_dict::NativeStateDict;
use crate::tensor::{device, NativeTensor};
use crate::worker;
use byol::model::{Byol, ByolConfig, Part};
use byol::tch;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) type SharedModel = Arc<Mutex<Byol>>;

pub(crate) fn lock(model: &SharedModel) -> byol::Result<MutexGuard<'_, Byol>> {
    model.lock().map_err(|_| poisoned())
}

#[napi(custom_finalize)]
pub struct NativeByol {
    pub(crate) model: SharedModel,
    last_momentum: f64,
    /// Its networks' and optimiser's bytes, measured again when they may
    /// have grown (the optimiser's state appears with the first step).
    pub(crate) external: External,
    measured_after_step: bool,
}

impl ObjectFinalize for NativeByol {
    fn finalize(self, env: Env) -> Result<()> {
        self.external.release(&env);
        Ok(())
    }
}

impl NativeByol {
    fn with<T>(&self, env: &Env, f: impl FnOnce(&mut Byol) -> byol::Result<T>) -> Result<T> {
        lock(&self.model).and_then(|mut m| f(&mut m)).or_throw(env)
    }

    fn of(env: &Env, model: Byol) -> Self {
        let external = External::new(env, model.nbytes());
        Self { model: Arc::new(Mutex::new(model)), last_momentum: f64::NAN, external, measured_after_step: false }
    }
}

#[napi]
impl NativeByol {
    #[napi(constructor)]
    pub fn new(
        env: &Env,
        options: ByolOptions,
        backbone: Option<&NativeModule>,
        projection_head: Option<&NativeModule>,
        prediction_head: Option<&NativeModule>,
    ) -> Result<Self> {
        let mut config = ByolConfig::try_from(options).or_throw(env)?;
        if let Some(m) = backbone {
            config.backbone = byol::model::BackboneSpec::Network(m.share("backbone").or_throw(env)?);
        }
        config.projection_head = projection_head.map(|m| m.share("projectionHead")).transpose().or_throw(env)?;
        config.prediction_head = prediction_head.map(|m| m.share("predictionHead")).transpose().or_throw(env)?;
        let native = Self::of(env, Byol::new(config).or_throw(env)?);
        // Modules passed in are the model's from now on, as in PyTorch.
        for (m, part) in [(backbone, Part::Backbone), (projection_head, Part::ProjectionHead), (prediction_head, Part::PredictionHead)] {
            if let Some(m) = m {
                *m.holder.lock().map_err(|_| poisoned()).or_throw(env)? = Holder::Part(Arc::clone(&native.model), part);
                m.external.release(env);
            }
        }
        Ok(native)
    }

    #[napi(factory)]
    pub fn load(env: &Env, path: String, device_name: Option<String>) -> Result<Self> {
        let d = device(device_name.as_deref()).or_throw(env)?;
        Ok(Self::of(env, Byol::load(Path::new(&path), d).or_throw(env)?))
    }

    /// One of the model's five networks, by its PyTorch attribute name.
    #[napi]
    pub fn part(&self, name: PartName) -> NativeModule {
        NativeModule::part(Arc::clone(&self.model), name.into())
    }

    #[napi]
    pub fn forward(&self, env: &Env, x: &NativeTensor) -> Result<NativeTensor> {
        self.with(env, |m| Ok(NativeTensor::wrap(env, m.forward(x.get()?)?)))
    }

    #[napi]
    pub fn forward_momentum(&self, env: &Env, x: &NativeTensor) -> Result<NativeTensor> {
        self.with(env, |m| Ok(NativeTensor::wrap(env, m.forward_momentum(x.get()?)?)))
    }

    #[napi]
    pub fn training_step(&mut self, env: &Env, x0: &NativeTensor, x1: &NativeTensor) -> Result<NativeTensor> {
        let out = self.with(env, |m| m.training_step(x0.get()?, x1.get()?))?;
        self.last_momentum = out.momentum;
        if !self.measured_after_step {
            self.measured_after_step = true;
            self.external.set(env, self.with(env, |m| Ok(m.nbytes()))?);
        }
        Ok(NativeTensor::wrap(env, out.loss))
    }

    /// The momentum the last `trainingStep` used (NaN before the first).
    #[napi(getter)]
    pub fn last_momentum(&self) -> f64 {
        self.last_momentum
    }

    #[napi]
    pub fn current_momentum(&self, env: &Env) -> Result<f64> {
        self.with(env, |m| m.current_momentum())
    }

    #[napi]
    pub fn configure_optimizers(&self, env: &Env) -> Result<OptimizerConfig> {
        self.with(env, |m| m.configure_optimizers()).map(Into::into)
    }

    #[napi]
    pub fn optimizer(&self, env: &Env) -> Result<Option<OptimizerConfig>> {
        self.with(env, |m| Ok(m.optimizer_config().map(Into::into)))
    }

    #[napi(getter)]
    pub fn learning_rate(&self, env: &Env) -> Result<f64> {
        self.with(env, |m| Ok(m.learning_rate()))
    }

    #[napi(setter)]
    pub fn set_learning_rate(&self, env: &Env, lr: f64) -> Result<()> {
        self.with(env, |m| m.set_learning_rate(lr))
    }

    #[napi(getter)]
    pub fn schedule_length(&self, env: &Env) -> Result<i64> {
        self.with(env, |m| Ok(m.schedule_length()))
    }

    #[napi(setter)]
    pub fn set_schedule_length(&self, env: &Env, n: i64) -> Result<()> {
        self.with(env, |m| m.set_schedule_length(n))
    }

    #[napi(getter)]
    pub fn momentum_schedule(&self, env: &Env) -> Result<MomentumSchedule> {
        self.with(env, |m| Ok(m.momentum_schedule.into()))
    }

    #[napi(getter)]
    pub fn global_step(&self, env: &Env) -> Result<i64> {
        self.with(env, |m| Ok(m.global_step()))
    }

    #[napi(setter)]
    pub fn set_global_step(&self, env: &Env, n: i64) -> Result<()> {
        self.with(env, |m| m.set_global_step(n))
    }

    #[napi(getter)]
    pub fn current_epoch(&self, env: &Env) -> Result<i64> {
        self.with(env, |m| Ok(m.current_epoch()))
    }

    #[napi(setter)]
    pub fn set_current_epoch(&self, env: &Env, n: i64) -> Result<()> {
        self.with(env, |m| m.set_current_epoch(n))
    }

    #[napi(getter)]
    pub fn training(&self, env: &Env) -> Result<bool> {
        self.with(env, |m| Ok(m.training))
    }

    #[napi]
    pub fn train(&self, env: &Env, mode: bool) -> Result<()> {
        self.with(env, |m| {
            m.training = mode;
            Ok(())
        })
    }

    #[napi(getter)]
    pub fn device(&self, env: &Env) -> Result<String> {
        self.with(env, |m| Ok(byol::tensor::device_name(m.device())))
    }

    /// Whether `Trainer.fit` is training the model.
    #[napi(getter)]
    pub fn fitting(&self, env: &Env) -> Result<bool> {
        self.with(env, |m| Ok(m.fitting()))
    }

    #[napi]
    pub fn state_dict(&self, env: &Env) -> Result<NativeStateDict> {
        self.with(env, |m| Ok(NativeStateDict { entries: m.state_dict() }))
    }

    #[napi]
    pub fn load_state_dict(&self, env: &Env, dict: &NativeStateDict) -> Result<()> {
        self.with(env, |m| {
            m.check_idle("loadStateDict")?;
            m.load_state_dict(&dict.entries)
        })
    }

    /// Writes the backbone with torchvision's keys as safetensors, atomically.
    #[napi]
    pub fn export_backbone(&self, env: &Env, path: String, provenance: Option<String>) -> Result<()> {
        self.with(env, |m| m.export_backbone_with(Path::new(&path), provenance.as_deref()))
    }

    /// Traces the backbone (and with `projection_head`, the projection head after it) on a batch of shape `example` and writes it as TorchScript, atomically.
    #[napi]
    pub fn export_torch_script(&self, env: &Env, path: String, example: Vec<i64>, projection_head: Option<bool>) -> Result<()> {
        let d = byol::model::TorchScriptOptions::default();
        let options = byol::model::TorchScriptOptions { projection_head: projection_head.unwrap_or(d.projection_head) };
        self.with(env, |m| m.export_torchscript(Path::new(&path), &example, options))
    }

    #[napi]
    pub fn save(&self, env: &Env, path: String, provenance: Option<String>) -> Result<()> {
        self.with(env, |m| m.save_with(Path::new(&path), provenance.as_deref()))
    }

    /// Backbone features of every image of `loader` (first view), in eval
    /// mode, on a thread of the addon's own.
    #[napi(ts_return_type = "Promise<Embedding>")]
    pub fn embed<'env>(&self, env: &'env Env, loader: &NativeDataLoader) -> Result<Object<'env>> {
        let model = Arc::clone(&self.model);
        let loader = loader.snapshot().or_throw(env)?;
        worker::spawn(
            env,
            "embed",
            tch::get_num_threads(),
            move || byol::eval::embed_backbone(&model, &loader),
            |env, e| Embedding::try_from(e).or_throw(env),
        )
    }
}

//! The trainer: Lightning's `Trainer.fit` for the BYOL model, in Rust, with
//! learning-rate schedules, recipes, mixed precision, checkpoints that resume
//! exactly, progress reports and kNN evaluation during training.
use crate::amp::{GradScaler, Precision};
use crate::byol::{Byol, MomentumSchedule, StepOptions};
use crate::checkpoint::{check_writable, read_checkpoint_with_fallback, write_checkpoint};
use crate::data::DataLoader;
use crate::error::{Error, Result};
use crate::eval::{embed, knn_accuracy};
use crate::loss::LossForm;
use crate::optim::{OptimizerConfig, OptimizerKind};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tch::Tensor;

/// How the learning rate moves over the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrSchedule {
    /// The optimiser's rate throughout (minerva).
    Constant,
    /// Linear warm-up, then cosine decay to 0 at the last step (BYOL paper).
    WarmupCosine,
}

impl LrSchedule {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "constant" => Ok(Self::Constant),
            "cosine" | "warmup-cosine" => Ok(Self::WarmupCosine),
            other => Err(Error::invalid("lrSchedule", "'constant' or 'cosine'", format!("'{other}'"))),
        }
    }
}

/// The learning rate of step `step` (0-based) of `total`.
pub fn learning_rate_at(schedule: LrSchedule, base: f64, step: i64, warmup: i64, total: i64) -> f64 {
    match schedule {
        LrSchedule::Constant => base,
        LrSchedule::WarmupCosine => {
            if step < warmup {
                base * (step + 1) as f64 / warmup as f64
            } else {
                let span = (total - warmup).max(1) as f64;
                let progress = ((step - warmup) as f64 / span).min(1.0);
                base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

/// The choices a run is made with. `Recipe::Paper` fills them as the BYOL paper.
#[derive(Clone, Debug)]
pub struct TrainerConfig {
    pub max_epochs: Option<i64>,
    pub max_steps: Option<i64>,
    pub device: tch::Device,
    pub precision: Precision,
    pub log_every_n_steps: i64,
    pub checkpoint_dir: Option<PathBuf>,
    pub checkpoint_every_n_steps: Option<i64>,
    /// Checkpoint folders kept (the newest).
    pub keep_checkpoints: usize,
    pub seed: u64,
    /// `None`: the model's optimiser if one was set, else minerva's plain SGD.
    pub optimizer: Option<OptimizerConfig>,
    pub lr_schedule: LrSchedule,
    pub warmup_steps: i64,
    /// Warm-up in epochs (converted with the loader's length); added to `warmup_steps`.
    pub warmup_epochs: f64,
    pub loss: LossForm,
    /// Set the model's momentum schedule to span the whole run (per step).
    pub momentum_over_run: bool,
    /// τ at the start of the momentum schedule (the model's own if `None`).
    pub base_momentum: Option<f64>,
    pub channels_last: bool,
    /// kNN evaluation every this many epochs (needs `FitOptions::knn`).
    pub knn_every_n_epochs: Option<i64>,
    /// Lightning's `fast_dev_run`: at most this many steps, to smoke-test a
    /// script. `None` takes `BYOL_TORCH_FAST_DEV_RUN` from the environment.
    pub fast_dev_run: Option<i64>,
}

/// The environment variable that caps every `fit` at a few steps, so that
/// scripts and documentation can be run end to end in seconds.
pub const FAST_DEV_RUN_ENV: &str = "BYOL_TORCH_FAST_DEV_RUN";

fn fast_dev_run_from_env() -> Result<Option<i64>> {
    match std::env::var(FAST_DEV_RUN_ENV) {
        Err(_) => Ok(None),
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(Error::range(FAST_DEV_RUN_ENV, "a number of steps >= 1", format!("'{v}'"))),
        },
    }
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            max_epochs: None,
            max_steps: None,
            device: tch::Device::Cpu,
            precision: Precision::Full,
            log_every_n_steps: 50,
            checkpoint_dir: None,
            checkpoint_every_n_steps: None,
            keep_checkpoints: 3,
            seed: 0,
            optimizer: None,
            lr_schedule: LrSchedule::Constant,
            warmup_steps: 0,
            warmup_epochs: 0.0,
            loss: LossForm::Minerva,
            momentum_over_run: false,
            base_momentum: None,
            channels_last: false,
            knn_every_n_epochs: None,
            fast_dev_run: None,
        }
    }
}

/// The BYOL paper's settings (Grill et al. 2020, section 3.2 and appendix C):
/// LARS at 0.2 x batch/256, weight decay 1.5e-6 (biases and normalisation
/// excluded), 10 warm-up epochs then cosine decay, tau 0.996 -> 1 per step over
/// the run, loss 2 - 2cos summed over both views. Short runs cap the warm-up at
/// a tenth of the run so the rate gets to its peak.
pub fn paper_recipe(mut c: TrainerConfig, batch_size: usize) -> TrainerConfig {
    c.optimizer = Some(OptimizerConfig::lars(0.2 * batch_size as f64 / 256.0, 1.5e-6));
    c.lr_schedule = LrSchedule::WarmupCosine;
    c.warmup_epochs = 10.0;
    c.loss = LossForm::Paper;
    c.momentum_over_run = true;
    c
}

/// Optimiser settings given next to a recipe; each one given wins.
#[derive(Clone, Debug, Default)]
pub struct OptimizerOverrides {
    pub kind: Option<OptimizerKind>,
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub weight_decay: Option<f64>,
    pub nesterov: Option<bool>,
    pub trust_coefficient: Option<f64>,
    pub betas: Option<(f64, f64)>,
    pub eps: Option<f64>,
}

impl OptimizerOverrides {
    fn any(&self) -> bool {
        self.kind.is_some()
            || self.lr.is_some()
            || self.momentum.is_some()
            || self.weight_decay.is_some()
            || self.nesterov.is_some()
            || self.trust_coefficient.is_some()
            || self.betas.is_some()
            || self.eps.is_some()
    }
}

impl TrainerConfig {
    /// Puts `overrides` over the recipe's optimiser. With neither, and no
    /// optimiser on the model (`model_has_optimizer`), minerva's plain SGD at
    /// the model's rate; an optimiser the model has is otherwise kept.
    pub fn override_optimizer(&mut self, o: &OptimizerOverrides, model_lr: f64, model_has_optimizer: bool) {
        if !o.any() && (self.optimizer.is_some() || model_has_optimizer) {
            return;
        }
        let kind = o.kind.or(self.optimizer.map(|x| x.kind)).unwrap_or(OptimizerKind::Sgd);
        let recipe = self.optimizer.filter(|x| x.kind == kind);
        let lr = o.lr.or(recipe.map(|x| x.lr)).unwrap_or(model_lr);
        let base = recipe.unwrap_or(match kind {
            OptimizerKind::Sgd => OptimizerConfig::plain(lr),
            OptimizerKind::Lars => OptimizerConfig::lars(lr, 0.0),
            OptimizerKind::AdamW => OptimizerConfig::adamw(lr, 0.01),
        });
        self.optimizer = Some(OptimizerConfig {
            lr,
            momentum: o.momentum.unwrap_or(base.momentum),
            weight_decay: o.weight_decay.unwrap_or(base.weight_decay),
            nesterov: o.nesterov.unwrap_or(base.nesterov),
            trust_coefficient: o.trust_coefficient.unwrap_or(base.trust_coefficient),
            betas: o.betas.unwrap_or(base.betas),
            eps: o.eps.unwrap_or(base.eps),
            ..base
        });
    }

    pub fn validate(&self) -> Result<()> {
        if self.max_epochs.is_none() && self.max_steps.is_none() {
            return Err(Error::invalid("maxEpochs", "maxEpochs or maxSteps (a number >= 1)", "neither"));
        }
        if let Some(e) = self.max_epochs {
            if e < 1 {
                return Err(Error::range("maxEpochs", "an integer >= 1", e));
            }
        }
        if let Some(s) = self.max_steps {
            if s < 1 {
                return Err(Error::range("maxSteps", "an integer >= 1", s));
            }
        }
        if self.log_every_n_steps < 1 {
            return Err(Error::range("logEveryNSteps", "an integer >= 1", self.log_every_n_steps));
        }
        if let Some(n) = self.checkpoint_every_n_steps {
            if n < 1 {
                return Err(Error::range("checkpointEveryNSteps", "an integer >= 1", n));
            }
            if self.checkpoint_dir.is_none() {
                return Err(Error::invalid("checkpointDir", "a folder when checkpointEveryNSteps is set", "none"));
            }
        }
        if self.keep_checkpoints < 1 {
            return Err(Error::range("keepCheckpoints", "an integer >= 1", self.keep_checkpoints));
        }
        if self.warmup_steps < 0 {
            return Err(Error::range("warmupSteps", "an integer >= 0", self.warmup_steps));
        }
        if !(self.warmup_epochs.is_finite() && self.warmup_epochs >= 0.0) {
            return Err(Error::range("warmupEpochs", "a number >= 0", self.warmup_epochs));
        }
        if let Some(n) = self.knn_every_n_epochs {
            if n < 1 {
                return Err(Error::range("knnEveryNEpochs", "an integer >= 1", n));
            }
        }
        if let Some(n) = self.fast_dev_run {
            if n < 1 {
                return Err(Error::range("fastDevRun", "a number of steps >= 1", n));
            }
        }
        if let Some(o) = &self.optimizer {
            o.validate()?;
        }
        if let Some(m) = self.base_momentum {
            if !(0.0..=1.0).contains(&m) {
                return Err(Error::range("baseMomentum", "a number in [0, 1]", m));
            }
        }
        Ok(())
    }
}

/// What the trainer reports, flattened for the binding. `kind` says which
/// fields are meaningful: "step", "epoch", "checkpoint", "knn" or "warning".
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub kind: &'static str,
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

/// kNN evaluation during training: embeddings of `train` and `test` by the
/// backbone, compared with `knn_accuracy`.
pub struct KnnEval<'a> {
    pub train: &'a DataLoader,
    pub test: &'a DataLoader,
    pub k: i64,
    pub temperature: f64,
}

pub struct FitOptions<'a> {
    pub resume_from: Option<PathBuf>,
    pub knn: Option<KnnEval<'a>>,
    pub abort: Option<&'a AtomicBool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Finished,
    Aborted,
}

pub struct FitResult {
    pub stop: Stop,
    pub global_step: i64,
    pub current_epoch: i64,
    pub last_checkpoint: Option<PathBuf>,
    pub warnings: Vec<String>,
}

/// Where the run is, beyond what the model holds.
struct Position {
    batch_in_epoch: usize,
    epoch_loss_sum: f64,
    epoch_loss_count: i64,
    base_lr: f64,
    scaler: Option<GradScaler>,
}

fn lock(model: &Mutex<Byol>) -> Result<std::sync::MutexGuard<'_, Byol>> {
    model.lock().map_err(|_| Error::State("the model was left inconsistent by an earlier panic".into()))
}

fn save(model: &Byol, dir: &Path, pos: &Position, config: &TrainerConfig, loader: &DataLoader) -> Result<PathBuf> {
    let optimizer = model.optimizer().ok_or_else(|| Error::State("no optimiser to save".into()))?;
    let state = json!({
        "format": "byol-torch-checkpoint",
        "version": 1,
        "global_step": model.global_step,
        "current_epoch": model.current_epoch,
        "batch_in_epoch": pos.batch_in_epoch,
        "momentum_updated_at": model.momentum_updated_at,
        "schedule": model.schedule_length,
        "momentum_schedule": model.momentum_schedule.name(),
        "base_momentum": model.base_momentum,
        "optimizer": optimizer.config(),
        "optimizer_steps": optimizer.steps,
        "base_lr": pos.base_lr,
        "scaler": pos.scaler.as_ref().map(|s| json!({"scale": s.scale, "growth_tracker": s.growth_tracker})),
        "epoch_loss_sum": pos.epoch_loss_sum,
        "epoch_loss_count": pos.epoch_loss_count,
        "precision": config.precision.name(),
        "loss": config.loss.name(),
        // All randomness of a run comes from this seed: the data order and each
        // batch's augmentations are drawn from ChaCha8(seed, epoch, batch index),
        // and the training step itself draws nothing.
        "rng": {"seed": loader.config.seed, "scheme": "chacha8(seed, epoch, batch)"},
        "data": {"epoch": model.current_epoch, "batch": pos.batch_in_epoch, "batch_size": loader.config.batch_size,
                 "dataset_len": loader.dataset().len(), "shuffle": loader.config.shuffle},
    });
    let optimizer_state = optimizer.state_tensors();
    write_checkpoint(dir, model.global_step, (&model.state_dict(), model.metadata()), &optimizer_state, state, config.keep_checkpoints)
}

/// Restores model, optimiser and position from a checkpoint; nothing changes
/// when the checkpoint does not fit the model.
fn resume(model: &mut Byol, path: &Path, loader: &DataLoader, warnings: &mut Vec<String>) -> Result<Position> {
    let (read, mut w) = read_checkpoint_with_fallback(path)?;
    warnings.append(&mut w);
    let s = &read.state;
    let opt_config: OptimizerConfig = serde_json::from_value(s["optimizer"].clone())
        .map_err(|e| Error::Checkpoint(format!("trainer.json: the optimizer entry is not usable: {e}")))?;
    let steps = s.get("optimizer_steps").and_then(|v| v.as_i64()).unwrap_or(0);
    model.load_state_dict(&read.model.tensors).map_err(|e| {
        Error::Checkpoint(format!("{} was saved from another architecture than this model's: {e}", read.path.display()))
    })?;
    let int = |k: &str| s.get(k).and_then(|v| v.as_i64()).ok_or_else(|| Error::Checkpoint(format!("trainer.json: '{k}' is missing")));
    model.global_step = int("global_step")?;
    model.current_epoch = int("current_epoch")?;
    model.momentum_updated_at = s.get("momentum_updated_at").and_then(|v| v.as_i64());
    model.schedule_length = int("schedule")?;
    if let Some(b) = s.get("base_momentum").and_then(|v| v.as_f64()) {
        model.base_momentum = b;
    }
    if let Some(m) = s.get("momentum_schedule").and_then(|v| v.as_str()) {
        model.momentum_schedule = MomentumSchedule::parse(m)?;
    }
    model.set_optimizer(opt_config)?;
    let params: Vec<Tensor> = model.trainable().map(Tensor::shallow_clone).collect();
    let optimizer = model.optimizer_mut().ok_or_else(|| Error::State("no optimiser".into()))?;
    optimizer.load_state_tensors(&read.optimizer, &params)?;
    optimizer.steps = steps;
    let data = &s["data"];
    if data["batch_size"].as_u64() != Some(loader.config.batch_size as u64) || data["dataset_len"].as_u64() != Some(loader.dataset().len() as u64) {
        warnings.push(format!(
            "the checkpoint was made with batch size {} over {} images, this loader has {} over {}: the run will not repeat the original exactly",
            data["batch_size"], data["dataset_len"], loader.config.batch_size, loader.dataset().len()
        ));
    }
    if s["rng"]["seed"].as_u64() != Some(loader.config.seed) {
        warnings.push(format!("the checkpoint's data seed was {}, this loader's is {}", s["rng"]["seed"], loader.config.seed));
    }
    Ok(Position {
        batch_in_epoch: s.get("batch_in_epoch").and_then(|v| v.as_u64()).unwrap_or(0) as usize,
        epoch_loss_sum: s.get("epoch_loss_sum").and_then(|v| v.as_f64()).unwrap_or(0.0),
        epoch_loss_count: s.get("epoch_loss_count").and_then(|v| v.as_i64()).unwrap_or(0),
        base_lr: s.get("base_lr").and_then(|v| v.as_f64()).unwrap_or(opt_config.lr),
        scaler: s.get("scaler").filter(|v| !v.is_null()).map(|v| GradScaler {
            scale: v["scale"].as_f64().unwrap_or(65536.0),
            growth_tracker: v["growth_tracker"].as_i64().unwrap_or(0),
            ..GradScaler::default()
        }),
    })
}

/// `Trainer.fit(model, loader)`. The model is locked one step at a time, so
/// its getters stay usable from another thread while this runs.
pub fn fit(model: &Mutex<Byol>, loader: &DataLoader, config: &TrainerConfig, options: FitOptions, emit: &mut dyn FnMut(Progress)) -> Result<FitResult> {
    config.validate()?;
    // seed_everything: the step draws nothing, but a custom backbone might.
    tch::manual_seed(config.seed as i64);
    if let Some(dir) = &config.checkpoint_dir {
        check_writable(dir)?;
    }
    if config.knn_every_n_epochs.is_some() && options.knn.is_none() {
        return Err(Error::invalid("knn", "train and test loaders when knnEveryNEpochs is set", "none"));
    }
    let batches = loader.num_batches();
    if batches == 0 {
        return Err(Error::range("loader", "at least one batch per epoch", "0 (fewer images than batchSize with dropLast)"));
    }
    let batches_i = batches as i64;
    let total = match (config.max_steps, config.max_epochs) {
        (Some(s), Some(e)) => s.min(e * batches_i),
        (Some(s), None) => s,
        (None, Some(e)) => e * batches_i,
        (None, None) => unreachable!("validate() requires one"),
    };
    let total = match config.fast_dev_run.map_or_else(fast_dev_run_from_env, |n| Ok(Some(n)))? {
        Some(n) => total.min(n),
        None => total,
    };
    let warmup = (config.warmup_steps + (config.warmup_epochs * batches as f64).round() as i64).min(if config.warmup_epochs > 0.0 { (total / 10).max(1) } else { i64::MAX });
    let mut warnings = Vec::new();

    let mut pos = {
        let mut m = lock(model)?;
        m.to_device(config.device)?;
        if config.channels_last {
            m.to_channels_last()?;
        }
        match &options.resume_from {
            Some(path) => resume(&mut m, path, loader, &mut warnings)?,
            None => {
                match (&config.optimizer, m.optimizer_config()) {
                    (Some(c), _) => {
                        m.set_optimizer(*c)?;
                    }
                    (None, None) => {
                        m.configure_optimizers()?;
                    }
                    (None, Some(_)) => {}
                }
                if config.momentum_over_run {
                    m.schedule_length = total;
                    m.momentum_schedule = MomentumSchedule::Step;
                }
                if let Some(b) = config.base_momentum {
                    m.base_momentum = b;
                }
                let base_lr = m.optimizer_config().map(|c| c.lr).unwrap_or(m.learning_rate);
                Position {
                    batch_in_epoch: 0,
                    epoch_loss_sum: 0.0,
                    epoch_loss_count: 0,
                    base_lr,
                    scaler: (config.precision == Precision::Fp16Mixed).then(GradScaler::default),
                }
            }
        }
    };
    if config.precision == Precision::Fp16Mixed && pos.scaler.is_none() {
        pos.scaler = Some(GradScaler::default());
    }
    for w in &warnings {
        emit(Progress { kind: "warning", message: w.clone(), ..Default::default() });
    }
    let mut last_checkpoint = None;
    let start_step = lock(model)?.global_step;
    let mut window = (Instant::now(), start_step);
    let mut rate = 0.0;

    let finished = |m: &Byol| m.global_step >= total || config.max_epochs.is_some_and(|e| m.current_epoch >= e);
    loop {
        let (epoch, done) = {
            let m = lock(model)?;
            (m.current_epoch, finished(&m))
        };
        if done {
            break;
        }
        let mut data = loader.epoch_at(epoch as u64, pos.batch_in_epoch);
        loop {
            if options.abort.is_some_and(|a| a.load(Ordering::SeqCst)) {
                let m = lock(model)?;
                if let Some(dir) = &config.checkpoint_dir {
                    let path = save(&m, dir, &pos, config, loader)?;
                    emit(Progress { kind: "checkpoint", step: m.global_step, epoch: m.current_epoch, path: path.display().to_string(), ..Default::default() });
                    last_checkpoint = Some(path);
                }
                return Ok(FitResult { stop: Stop::Aborted, global_step: m.global_step, current_epoch: m.current_epoch, last_checkpoint, warnings });
            }
            let Some(batch) = data.next_batch()? else { break };
            let index = data.position();
            if batch.labels.is_empty() {
                pos.batch_in_epoch = index;
                continue;
            }
            let mut m = lock(model)?;
            let lr = learning_rate_at(config.lr_schedule, pos.base_lr, m.global_step, warmup, total);
            if let Some(o) = m.optimizer_mut() {
                o.set_lr(lr)?;
            }
            let device = m.device();
            let (x0, x1) = (batch.x0.f_to_device(device)?, batch.x1.f_to_device(device)?);
            let (x0, x1) = if config.channels_last {
                (crate::amp::to_channels_last(&x0)?, crate::amp::to_channels_last(&x1)?)
            } else {
                (x0, x1)
            };
            let step = m.training_step_with(
                &x0,
                &x1,
                StepOptions { precision: config.precision, loss: config.loss, scaler: pos.scaler.as_mut(), check_finite: true },
            );
            let out = match step {
                Ok(out) => out,
                Err(Error::NonFinite { step, value, last_good, .. }) => {
                    // The update was not applied: the model is still as after
                    // the last good step, so that is what the checkpoint holds.
                    let saved = match &config.checkpoint_dir {
                        Some(dir) => format!("; that state is saved in {}", save(&m, dir, &pos, config, loader)?.display()),
                        None => String::new(),
                    };
                    return Err(Error::NonFinite { step, value, last_good, saved });
                }
                Err(e) => return Err(e),
            };
            let loss = match out.loss_value {
                Some(v) => v,
                None => out.loss.f_double_value(&[])?,
            };
            pos.epoch_loss_sum += loss;
            pos.epoch_loss_count += 1;
            pos.batch_in_epoch = index;
            let step = m.global_step;
            if step % config.log_every_n_steps == 0 || step == total {
                let now = Instant::now();
                let secs = now.duration_since(window.0).as_secs_f64();
                if secs > 0.0 {
                    rate = (step - window.1) as f64 * loader.config.batch_size as f64 / secs;
                }
                window = (now, step);
                let steps_per_second = if rate > 0.0 { rate / loader.config.batch_size as f64 } else { 0.0 };
                emit(Progress {
                    kind: "step",
                    step,
                    total_steps: total,
                    epoch: m.current_epoch,
                    batch: index as i64,
                    batches_per_epoch: batches_i,
                    loss,
                    learning_rate: lr,
                    momentum: out.momentum,
                    images_per_second: rate,
                    eta_seconds: if steps_per_second > 0.0 { (total - step) as f64 / steps_per_second } else { f64::NAN },
                    projection_std: out.projection_std()?,
                    loss_scale: pos.scaler.as_ref().map(|s| s.scale).unwrap_or(1.0),
                    ..Default::default()
                });
            }
            let epoch_done = index >= batches;
            if epoch_done {
                let mean = pos.epoch_loss_sum / pos.epoch_loss_count.max(1) as f64;
                emit(Progress { kind: "epoch", step, total_steps: total, epoch: m.current_epoch, epoch_loss: mean, ..Default::default() });
                m.current_epoch += 1;
                pos.batch_in_epoch = 0;
                pos.epoch_loss_sum = 0.0;
                pos.epoch_loss_count = 0;
                if let (Some(every), Some(knn)) = (config.knn_every_n_epochs, &options.knn) {
                    if m.current_epoch % every == 0 {
                        let accuracy = evaluate_knn(&mut m, knn)?;
                        emit(Progress { kind: "knn", step, epoch: m.current_epoch - 1, knn_accuracy: accuracy, ..Default::default() });
                    }
                }
            }
            if let (Some(dir), Some(every)) = (&config.checkpoint_dir, config.checkpoint_every_n_steps) {
                if step % every == 0 {
                    let path = save(&m, dir, &pos, config, loader)?;
                    emit(Progress { kind: "checkpoint", step, epoch: m.current_epoch, path: path.display().to_string(), ..Default::default() });
                    last_checkpoint = Some(path);
                }
            }
            if finished(&m) || epoch_done {
                break;
            }
        }
    }
    let m = lock(model)?;
    if let Some(dir) = &config.checkpoint_dir {
        let name = crate::checkpoint::checkpoint_name(m.global_step);
        if last_checkpoint.as_ref().and_then(|p: &PathBuf| p.file_name()).map(|n| n.to_string_lossy() != name).unwrap_or(true) {
            let path = save(&m, dir, &pos, config, loader)?;
            emit(Progress { kind: "checkpoint", step: m.global_step, epoch: m.current_epoch, path: path.display().to_string(), ..Default::default() });
            last_checkpoint = Some(path);
        }
    }
    Ok(FitResult { stop: Stop::Finished, global_step: m.global_step, current_epoch: m.current_epoch, last_checkpoint, warnings })
}

/// kNN accuracy of the model's backbone (in eval mode, then back).
pub fn evaluate_knn(m: &mut Byol, knn: &KnnEval) -> Result<f64> {
    let device = m.device();
    let backbone = &m.backbone;
    let train = embed(knn.train, device, |x| backbone.forward(x, false))?;
    let test = embed(knn.test, device, |x| backbone.forward(x, false))?;
    knn_accuracy(&train.features, &train.labels, &test.features, &test.labels, knn.k, knn.temperature)
}

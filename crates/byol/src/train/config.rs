//! What a training run is made of: the options as a user gives them (a recipe
//! and the settings that override it) and the configuration they resolve to.
use crate::dist::{DistBackend, Strategy, DEFAULT_TIMEOUT_SECONDS};
use crate::error::{Error, Result};
use crate::model::LossForm;
use crate::optim::{LrSchedule, OptimizerConfig, OptimizerOptions};
use crate::tensor::Precision;
use std::path::PathBuf;
use tch::Device;

/// The environment variable that caps every `fit` at a few steps, so that
/// scripts and documentation can be run end to end in seconds.
pub const FAST_DEV_RUN_ENV: &str = "BYOL_TORCH_FAST_DEV_RUN";

/// A set of settings that fit together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Recipe {
    /// minerva's `configure_optimizers`: plain SGD at the model's learning
    /// rate, constant; its loss; τ over the model's schedule.
    #[default]
    Minerva,
    /// The BYOL paper's (Grill et al. 2020, section 3.2 and appendix C): LARS
    /// at 0.2 x batch/256, weight decay 1.5e-6 (biases and normalisation
    /// excluded), 10 warm-up epochs (at most a tenth of the run) then cosine
    /// decay, τ 0.996 -> 1 per step over the run, loss 2 - 2cos summed over
    /// both views.
    Paper,
}

/// The settings of a run that need no resolving: the same whatever the recipe.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub max_epochs: Option<i64>,
    pub max_steps: Option<i64>,
    pub device: Device,
    pub precision: Precision,
    pub log_every_n_steps: i64,
    pub checkpoint_dir: Option<PathBuf>,
    pub checkpoint_every_n_steps: Option<i64>,
    /// Checkpoint folders kept (the newest).
    pub keep_checkpoints: usize,
    pub seed: u64,
    /// τ at the start of the momentum schedule (the model's own if `None`).
    pub base_momentum: Option<f64>,
    pub channels_last: bool,
    /// kNN evaluation every this many epochs (needs `FitOptions::knn`).
    pub knn_every_n_epochs: Option<i64>,
    /// Lightning's `fast_dev_run`: at most this many steps, to smoke-test a
    /// script. `None` reads `BYOL_TORCH_FAST_DEV_RUN`.
    pub fast_dev_run: Option<i64>,
    /// Whether to train data-parallel (`Auto`: when a launcher set `WORLD_SIZE`).
    pub strategy: Strategy,
    /// What carries the data-parallel collectives (`Auto`: NCCL on CUDA, Gloo on the CPU).
    pub backend: DistBackend,
    /// The longest, in seconds, a rank waits for the others in a collective
    /// before failing: how soon a dead or hung rank is reported.
    pub collective_timeout: f64,
    /// In data-parallel training, BatchNorm statistics over all ranks
    /// (`torch.nn.SyncBatchNorm`); per process otherwise, as DDP's default.
    pub sync_batch_norm: bool,
    /// Lightning's `accumulate_grad_batches`: one optimiser and EMA step per
    /// this many batches, their gradients averaged; BatchNorm per batch.
    pub accumulate_grad_batches: usize,
    /// Processes on this host that `Trainer.fit` of the Node package starts
    /// itself for data-parallel training (Lightning's `devices`); the core
    /// only checks it: it joins whatever group the environment describes.
    pub devices: usize,
    /// Lightning's loggers: what rank 0 writes in `log_dir` as it trains
    /// (none: progress events only).
    pub logger: Vec<crate::train::LoggerKind>,
    /// Where the loggers write (`None`: the next free `byol_logs/version_N`).
    pub log_dir: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            max_epochs: None,
            max_steps: None,
            device: Device::Cpu,
            precision: Precision::Full,
            log_every_n_steps: 50,
            checkpoint_dir: None,
            checkpoint_every_n_steps: None,
            keep_checkpoints: 3,
            seed: 0,
            base_momentum: None,
            channels_last: false,
            knn_every_n_epochs: None,
            fast_dev_run: None,
            strategy: Strategy::Auto,
            backend: DistBackend::Auto,
            collective_timeout: DEFAULT_TIMEOUT_SECONDS,
            sync_batch_norm: false,
            accumulate_grad_batches: 1,
            devices: 1,
            logger: Vec::new(),
            log_dir: None,
        }
    }
}

/// `Trainer` options as a user gives them: a recipe, and each setting given
/// next to it winning over it.
#[derive(Clone, Debug, Default)]
pub struct TrainerOptions {
    pub run: RunOptions,
    pub recipe: Recipe,
    /// The optimiser's settings; each one given wins over the recipe's.
    pub optimizer: OptimizerOptions,
    pub lr_schedule: Option<LrSchedule>,
    pub warmup_steps: Option<i64>,
    /// Warm-up in epochs (converted with the loader's length); added to `warmup_steps`.
    pub warmup_epochs: Option<f64>,
    pub loss: Option<LossForm>,
}

/// The batch size options are checked with before a loader is known.
const NOMINAL_BATCH: usize = 256;

impl TrainerOptions {
    /// The configuration of a run on batches of `batch_size`, for a model
    /// whose learning rate is `model_lr` and which may already have an
    /// optimiser: the recipe first, then every option given.
    pub fn resolve(&self, batch_size: usize, model_lr: f64, model_has_optimizer: bool) -> Result<TrainerConfig> {
        let mut c = TrainerConfig { run: self.run.clone(), ..TrainerConfig::default() };
        if self.recipe == Recipe::Paper {
            c.optimizer = Some(OptimizerConfig::lars(0.2 * batch_size as f64 / NOMINAL_BATCH as f64, 1.5e-6));
            c.lr_schedule = LrSchedule::WarmupCosine;
            c.warmup_epochs = 10.0;
            c.loss = LossForm::Paper;
            c.momentum_over_run = true;
        }
        // With no setting given, an optimiser the recipe or the model has is kept.
        if !self.optimizer.is_empty() || (c.optimizer.is_none() && !model_has_optimizer) {
            c.optimizer = Some(self.optimizer.resolve(c.optimizer, model_lr)?);
        }
        c.lr_schedule = self.lr_schedule.unwrap_or(c.lr_schedule);
        c.warmup_steps = self.warmup_steps.unwrap_or(c.warmup_steps);
        c.warmup_epochs = self.warmup_epochs.unwrap_or(c.warmup_epochs);
        c.loss = self.loss.unwrap_or(c.loss);
        c.validate()?;
        Ok(c)
    }

    /// Checks the options as far as they can be without a loader or a model,
    /// so that bad ones fail when the trainer is made.
    pub fn validate(&self) -> Result<()> {
        self.resolve(NOMINAL_BATCH, crate::model::DEFAULT_LEARNING_RATE, false).map(|_| ())
    }
}

/// The settings a run is made with, resolved from `TrainerOptions`.
#[derive(Clone, Debug)]
pub struct TrainerConfig {
    pub run: RunOptions,
    /// `None`: the model's optimiser if one was set, else minerva's plain SGD.
    pub optimizer: Option<OptimizerConfig>,
    pub lr_schedule: LrSchedule,
    pub warmup_steps: i64,
    pub warmup_epochs: f64,
    pub loss: LossForm,
    /// Set the model's momentum schedule to span the whole run (per step).
    pub momentum_over_run: bool,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            run: RunOptions::default(),
            optimizer: None,
            lr_schedule: LrSchedule::Constant,
            warmup_steps: 0,
            warmup_epochs: 0.0,
            loss: LossForm::Minerva,
            momentum_over_run: false,
        }
    }
}

impl TrainerConfig {
    pub fn validate(&self) -> Result<()> {
        if self.run.max_epochs.is_none() && self.run.max_steps.is_none() {
            return Err(Error::invalid("maxEpochs", "maxEpochs or maxSteps (an integer >= 1)", "neither"));
        }
        if let Some(e) = self.run.max_epochs {
            if e < 1 {
                return Err(Error::range("maxEpochs", "an integer >= 1", e));
            }
        }
        if let Some(s) = self.run.max_steps {
            if s < 1 {
                return Err(Error::range("maxSteps", "an integer >= 1", s));
            }
        }
        if self.run.log_every_n_steps < 1 {
            return Err(Error::range("logEveryNSteps", "an integer >= 1", self.run.log_every_n_steps));
        }
        if let Some(n) = self.run.checkpoint_every_n_steps {
            if n < 1 {
                return Err(Error::range("checkpointEveryNSteps", "an integer >= 1", n));
            }
            if self.run.checkpoint_dir.is_none() {
                return Err(Error::invalid("checkpointDir", "a folder when checkpointEveryNSteps is set", "none"));
            }
        }
        if self.run.keep_checkpoints < 1 {
            return Err(Error::range("keepCheckpoints", "an integer >= 1", self.run.keep_checkpoints));
        }
        if self.warmup_steps < 0 {
            return Err(Error::range("warmupSteps", "an integer >= 0", self.warmup_steps));
        }
        if !(self.warmup_epochs.is_finite() && self.warmup_epochs >= 0.0) {
            return Err(Error::range("warmupEpochs", "a number >= 0", self.warmup_epochs));
        }
        if let Some(n) = self.run.knn_every_n_epochs {
            if n < 1 {
                return Err(Error::range("knnEveryNEpochs", "an integer >= 1", n));
            }
        }
        if let Some(n) = self.run.fast_dev_run {
            if n < 1 {
                return Err(Error::range("fastDevRun", "a number of steps >= 1", n));
            }
        }
        if let Some(o) = &self.optimizer {
            o.validate()?;
        }
        if let Some(m) = self.run.base_momentum {
            if !(0.0..=1.0).contains(&m) {
                return Err(Error::range("baseMomentum", "a number in [0, 1]", m));
            }
        }
        if self.run.devices < 1 || self.run.devices > 1024 {
            return Err(Error::range("devices", "1 to 1024 processes", self.run.devices));
        }
        if self.run.devices > 1 && self.run.strategy == Strategy::Single {
            return Err(Error::invalid("strategy", "'auto' or 'ddp' with devices > 1", "'single'"));
        }
        if self.run.accumulate_grad_batches < 1 {
            return Err(Error::range("accumulateGradBatches", "an integer >= 1", self.run.accumulate_grad_batches));
        }
        let t = self.run.collective_timeout;
        if !(t.is_finite() && t > 0.0 && t <= 86_400.0) {
            return Err(Error::range("collectiveTimeout", "a number of seconds > 0 and at most 86400", t));
        }
        Ok(())
    }

    /// The steps of the run for `batches` batches per epoch, capped by
    /// `fast_dev_run` (or `BYOL_TORCH_FAST_DEV_RUN`).
    pub fn total_steps(&self, batches: i64) -> Result<i64> {
        let total = match (self.run.max_steps, self.run.max_epochs) {
            (Some(s), Some(e)) => s.min(e * batches),
            (Some(s), None) => s,
            (None, Some(e)) => e * batches,
            (None, None) => return Err(Error::invalid("maxEpochs", "maxEpochs or maxSteps (an integer >= 1)", "neither")),
        };
        Ok(match self.run.fast_dev_run.map_or_else(fast_dev_run_from_env, |n| Ok(Some(n)))? {
            Some(n) => total.min(n),
            None => total,
        })
    }

    /// Warm-up steps: `warmup_steps` plus `warmup_epochs` of `batches`, the
    /// latter capped at a tenth of the run so that short runs reach the peak.
    pub fn warmup(&self, batches: usize, total: i64) -> i64 {
        let epochs = (self.warmup_epochs * batches as f64).round() as i64;
        let cap = if self.warmup_epochs > 0.0 { (total / 10).max(1) } else { i64::MAX };
        (self.warmup_steps + epochs).min(cap)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimizerKind;

    fn options() -> TrainerOptions {
        TrainerOptions { run: RunOptions { max_steps: Some(100), ..Default::default() }, ..Default::default() }
    }

    #[test]
    fn minerva_keeps_an_optimiser_the_model_has() {
        assert_eq!(options().resolve(32, 0.025, true).unwrap().optimizer, None);
        assert_eq!(options().resolve(32, 0.025, false).unwrap().optimizer, Some(OptimizerConfig::plain(0.025)));
    }

    #[test]
    fn the_paper_recipe_scales_lars_with_the_batch() {
        let c = TrainerOptions { recipe: Recipe::Paper, ..options() }.resolve(512, 0.025, true).unwrap();
        assert_eq!(c.optimizer, Some(OptimizerConfig::lars(0.4, 1.5e-6)));
        assert_eq!((c.lr_schedule, c.warmup_epochs, c.loss, c.momentum_over_run), (LrSchedule::WarmupCosine, 10.0, LossForm::Paper, true));
    }

    #[test]
    fn settings_given_override_the_recipe() {
        let o = TrainerOptions {
            recipe: Recipe::Paper,
            optimizer: OptimizerOptions { lr: Some(0.1), ..Default::default() },
            warmup_epochs: Some(0.0),
            loss: Some(LossForm::Minerva),
            ..options()
        };
        let c = o.resolve(256, 0.025, false).unwrap();
        assert_eq!(c.optimizer.map(|o| (o.kind, o.lr, o.weight_decay)), Some((OptimizerKind::Lars, 0.1, 1.5e-6)));
        assert_eq!((c.warmup_epochs, c.loss), (0.0, LossForm::Minerva));
    }

    #[test]
    fn the_warmup_is_capped_at_a_tenth_of_the_run() {
        let c = TrainerConfig { warmup_epochs: 10.0, ..TrainerConfig::default() };
        assert_eq!(c.warmup(50, 1000), 100);
        assert_eq!(c.warmup(5, 10_000), 50);
    }

    #[test]
    fn fast_dev_run_caps_the_steps() {
        let c =
            TrainerConfig { run: RunOptions { max_epochs: Some(3), fast_dev_run: Some(2), ..Default::default() }, ..Default::default() };
        assert_eq!(c.total_steps(10).unwrap(), 2);
    }

    #[test]
    fn bad_options_fail_validation_naming_them() {
        let e = TrainerOptions { run: RunOptions { log_every_n_steps: 0, ..options().run }, ..options() }.validate().unwrap_err();
        assert_eq!(e.argument(), Some("logEveryNSteps"));
        let e = TrainerOptions { run: RunOptions { max_steps: None, ..options().run }, ..options() }.validate().unwrap_err();
        assert_eq!(e.argument(), Some("maxEpochs"));
    }
}

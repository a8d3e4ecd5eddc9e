//! `NativeTrainer`: `fit` on a thread of its own, progress events to JS as a
//! discriminated union, and an abort flag.
use crate::data::NativeDataLoader;
use crate::error::OrThrow;
use crate::model::NativeByol;
use crate::options::eval::KnnOptions;
use crate::options::trainer::TrainerOptions;
use crate::worker;
use byol::eval::KnnConfig;
use byol::tch;
use byol::train::{FitOptions, Fitting, KnnEval, Progress, Stop, TrainerOptions as CoreTrainerOptions};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One report from a running `fit`; `kind` says which.
#[napi(discriminant = "kind", discriminant_case = "lowercase")]
pub enum ProgressEvent {
    /// Every `logEveryNSteps` steps, and the last.
    Step {
        /// `globalStep` after the step.
        step: i64,
        total_steps: i64,
        /// `currentEpoch` (0-based) of the step.
        epoch: i64,
        /// Batches of this epoch done.
        batch: i64,
        batches_per_epoch: i64,
        /// `train_loss` of the step.
        loss: f64,
        learning_rate: f64,
        /// The EMA momentum τ the step used.
        momentum: f64,
        images_per_second: f64,
        /// Seconds left at the present rate; absent until there is a rate.
        eta_seconds: Option<f64>,
        /// Collapse monitor: std over the batch of the l2-normalised projections (about `1/sqrt(dim)` when healthy, 0 if collapsed).
        projection_std: f64,
        /// The fp16 loss scale (`'16-mixed'` only).
        loss_scale: Option<f64>,
        /// Share (0 to 1) of the time since the last step event spent waiting for the loader's next batch: near 1 means the device starves for data (more `numWorkers`, or shards).
        data_wait_fraction: f64,
    },
    /// At the end of each epoch: the epoch's mean `train_loss`.
    Epoch { step: i64, epoch: i64, loss: f64 },
    /// A checkpoint folder was written.
    Checkpoint { step: i64, epoch: i64, path: String },
    /// Top-1 kNN accuracy (0 to 1) on held-out data after `epoch`, or at random initialisation (no `epoch`).
    Knn { step: i64, epoch: Option<i64>, accuracy: f64 },
    /// Something that does not stop the run (an unreadable image, a checkpoint passed over).
    Warning { message: String },
}

impl From<Progress> for ProgressEvent {
    fn from(p: Progress) -> Self {
        match p {
            Progress::Step(s) => ProgressEvent::Step {
                step: s.step,
                total_steps: s.total_steps,
                epoch: s.epoch,
                batch: s.batch,
                batches_per_epoch: s.batches_per_epoch,
                loss: s.loss,
                learning_rate: s.learning_rate,
                momentum: s.momentum,
                images_per_second: s.images_per_second,
                eta_seconds: s.eta_seconds,
                projection_std: s.projection_std,
                loss_scale: s.loss_scale,
                data_wait_fraction: s.data_wait_fraction,
            },
            Progress::Epoch { step, epoch, loss } => ProgressEvent::Epoch { step, epoch, loss },
            Progress::Checkpoint { step, epoch, path } => ProgressEvent::Checkpoint { step, epoch, path },
            Progress::Knn { step, epoch, accuracy } => ProgressEvent::Knn { step, epoch, accuracy },
            Progress::Warning { message } => ProgressEvent::Warning { message },
        }
    }
}

#[napi(object)]
pub struct FitResult {
    /// Whether an abort stopped the run (else it finished).
    pub aborted: bool,
    pub global_step: i64,
    pub current_epoch: i64,
    pub last_checkpoint: Option<String>,
    pub warnings: Vec<String>,
    /// This process's rank in data-parallel training (0 alone).
    pub rank: u32,
    /// The number of processes training together (1 alone).
    pub world_size: u32,
    /// The folder the loggers wrote in (rank 0 with `logger` set).
    pub log_dir: Option<String>,
    /// What carried data-parallel training's collectives, `'gloo'` or `'nccl'`; absent alone.
    pub backend: Option<String>,
    /// Progress events sent; the facade waits for all before resolving.
    pub events: u32,
}

type ProgressFn = ThreadsafeFunction<ProgressEvent, (), ProgressEvent, Status, false>;

#[napi]
pub struct NativeTrainer {
    options: CoreTrainerOptions,
    abort: Arc<AtomicBool>,
}

#[napi]
impl NativeTrainer {
    /// Checks the options now, so that bad ones fail when the trainer is made.
    #[napi(constructor)]
    pub fn new(env: &Env, options: TrainerOptions) -> Result<Self> {
        let options = CoreTrainerOptions::try_from(options).or_throw(env)?;
        options.validate().or_throw(env)?;
        Ok(Self { options, abort: Arc::new(AtomicBool::new(false)) })
    }

    /// Trains `model` on `loader` on a thread of its own; `progress` receives events.
    #[napi(ts_return_type = "Promise<FitResult>")]
    #[allow(clippy::too_many_arguments)]
    pub fn fit<'env>(
        &self,
        env: &'env Env,
        model: &NativeByol,
        loader: &NativeDataLoader,
        resume_from: Option<String>,
        knn_train: Option<&NativeDataLoader>,
        knn_test: Option<&NativeDataLoader>,
        knn: Option<KnnOptions>,
        knn_baseline: Option<bool>,
        hparams_json: Option<String>,
        #[napi(ts_arg_type = "((event: ProgressEvent) => void) | undefined | null")] progress: Option<ProgressFn>,
    ) -> Result<Object<'env>> {
        let loader = loader.snapshot().or_throw(env)?;
        let knn_loaders = match (knn_train, knn_test) {
            (Some(a), Some(b)) => Some((a.snapshot().or_throw(env)?, b.snapshot().or_throw(env)?)),
            _ => None,
        };
        let knn_config = knn.map(KnnConfig::from).unwrap_or_default();
        let hparams = match hparams_json.map(|j| serde_json::from_str::<serde_json::Value>(&j)) {
            None => serde_json::Map::new(),
            Some(Ok(serde_json::Value::Object(map))) => map,
            Some(_) => {
                return Err::<Object<'env>, _>(byol::Error::invalid("hparams", "an object of JSON values", "something else")).or_throw(env)
            }
        };
        let (model_lr, has_optimizer) =
            crate::model::lock(&model.model).map(|m| (m.learning_rate(), m.optimizer().is_some())).or_throw(env)?;
        let config = self.options.resolve(loader.config.batch_size, model_lr, has_optimizer).or_throw(env)?;
        let run = Fitting::start(Arc::clone(&model.model)).or_throw(env)?;
        let (measured, external) = (Arc::clone(&model.model), model.external.clone());
        self.abort.store(false, Ordering::SeqCst);
        let abort = Arc::clone(&self.abort);
        let work = move || {
            let knn = knn_loaders.as_ref().map(|(train, test)| KnnEval {
                train,
                test,
                config: knn_config,
                baseline: knn_baseline.unwrap_or(false),
            });
            // `'auto'`: the newest checkpoint of the run's folder, if any.
            let (resume_from, resume_auto) = match resume_from.as_deref() {
                Some("auto") => (None, true),
                other => (other.map(PathBuf::from), false),
            };
            let options = FitOptions { resume_from, resume_auto, knn, abort: Some(&abort), hparams };
            let mut sent = 0u32;
            let result = byol::train::fit(&run, &loader, &config, options, &mut |p| {
                if let Some(f) = progress.as_ref() {
                    if f.call(p.into(), ThreadsafeFunctionCallMode::Blocking) == Status::Ok {
                        sent += 1;
                    }
                }
            })?;
            Ok((result, sent))
        };
        worker::spawn(env, "fit", tch::get_num_threads(), work, move |env, (r, events): (byol::train::FitResult, u32)| {
            // Training made the optimiser's state, or loaded a checkpoint's.
            if let Ok(m) = crate::model::lock(&measured) {
                external.set(env, m.nbytes());
            }
            Ok(FitResult {
                aborted: r.stop == Stop::Aborted,
                global_step: r.global_step,
                current_epoch: r.current_epoch,
                last_checkpoint: r.last_checkpoint.map(|p| p.display().to_string()),
                warnings: r.warnings,
                rank: u32::try_from(r.rank).unwrap_or(u32::MAX),
                world_size: u32::try_from(r.world_size).unwrap_or(u32::MAX),
                log_dir: r.log_dir.map(|p| p.display().to_string()),
                backend: r.backend.map(String::from),
                events,
            })
        })
    }

    /// Processes `fit` runs on this host (`devices`, resolved).
    #[napi(getter)]
    pub fn devices(&self) -> u32 {
        u32::try_from(self.options.run.devices).unwrap_or(u32::MAX)
    }

    /// Stops a running fit at the next step boundary (after a checkpoint).
    #[napi]
    pub fn abort(&self) {
        self.abort.store(true, Ordering::SeqCst);
    }
}

/// The newest checkpoint folder (`step-*`) in `dir`; null when it holds none
/// or does not exist.
#[napi]
pub fn latest_checkpoint(dir: String) -> Option<String> {
    byol::train::checkpoint::list_checkpoints(std::path::Path::new(&dir)).into_iter().next().map(|(_, p)| p.display().to_string())
}

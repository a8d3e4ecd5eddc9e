//! The trainer: Lightning's `Trainer.fit` for the BYOL model, in Rust, with
//! learning-rate schedules, mixed precision, checkpoints that resume exactly,
//! progress reports and kNN evaluation during training.
use crate::dist::{DistEnv, GroupOptions, ProcessGroup, Strategy};
use crate::error::{Error, Result};
use crate::eval::{embed, knn_accuracy, KnnConfig};
use crate::loader::DataLoader;
use crate::model::{Byol, MomentumSchedule, StepOptions};
use crate::optim::{learning_rate_at, GradScaler, OptimizerConfig};
use crate::tensor::device::HeapsKept;
use crate::tensor::{to_channels_last, Precision};
use crate::train::checkpoint::{check_writable, checkpoint_name, resume, save, Position};
use crate::train::config::TrainerConfig;
use crate::train::logger::{default_log_dir, Loggers};
use crate::train::progress::{Progress, StepEvent};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long the other ranks wait for rank 0 while it alone evaluates kNN.
const EVALUATION_WAIT: Duration = Duration::from_secs(6 * 3600);

/// kNN evaluation during training: embeddings of `train` and `test` by the
/// backbone, compared with `knn_accuracy`.
pub struct KnnEval<'a> {
    pub train: &'a DataLoader,
    pub test: &'a DataLoader,
    pub config: KnnConfig,
    /// Also evaluate the backbone at random initialisation, before the first
    /// step of a run that does not resume (the baseline BYOL has to beat).
    pub baseline: bool,
}

/// The variable TorchElastic (torchrun) and `byol-torch train
/// --nproc-per-node` set in every worker they start, counting restarts.
pub const RESTART_COUNT_ENV: &str = "TORCHELASTIC_RESTART_COUNT";

#[derive(Default)]
pub struct FitOptions<'a> {
    /// A checkpoint folder, or a folder of them (the newest readable).
    pub resume_from: Option<PathBuf>,
    /// Resume from the newest readable checkpoint of the run's checkpoint
    /// folder when there is one, else start afresh (Lightning's
    /// `ckpt_path="last"`). Also the behaviour, without being asked, in a
    /// process a launcher started (`TORCHELASTIC_RESTART_COUNT` set): a
    /// restarted worker must go on from the last checkpoint, as TorchElastic
    /// expects of its scripts.
    pub resume_auto: bool,
    pub knn: Option<KnnEval<'a>>,
    pub abort: Option<&'a AtomicBool>,
    /// Hyperparameters the loggers record besides the run's own (which
    /// these override by name): what a script or the CLI knows of the run.
    pub hparams: serde_json::Map<String, serde_json::Value>,
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
    /// This process's rank and the number of processes (0 and 1 alone).
    pub rank: usize,
    pub world_size: usize,
    /// The folder the loggers wrote in (rank 0 with loggers only).
    pub log_dir: Option<PathBuf>,
    /// The backend of the data-parallel group (`None` alone).
    pub backend: Option<&'static str>,
}

fn lock(model: &Mutex<Byol>) -> Result<MutexGuard<'_, Byol>> {
    model.lock().map_err(|_| Error::State("the model was left inconsistent by an earlier panic".into()))
}

/// A model reserved for one `fit`: while it lives, the model's training
/// calls fail with `Error::Busy`, and so does a second reservation. Taken
/// where `fit` is called, so that a second call fails at once.
pub struct Fitting(Arc<Mutex<Byol>>);

impl Fitting {
    pub fn start(model: Arc<Mutex<Byol>>) -> Result<Self> {
        {
            let mut m = lock(&model)?;
            if m.fitting {
                return Err(Error::Busy { what: "fit".into() });
            }
            m.fitting = true;
        }
        Ok(Self(model))
    }

    pub fn model(&self) -> &Mutex<Byol> {
        &self.0
    }
}

impl Drop for Fitting {
    fn drop(&mut self) {
        if let Ok(mut m) = self.0.lock() {
            m.fitting = false;
        }
    }
}

/// `Trainer.fit(model, loader)` on the model `run` reserved. The model is
/// locked one step at a time, so its getters stay usable from another thread
/// while this runs; training calls made meanwhile fail with `Error::Busy`.
pub fn fit(
    run: &Fitting,
    loader: &DataLoader,
    config: &TrainerConfig,
    options: FitOptions,
    listener: &mut dyn FnMut(Progress),
) -> Result<FitResult> {
    // Declared first, so dropped last, however the run ends.
    let _heaps = HeapsKept::new();
    let model = run.model();
    config.validate()?;
    let group = join_group(config)?;
    let (rank, world_size) = group.as_ref().map_or((0, 1), |g| (g.rank(), g.world_size()));
    let backend = group.as_ref().map(ProcessGroup::backend);
    let lead = rank == 0;
    let loggers = match (&config.run.log_dir, lead && !config.run.logger.is_empty()) {
        (_, false) => None,
        (Some(dir), true) => Some(Loggers::open(dir, &config.run.logger)?),
        (None, true) => Some(Loggers::open(&default_log_dir(), &config.run.logger)?),
    };
    let log_dir = loggers.as_ref().map(|l| l.dir().to_path_buf());
    let loggers = RefCell::new(loggers);
    // Every warning is also kept for the result, for callers that do not
    // listen. In data-parallel training only rank 0 reports progress, as
    // Lightning logs from rank 0; every rank reports its own warnings.
    let warnings = RefCell::new(Vec::new());
    let mut keep_warnings = |p: Progress| {
        if let Some(l) = loggers.borrow_mut().as_mut() {
            for message in l.event(&p) {
                warnings.borrow_mut().push(message.clone());
                listener(Progress::Warning { message });
            }
        }
        if let Progress::Warning { message } = &p {
            warnings.borrow_mut().push(message.clone());
        } else if !lead {
            return;
        }
        listener(p)
    };
    let emit: &mut dyn FnMut(Progress) = &mut keep_warnings;
    let shard;
    let loader = match &group {
        Some(g) => {
            let mut sharded = loader.sharded(g.rank(), g.world_size())?;
            sharded.config.device = g.device_for(sharded.config.device)?;
            shard = sharded;
            &shard
        }
        None => loader,
    };
    let device = match &group {
        Some(g) => g.device_for(config.run.device)?,
        None => config.run.device,
    };
    if config.run.knn_every_n_epochs.is_some() && options.knn.is_none() {
        return Err(Error::invalid("knn", "train and test loaders when knnEveryNEpochs is set", "none"));
    }
    let batches = loader.num_batches();
    if batches == 0 {
        return Err(Error::range("loader", "at least one batch per epoch", "0 (fewer images than batchSize with dropLast)"));
    }
    let batches_i = batches as i64;
    // With gradient accumulation an epoch has fewer optimiser steps than
    // batches (a last, shorter window still steps, as Lightning does).
    let accumulate = config.run.accumulate_grad_batches.max(1);
    let steps_per_epoch = batches.div_ceil(accumulate);
    let total = config.total_steps(steps_per_epoch as i64)?;
    let warmup = config.warmup(steps_per_epoch, total);
    if let Some(dir) = &config.run.checkpoint_dir {
        check_writable(dir)?;
    }
    // seed_everything: the step draws nothing, but a custom backbone might.
    tch::manual_seed(config.run.seed as i64);
    let mut resume_warnings = Vec::new();

    let resume_from = resume_source(&options, config, std::env::var_os(RESTART_COUNT_ENV).is_some());
    let mut pos = {
        let mut m = lock(model)?;
        m.to_device(device)?;
        if config.run.channels_last {
            m.to_channels_last()?;
        }
        match &resume_from {
            Some(path) => resume(&mut m, path, loader, &mut resume_warnings)?,
            None => {
                match (&config.optimizer, m.optimizer_config()) {
                    (Some(c), _) => {
                        m.install_optimizer(*c)?;
                    }
                    (None, None) => {
                        let lr = m.learning_rate;
                        m.install_optimizer(OptimizerConfig::plain(lr))?;
                    }
                    (None, Some(_)) => {}
                }
                if config.momentum_over_run {
                    m.schedule_length = total;
                    m.momentum_schedule = MomentumSchedule::Step;
                }
                if let Some(b) = config.run.base_momentum {
                    m.set_base_momentum(b)?;
                }
                let base_lr = m.optimizer_config().map(|c| c.lr).unwrap_or(m.learning_rate);
                Position { batch_in_epoch: 0, epoch_loss_sum: 0.0, epoch_loss_count: 0, base_lr, scaler: None }
            }
        }
    };
    if let Some(g) = &group {
        // DistributedDataParallel's start: every rank takes rank 0's weights
        // and buffers (momentum networks included).
        let m = lock(model)?;
        g.broadcast_(&m.tensors().collect::<Vec<_>>(), 0)?;
    }
    if config.run.precision == Precision::Fp16Mixed && pos.scaler.is_none() {
        pos.scaler = Some(GradScaler::default());
    }
    for message in resume_warnings {
        emit(Progress::Warning { message });
    }
    let logged = loggers.borrow_mut().as_mut().map(|l| -> Result<Vec<String>> {
        let m = lock(model)?;
        let mut failed = l.hparams(&hparams(&m, config, loader, world_size, &options.hparams), m.global_step);
        if let Some(grid) = loader.view_pairs(8)? {
            failed.extend(l.views(&crate::data::encode_png(&grid)?, m.global_step));
        }
        Ok(failed)
    });
    for message in logged.transpose()?.unwrap_or_default() {
        emit(Progress::Warning { message });
    }
    if let Some(knn) = options.knn.as_ref().filter(|k| k.baseline && resume_from.is_none()) {
        let mut m = lock(model)?;
        if m.global_step == 0 {
            if lead {
                let accuracy = evaluate_knn(&mut m, knn, &mut |w| emit(Progress::Warning { message: w }))?;
                emit(Progress::Knn { step: 0, epoch: None, accuracy });
            }
            wait_for_lead(group.as_ref())?;
        }
    }
    let mut last_checkpoint = None;
    let mut skipped = BTreeSet::new();
    let start_step = lock(model)?.global_step;
    let mut window = (Instant::now(), start_step);
    // Time spent in the loader since the last step event.
    let mut waited = Duration::ZERO;
    let mut rate = 0.0;

    let images_per_step = (loader.config.batch_size * world_size * accumulate) as f64;
    let finished = |m: &Byol| m.global_step >= total || config.run.max_epochs.is_some_and(|e| m.current_epoch >= e);
    // The next epoch's loader, started when the last batch of this one is
    // taken, so that its first batches are made during this epoch's last step
    // instead of after it (a fresh epoch made the step after it wait for a
    // whole batch, 0.2 s at batch 32 on two cores).
    let mut next_epoch = None;
    loop {
        let (epoch, done) = {
            let m = lock(model)?;
            (m.current_epoch, finished(&m))
        };
        if done {
            break;
        }
        let mut data = match next_epoch.take() {
            Some((e, d)) if e == epoch && pos.batch_in_epoch == 0 => d,
            _ => loader.epoch_at(epoch as u64, pos.batch_in_epoch),
        };
        // The losses of the open accumulation window.
        let mut window_loss = (0.0, 0usize);
        loop {
            // Only between accumulation windows, where a checkpoint holds all
            // of the state (no gradients half summed).
            let boundary = pos.batch_in_epoch % accumulate == 0;
            let mut abort = boundary && (options.abort.is_some_and(|a| a.load(Ordering::SeqCst)) || crate::stop::requested());
            if let Some(g) = group.as_ref().filter(|_| boundary) {
                abort = any_rank(g, abort)?;
            }
            if abort {
                let m = lock(model)?;
                if let Some(dir) = config.run.checkpoint_dir.as_ref().filter(|_| lead) {
                    last_checkpoint = Some(checkpoint(&m, dir, &pos, config, loader, emit)?);
                }
                return Ok(FitResult {
                    stop: Stop::Aborted,
                    global_step: m.global_step,
                    current_epoch: m.current_epoch,
                    last_checkpoint,
                    warnings: warnings.take(),
                    rank,
                    world_size,
                    log_dir,
                    backend,
                });
            }
            let asked = Instant::now();
            let Some(batch) = data.next_batch()? else { break };
            waited += asked.elapsed();
            for item in batch.skipped {
                if skipped.insert(item.clone()) {
                    emit(Progress::Warning { message: format!("skipped an unreadable image: {item}") });
                }
            }
            let index = data.position();
            if batch.labels.is_empty() {
                pos.batch_in_epoch = index;
                continue;
            }
            let mut m = lock(model)?;
            let runs_on = total - m.global_step > 1 && config.run.max_epochs.is_none_or(|e| epoch + 1 < e);
            if index >= batches && runs_on {
                next_epoch = Some((epoch + 1, loader.epoch_at(epoch as u64 + 1, 0)));
            }
            let lr = learning_rate_at(config.lr_schedule, pos.base_lr, m.global_step, warmup, total);
            if let Some(o) = m.optimizer_mut() {
                o.set_lr(lr)?;
            }
            let device = m.device();
            let (x0, x1) = (batch.x0.f_to_device(device)?, batch.x1.f_to_device(device)?);
            let (x0, x1) = if config.run.channels_last { (to_channels_last(&x0)?, to_channels_last(&x1)?) } else { (x0, x1) };
            let step = m.step(
                &x0,
                &x1,
                StepOptions {
                    precision: config.run.precision,
                    loss: config.loss,
                    scaler: pos.scaler.as_mut(),
                    check_finite: true,
                    group: group.as_ref(),
                    sync_batch_norm: config.run.sync_batch_norm,
                    accumulate,
                    last: index % accumulate == 0 || index >= batches,
                },
            );
            let out = match step {
                Ok(out) => out,
                Err(Error::NonFinite { step, value, last_good, .. }) => {
                    // The update was not applied: the model is still as after
                    // the last good step, so that is what the checkpoint holds.
                    let saved = match config.run.checkpoint_dir.as_ref().filter(|_| lead) {
                        Some(dir) => format!("; that state is saved in {}", checkpoint(&m, dir, &pos, config, loader, emit)?.display()),
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
            window_loss = (window_loss.0 + loss, window_loss.1 + 1);
            if !out.applied {
                continue;
            }
            // The step's loss: the mean over its micro-batches.
            let loss = window_loss.0 / window_loss.1.max(1) as f64;
            window_loss = (0.0, 0);
            let step = m.global_step;
            if step % config.run.log_every_n_steps == 0 || step == total {
                let now = Instant::now();
                let secs = now.duration_since(window.0).as_secs_f64();
                if secs > 0.0 {
                    // Images of all ranks: the run's throughput, not one process's.
                    rate = (step - window.1) as f64 * images_per_step / secs;
                }
                window = (now, step);
                let steps_per_second = rate / images_per_step;
                emit(Progress::Step(StepEvent {
                    step,
                    total_steps: total,
                    epoch: m.current_epoch,
                    batch: index as i64,
                    batches_per_epoch: batches_i,
                    loss,
                    learning_rate: lr,
                    momentum: out.momentum,
                    images_per_second: rate,
                    eta_seconds: (steps_per_second > 0.0).then(|| (total - step) as f64 / steps_per_second),
                    projection_std: out.projection_std()?,
                    loss_scale: pos.scaler.as_ref().map(|s| s.scale),
                    data_wait_fraction: if secs > 0.0 { (waited.as_secs_f64() / secs).min(1.0) } else { 0.0 },
                }));
                waited = Duration::ZERO;
            }
            let epoch_done = index >= batches;
            if epoch_done {
                let mean = pos.epoch_loss_sum / pos.epoch_loss_count.max(1) as f64;
                emit(Progress::Epoch { step, epoch: m.current_epoch, loss: mean });
                m.current_epoch += 1;
                pos.batch_in_epoch = 0;
                pos.epoch_loss_sum = 0.0;
                pos.epoch_loss_count = 0;
                if let (Some(every), Some(knn)) = (config.run.knn_every_n_epochs, &options.knn) {
                    if m.current_epoch % every == 0 {
                        if lead {
                            let accuracy = evaluate_knn(&mut m, knn, &mut |w| emit(Progress::Warning { message: w }))?;
                            emit(Progress::Knn { step, epoch: Some(m.current_epoch - 1), accuracy });
                        }
                        wait_for_lead(group.as_ref())?;
                    }
                }
            }
            if let (Some(dir), Some(every), true) = (&config.run.checkpoint_dir, config.run.checkpoint_every_n_steps, lead) {
                if step % every == 0 {
                    last_checkpoint = Some(checkpoint(&m, dir, &pos, config, loader, emit)?);
                }
            }
            if finished(&m) || epoch_done {
                break;
            }
        }
    }
    let m = lock(model)?;
    if let Some(dir) = config.run.checkpoint_dir.as_ref().filter(|_| lead) {
        let name = checkpoint_name(m.global_step);
        if last_checkpoint.as_ref().and_then(|p: &PathBuf| p.file_name()).map(|n| n.to_string_lossy() != name).unwrap_or(true) {
            last_checkpoint = Some(checkpoint(&m, dir, &pos, config, loader, emit)?);
        }
    }
    Ok(FitResult {
        stop: Stop::Finished,
        global_step: m.global_step,
        current_epoch: m.current_epoch,
        last_checkpoint,
        warnings: warnings.take(),
        rank,
        world_size,
        log_dir,
        backend,
    })
}

/// What the loggers record as the run's hyperparameters: the model's
/// architecture, the optimiser and schedule it trains with, the batch, the
/// precision and the length; then `extra`'s, which win by name.
fn hparams(
    m: &Byol,
    config: &TrainerConfig,
    loader: &DataLoader,
    world_size: usize,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::json;
    // Named as the Node package's options are, so that a script's own
    // hyperparameters (and the CLI's flags) use the same names.
    let mut h = serde_json::Map::new();
    if let serde_json::Value::Object(a) = m.architecture() {
        for (k, v) in a.into_iter().filter(|(_, v)| !v.is_null()) {
            let name = match k.as_str() {
                "projection_head" => "projectionHead".to_string(),
                "prediction_head" => "predictionHead".to_string(),
                _ => k,
            };
            h.insert(name, v);
        }
    }
    if let Some(o) = m.optimizer_config() {
        h.insert("optimizer".into(), json!(o.kind.name()));
        h.insert("lr".into(), json!(o.lr));
        h.insert("weightDecay".into(), json!(o.weight_decay));
        h.insert("momentum".into(), json!(o.momentum));
    }
    let r = &config.run;
    h.extend([
        ("lrSchedule".to_string(), json!(config.lr_schedule.name())),
        ("warmupSteps".into(), json!(config.warmup_steps)),
        ("warmupEpochs".into(), json!(config.warmup_epochs)),
        ("loss".into(), json!(config.loss.name())),
        ("baseMomentum".into(), json!(m.base_momentum())),
        ("momentumSchedule".into(), json!(m.momentum_schedule.name())),
        ("batchSize".into(), json!(loader.config.batch_size)),
        ("accumulateGradBatches".into(), json!(r.accumulate_grad_batches)),
        ("worldSize".into(), json!(world_size)),
        ("syncBatchNorm".into(), json!(r.sync_batch_norm)),
        ("precision".into(), json!(r.precision.name())),
        ("maxEpochs".into(), json!(r.max_epochs)),
        ("maxSteps".into(), json!(r.max_steps)),
        ("seed".into(), json!(r.seed)),
    ]);
    h.extend(extra.clone());
    h
}

/// The process group `fit` trains in, as the strategy and the launcher's
/// environment say; `None` to train alone.
fn join_group(config: &TrainerConfig) -> Result<Option<ProcessGroup>> {
    let env = match config.run.strategy {
        Strategy::Single => return Ok(None),
        Strategy::Auto => DistEnv::from_env()?,
        Strategy::Ddp => Some(DistEnv::from_env()?.ok_or_else(|| {
            Error::invalid(
                "strategy",
                "a launcher's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) with 'ddp': start the processes with torchrun or byol-torch train --nproc-per-node",
                "WORLD_SIZE not set",
            )
        })?),
    };
    let Some(env) = env else { return Ok(None) };
    let options = GroupOptions {
        timeout: Duration::from_secs_f64(config.run.collective_timeout),
        backend: config.run.backend,
        device: config.run.device,
        ..GroupOptions::default()
    };
    ProcessGroup::join(&env, options).map(Some)
}

/// The checkpoint `fit` starts from: the one asked for; with `resume_auto`,
/// or under a launcher that restarts workers, the run's checkpoint folder
/// when it holds one (`resume` takes its newest readable checkpoint).
fn resume_source(options: &FitOptions, config: &TrainerConfig, under_launcher: bool) -> Option<PathBuf> {
    if let Some(path) = &options.resume_from {
        return Some(path.clone());
    }
    if !(options.resume_auto || under_launcher) {
        return None;
    }
    config.run.checkpoint_dir.as_ref().filter(|dir| !crate::train::checkpoint::list_checkpoints(dir).is_empty()).cloned()
}

/// Whether `flag` is set on any rank: an abort (SIGTERM to one process or
/// to all) stops every rank at the same step, so that the checkpoint rank 0
/// writes is the state of all of them.
fn any_rank(group: &ProcessGroup, flag: bool) -> Result<bool> {
    let t = tch::Tensor::from_slice(&[if flag { 1f32 } else { 0f32 }]);
    group.all_reduce_mean_(&[&t])?;
    Ok(t.f_double_value(&[0])? > 0.0)
}

/// Holds every rank until rank 0 has finished what it does alone (kNN
/// evaluation), which may take longer than a collective's timeout.
fn wait_for_lead(group: Option<&ProcessGroup>) -> Result<()> {
    match group {
        Some(g) => g.barrier(Some(EVALUATION_WAIT)),
        None => Ok(()),
    }
}

/// Writes a checkpoint and reports it. A checkpoint folder removed during the
/// run, before the write or while it wrote, is made again, with a warning.
fn checkpoint(
    m: &Byol,
    dir: &Path,
    pos: &Position,
    config: &TrainerConfig,
    loader: &DataLoader,
    emit: &mut dyn FnMut(Progress),
) -> Result<PathBuf> {
    let removed = |emit: &mut dyn FnMut(Progress)| {
        emit(Progress::Warning { message: format!("the checkpoint folder {} was removed during the run; it is made again", dir.display()) })
    };
    if !dir.is_dir() {
        removed(emit);
    }
    let path = match save(m, dir, pos, config, loader) {
        Err(_) if !dir.is_dir() => {
            removed(emit);
            save(m, dir, pos, config, loader)?
        }
        result => result?,
    };
    emit(Progress::Checkpoint { step: m.global_step, epoch: m.current_epoch, path: path.display().to_string() });
    Ok(path)
}

/// kNN accuracy of the model's backbone (in eval mode); `warn` hears of
/// images that could not be read.
pub fn evaluate_knn(m: &mut Byol, knn: &KnnEval, warn: &mut dyn FnMut(String)) -> Result<f64> {
    let device = m.device();
    let backbone = &m.backbone;
    let train = embed(knn.train, device, |x| backbone.forward(x, false))?;
    let test = embed(knn.test, device, |x| backbone.forward(x, false))?;
    for item in train.skipped.iter().chain(&test.skipped) {
        warn(format!("kNN evaluation skipped an unreadable image: {item}"));
    }
    let rows = train.features.size()[0];
    if knn.config.neighbours(rows) < knn.config.k {
        warn(format!("kNN: k={} is more than the {rows} training images; all {rows} vote (k is capped at their number)", knn.config.k));
    }
    knn_accuracy(&train.features, &train.labels, &test.features, &test.labels, &knn.config)
}

//! `new Trainer(options)`.
use crate::enums::{Backend, Logger, Loss, LrSchedule, Precision, Recipe, Strategy};
use crate::options::optimizer::OptimizerConfig;
use crate::tensor::device;
use byol::optim::OptimizerOptions;
use byol::train::{RunOptions, TrainerOptions as CoreTrainerOptions};
use napi_derive::napi;
use std::path::PathBuf;

/// Lightning's `Trainer` options for BYOL. Each one left out takes its default.
#[napi(object)]
#[derive(Clone)]
pub struct TrainerOptions {
    /// Stop after this many epochs (Lightning's `max_epochs`). At least one of `maxEpochs`, `maxSteps`.
    pub max_epochs: Option<i64>,
    /// Stop after this many optimiser steps (`max_steps`).
    pub max_steps: Option<i64>,
    /// Where the model trains: `'cpu'`, `'cuda'`, `'cuda:N'` or `'auto'`; the model is moved there. Default `'cpu'`.
    #[napi(ts_type = "'cpu' | 'cuda' | `cuda:${number}` | 'auto'")]
    pub device: Option<String>,
    /// `'32'`, `'bf16-mixed'` (bfloat16 autocast) or `'16-mixed'` (float16 autocast, dynamic loss scaler). Default `'32'`.
    pub precision: Option<Precision>,
    /// Progress events (and `metrics`) every this many steps. Default `50`, as Lightning.
    pub log_every_n_steps: Option<i64>,
    /// Folder for checkpoints (made if missing; must be writable, checked before training).
    pub checkpoint_dir: Option<String>,
    /// Checkpoint every this many steps; a checkpoint is also written at the end and on abort.
    pub checkpoint_every_n_steps: Option<i64>,
    /// Checkpoints kept, newest first. Default `3`.
    pub keep_checkpoints: Option<i64>,
    /// Seeds libtorch's generator when `fit` starts (`seed_everything`); the data order and augmentations follow the loader's seed. Default `0`.
    pub seed: Option<i64>,
    /// `'minerva'`: minerva's `configure_optimizers`, plain SGD at the model's `learningRate`, constant. `'paper'`: the BYOL paper's LARS recipe. Options given next to a recipe override it. Default `'minerva'`.
    pub recipe: Option<Recipe>,
    /// The optimiser and its settings; each one given wins over the recipe's.
    pub optimizer: Option<OptimizerConfig>,
    /// `'constant'`, or `'cosine'`: linear warm-up, then cosine decay to 0 per step. Default: the recipe's (`'constant'` for minerva).
    pub lr_schedule: Option<LrSchedule>,
    /// Warm-up steps of the cosine schedule. Default `0`.
    pub warmup_steps: Option<i64>,
    /// Warm-up in epochs, added to `warmupSteps`. Default: the recipe's (0; the paper recipe 10, capped at a tenth of the run).
    pub warmup_epochs: Option<f64>,
    /// `'minerva'`: `0.5 * (-cos(p0, z1) - cos(p1, z0))`; `'paper'`: `(2 - 2cos) + (2 - 2cos)`. Default: the recipe's.
    pub loss: Option<Loss>,
    /// Lay convolution weights and inputs out as channels_last (faster low-precision convolutions). Default `false`.
    pub channels_last: Option<bool>,
    /// Evaluate kNN accuracy every this many epochs; needs `fit(..., { knn })`.
    pub knn_every_n_epochs: Option<i64>,
    /// τ at the start of the momentum schedule, which rises to 1 (cosine). Default: the model's (0.996). Short runs learn faster with 0.99 or less.
    pub base_momentum: Option<f64>,
    /// Lightning's `fast_dev_run`: stop after at most this many steps, to smoke-test a script. Default: the environment variable `BYOL_TORCH_FAST_DEV_RUN` if set, else no cap.
    pub fast_dev_run: Option<i64>,
    /// Data-parallel training over processes (PyTorch's DistributedDataParallel on c10d): `'auto'` joins the group a launcher (`torchrun`, `byol-torch train --nproc-per-node`, Slurm) describes in `RANK`, `WORLD_SIZE`, `MASTER_ADDR` and `MASTER_PORT`; `'single'` never does; `'ddp'` requires it. Default `'auto'`.
    pub strategy: Option<Strategy>,
    /// In data-parallel training, what carries the collectives: `'auto'` NCCL when training on CUDA and Gloo on the CPU, as `torch.distributed.init_process_group(backend=None)` chooses; `'gloo'` Gloo for every tensor; `'nccl'` NCCL for CUDA tensors (an `ERR_BYOL_DISTRIBUTED` on a host without CUDA). Gloo always carries the trainer's own CPU flags. Default `'auto'`.
    pub backend: Option<Backend>,
    /// In data-parallel training, the longest a rank waits for the others in a collective, in seconds: how soon a rank that died or hangs is reported. Default `60`.
    pub collective_timeout: Option<f64>,
    /// In data-parallel training, BatchNorm computes its batch statistics over all ranks, as `torch.nn.SyncBatchNorm` (a global batch for the statistics at the cost of two small all-reduces per layer and view, forward and backward). Default `false`: per process, as DistributedDataParallel's default.
    pub sync_batch_norm: Option<bool>,
    /// Lightning's `accumulate_grad_batches`: one optimiser and EMA step per this many batches, their gradients averaged (each loss divided by it), BatchNorm per batch; with data-parallel training the gradients are all-reduced once per step. Progress events and `maxSteps` count optimiser steps. Default `1`.
    pub accumulate_grad_batches: Option<i64>,
    /// Data-parallel training in this many processes on this host, started by `fit` itself (Lightning's `devices` with DDP): this process becomes rank 0 and the script runs again in the others with a launcher's environment, their output prefixed with `[rank N]`; on a GPU host each takes `cuda:LOCAL_RANK`. Ignored in a process a launcher started. Default `1`.
    pub devices: Option<i64>,
    /// Lightning's loggers, written by rank 0 in `logDir` as training goes: `'jsonl'` appends every progress event to `metrics.jsonl` (what `byol-torch report` draws), `'tensorboard'` writes `events.out.tfevents.*` (the scalars under Lightning's names, `train_loss`, `lr`, `momentum`, `knn_accuracy`, ..., the hyperparameters for the HParams dashboard, and a grid of augmented view pairs). Default `[]`: progress events only.
    pub logger: Option<Vec<Logger>>,
    /// The folder the loggers write in (made if missing). Default: the next free `byol_logs/version_N` of the working directory, as Lightning's `lightning_logs`.
    pub log_dir: Option<String>,
}

impl TryFrom<TrainerOptions> for CoreTrainerOptions {
    type Error = byol::Error;

    fn try_from(o: TrainerOptions) -> byol::Result<Self> {
        let d = CoreTrainerOptions::default();
        let r = d.run;
        Ok(CoreTrainerOptions {
            run: RunOptions {
                max_epochs: o.max_epochs.or(r.max_epochs),
                max_steps: o.max_steps.or(r.max_steps),
                device: o.device.as_deref().map_or(Ok(r.device), |n| device(Some(n)))?,
                precision: o.precision.map_or(r.precision, Into::into),
                log_every_n_steps: o.log_every_n_steps.unwrap_or(r.log_every_n_steps),
                checkpoint_dir: o.checkpoint_dir.map(PathBuf::from).or(r.checkpoint_dir),
                checkpoint_every_n_steps: o.checkpoint_every_n_steps.or(r.checkpoint_every_n_steps),
                keep_checkpoints: match o.keep_checkpoints {
                    Some(n) => usize::try_from(n).map_err(|_| byol::Error::range("keepCheckpoints", "an integer >= 1", n))?,
                    None => r.keep_checkpoints,
                },
                seed: match o.seed {
                    Some(s) => u64::try_from(s).map_err(|_| byol::Error::range("seed", "an integer >= 0", s))?,
                    None => r.seed,
                },
                base_momentum: o.base_momentum.or(r.base_momentum),
                channels_last: o.channels_last.unwrap_or(r.channels_last),
                knn_every_n_epochs: o.knn_every_n_epochs.or(r.knn_every_n_epochs),
                fast_dev_run: o.fast_dev_run.or(r.fast_dev_run),
                strategy: o.strategy.map_or(r.strategy, Into::into),
                backend: o.backend.map_or(r.backend, Into::into),
                collective_timeout: o.collective_timeout.unwrap_or(r.collective_timeout),
                sync_batch_norm: o.sync_batch_norm.unwrap_or(r.sync_batch_norm),
                devices: match o.devices {
                    Some(n) => {
                        usize::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| byol::Error::range("devices", "an integer >= 1", n))?
                    }
                    None => r.devices,
                },
                accumulate_grad_batches: match o.accumulate_grad_batches {
                    Some(n) => usize::try_from(n)
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| byol::Error::range("accumulateGradBatches", "an integer >= 1", n))?,
                    None => r.accumulate_grad_batches,
                },
                logger: o.logger.map_or(r.logger, |l| l.into_iter().map(Into::into).collect()),
                log_dir: o.log_dir.map(PathBuf::from).or(r.log_dir),
            },
            recipe: o.recipe.map_or(d.recipe, Into::into),
            optimizer: o.optimizer.map(OptimizerOptions::try_from).transpose()?.unwrap_or(d.optimizer),
            lr_schedule: o.lr_schedule.map(Into::into).or(d.lr_schedule),
            warmup_steps: o.warmup_steps.or(d.warmup_steps),
            warmup_epochs: o.warmup_epochs.or(d.warmup_epochs),
            loss: o.loss.map(Into::into).or(d.loss),
        })
    }
}

//! Training checkpoints. Each is a folder `step-00000120/` holding
//! `model.safetensors` (loadable by `Byol::load` and by PyTorch),
//! `optimizer.safetensors` (the optimiser's buffers) and `trainer.json`
//! (everything else, with the size and CRC-32 of both files). The folder is
//! written under a temporary name and renamed, so a checkpoint either exists
//! whole or not at all; a run resumed from one repeats the uninterrupted run.
use crate::error::{Error, Result};
use crate::loader::DataLoader;
use crate::model::{Byol, MomentumSchedule};
use crate::optim::{GradScaler, OptimizerConfig};
use crate::tensor::io::{load_safetensors, save_safetensors, write_atomically, Loaded};
use crate::train::config::TrainerConfig;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "trainer.json";

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct FileCheck {
    pub bytes: u64,
    pub crc32: u32,
}

fn check_of(path: &Path) -> Result<FileCheck> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    Ok(FileCheck { bytes: bytes.len() as u64, crc32: crc32fast::hash(&bytes) })
}

/// Name of the checkpoint folder of `step`.
pub fn checkpoint_name(step: i64) -> String {
    format!("step-{step:08}")
}

fn step_of(name: &str) -> Option<i64> {
    name.strip_prefix("step-")?.parse().ok()
}

/// Checkpoint folders in `dir`, newest first.
pub fn list_checkpoints(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut found: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            Some((step_of(&name)?, e.path()))
        })
        .filter(|(_, p)| p.is_dir())
        .collect();
    found.sort_by_key(|(step, _)| std::cmp::Reverse(*step));
    found
}

/// Fails unless files can be created in `dir` (made if missing): checked before
/// training starts, not at the first checkpoint.
pub fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("checkpointDir cannot be created: {e}")))?;
    let probe = dir.join(format!(".write-test.{}", std::process::id()));
    std::fs::write(&probe, b"ok").map_err(|e| Error::file(dir, format!("checkpointDir is not writable: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes a checkpoint folder for `step` in `dir` and keeps the newest `keep`.
/// `state` receives the file checks under `"files"`.
pub fn write_checkpoint(
    dir: &Path,
    step: i64,
    model: (&[(String, Tensor)], HashMap<String, String>),
    optimizer: &[(String, Tensor)],
    mut state: serde_json::Value,
    keep: usize,
) -> Result<PathBuf> {
    let final_dir = dir.join(checkpoint_name(step));
    let tmp = dir.join(format!(".{}.tmp-{}", checkpoint_name(step), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::file(&tmp, format!("cannot create: {e}")))?;
    let result = (|| -> Result<()> {
        save_safetensors(model.0, Some(model.1), &tmp.join(MODEL_FILE))?;
        save_safetensors(optimizer, None, &tmp.join(OPTIMIZER_FILE))?;
        let files = serde_json::json!({
            MODEL_FILE: check_of(&tmp.join(MODEL_FILE))?,
            OPTIMIZER_FILE: check_of(&tmp.join(OPTIMIZER_FILE))?,
        });
        state["files"] = files;
        let text = serde_json::to_vec_pretty(&state).map_err(|e| Error::file(&tmp, e))?;
        write_atomically(&tmp.join(STATE_FILE), &text)?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(|e| Error::file(&final_dir, format!("cannot replace: {e}")))?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(|e| Error::file(&final_dir, format!("cannot rename into place: {e}")))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        // Named after the checkpoint, not the temporary file that failed.
        return Err(match e {
            Error::File { message, .. } => {
                Error::file(&final_dir, format!("the checkpoint could not be written ({message}); the checkpoints before it are kept"))
            }
            e => e,
        });
    }
    for (_, old) in list_checkpoints(dir).into_iter().skip(keep.max(1)) {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(final_dir)
}

/// A checkpoint read back whole and checked.
pub struct ReadCheckpoint {
    pub path: PathBuf,
    pub model: Loaded,
    pub optimizer: Vec<(String, Tensor)>,
    pub state: serde_json::Value,
}

fn read_checkpoint(path: &Path) -> std::result::Result<ReadCheckpoint, String> {
    let text = std::fs::read(path.join(STATE_FILE)).map_err(|e| format!("{STATE_FILE} cannot be read ({e})"))?;
    let state: serde_json::Value = serde_json::from_slice(&text).map_err(|e| format!("{STATE_FILE} is not valid JSON ({e})"))?;
    for name in [MODEL_FILE, OPTIMIZER_FILE] {
        let expected: FileCheck =
            serde_json::from_value(state["files"][name].clone()).map_err(|_| format!("{STATE_FILE} has no check of {name}"))?;
        let seen = check_of(&path.join(name)).map_err(|e| e.to_string())?;
        if seen.bytes != expected.bytes {
            return Err(format!("{name} is truncated or was changed ({} bytes, {} expected)", seen.bytes, expected.bytes));
        }
        if seen.crc32 != expected.crc32 {
            return Err(format!("{name} is corrupt (CRC-32 {:08x}, {:08x} expected)", seen.crc32, expected.crc32));
        }
    }
    let model = load_safetensors(&path.join(MODEL_FILE)).map_err(|e| e.to_string())?;
    let optimizer = load_safetensors(&path.join(OPTIMIZER_FILE)).map_err(|e| e.to_string())?.tensors;
    Ok(ReadCheckpoint { path: path.to_path_buf(), model, optimizer, state })
}

/// Reads the checkpoint at `path` (a checkpoint folder, or a folder of them
/// meaning the newest). An unreadable one is passed over for the next older,
/// with a warning saying so; none readable is an error listing why.
pub fn read_checkpoint_with_fallback(path: &Path) -> Result<(ReadCheckpoint, Vec<String>)> {
    let candidates: Vec<PathBuf> = if path.join(STATE_FILE).exists()
        || step_of(&path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()).is_some()
    {
        let step = path.file_name().and_then(|n| step_of(&n.to_string_lossy())).unwrap_or(i64::MAX);
        let mut c = vec![path.to_path_buf()];
        if let Some(parent) = path.parent() {
            c.extend(list_checkpoints(parent).into_iter().filter(|(s, _)| *s < step).map(|(_, p)| p));
        }
        c
    } else if path.is_dir() {
        list_checkpoints(path).into_iter().map(|(_, p)| p).collect()
    } else {
        return Err(Error::Checkpoint(format!(
            "resumeFrom: {} is neither a checkpoint folder nor a folder of checkpoints",
            path.display()
        )));
    };
    if candidates.is_empty() {
        return Err(Error::Checkpoint(format!("resumeFrom: no checkpoint (step-*/ folder) in {}", path.display())));
    }
    let mut warnings = Vec::new();
    let mut reasons = Vec::new();
    for c in &candidates {
        match read_checkpoint(c) {
            Ok(read) => {
                if !reasons.is_empty() {
                    warnings.push(format!("resumed from {} because {}", c.display(), reasons.join("; ")));
                }
                return Ok((read, warnings));
            }
            Err(why) => reasons.push(format!("{} is unusable: {why}", c.display())),
        }
    }
    Err(Error::Checkpoint(format!("resumeFrom: no usable checkpoint left: {}", reasons.join("; "))))
}

/// Where the run is, beyond what the model holds.
pub(crate) struct Position {
    pub batch_in_epoch: usize,
    pub epoch_loss_sum: f64,
    pub epoch_loss_count: i64,
    pub base_lr: f64,
    pub scaler: Option<GradScaler>,
}

pub(crate) fn save(model: &Byol, dir: &Path, pos: &Position, config: &TrainerConfig, loader: &DataLoader) -> Result<PathBuf> {
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
        "precision": config.run.precision.name(),
        "loss": config.loss.name(),
        // All randomness of a run comes from this seed: the data order and each
        // batch's augmentations are drawn from ChaCha8(seed, epoch, batch index),
        // and the training step itself draws nothing.
        "rng": {"seed": loader.config.seed, "scheme": "chacha8(seed, epoch, batch)"},
        "data": {"epoch": model.current_epoch, "batch": pos.batch_in_epoch, "batch_size": loader.config.batch_size,
                 "dataset_len": loader.dataset().len(), "shuffle": loader.config.shuffle,
                 "world_size": loader.config.shard.1},
    });
    let optimizer_state = optimizer.state_tensors();
    write_checkpoint(
        dir,
        model.global_step,
        (&model.state_dict(), model.metadata(&dir.join(checkpoint_name(model.global_step)))),
        &optimizer_state,
        state,
        config.run.keep_checkpoints,
    )
}

/// Restores model, optimiser and position from a checkpoint; nothing changes
/// when the checkpoint does not fit the model.
pub(crate) fn resume(model: &mut Byol, path: &Path, loader: &DataLoader, warnings: &mut Vec<String>) -> Result<Position> {
    let (read, mut w) = read_checkpoint_with_fallback(path)?;
    warnings.append(&mut w);
    let s = &read.state;
    // Each rank's share of an epoch, and so the data order, depends on the
    // number of processes: another number cannot continue the same run.
    let saved_world = s["data"]["world_size"].as_u64().unwrap_or(1);
    if saved_world != loader.config.shard.1 as u64 {
        return Err(Error::Checkpoint(format!(
            "{} was saved by a run of {saved_world} process(es); this run has {}: resume with the same number of processes",
            read.path.display(),
            loader.config.shard.1
        )));
    }
    let opt_config: OptimizerConfig = serde_json::from_value(s["optimizer"].clone())
        .map_err(|e| Error::Checkpoint(format!("trainer.json: the optimizer entry is not usable: {e}")))?;
    let steps = s.get("optimizer_steps").and_then(|v| v.as_i64()).unwrap_or(0);
    model
        .load_state_dict(&read.model.tensors)
        .map_err(|e| Error::Checkpoint(format!("{} was saved from another architecture than this model's: {e}", read.path.display())))?;
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
    model.install_optimizer(opt_config)?;
    let params: Vec<Tensor> = model.trainable().map(Tensor::shallow_clone).collect();
    let optimizer = model.optimizer_mut().ok_or_else(|| Error::State("no optimiser".into()))?;
    optimizer.load_state_tensors(&read.optimizer, &params)?;
    optimizer.steps = steps;
    let data = &s["data"];
    if data["batch_size"].as_u64() != Some(loader.config.batch_size as u64)
        || data["dataset_len"].as_u64() != Some(loader.dataset().len() as u64)
    {
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

//! Named tensors to and from safetensors files, written atomically.
use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

struct HostTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &HostTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn dtype_of(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Bool => Dtype::BOOL,
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Int16 => Dtype::I16,
        Kind::Int => Dtype::I32,
        Kind::Int64 => Dtype::I64,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Half => Dtype::F16,
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        other => return Err(Error::invalid("tensor", "a tensor of a safetensors dtype", format!("{other:?}"))),
    })
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::BOOL => Kind::Bool,
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::I16 => Kind::Int16,
        Dtype::I32 => Kind::Int,
        Dtype::I64 => Kind::Int64,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F16 => Kind::Half,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        _ => return None,
    })
}

fn to_host(t: &Tensor) -> Result<HostTensor> {
    let t = t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?;
    let kind = t.f_kind()?;
    let numel = t.numel();
    let mut bytes = vec![0u8; numel * kind.elt_size_in_bytes()];
    t.f_copy_data_u8(&mut bytes, numel)?;
    Ok(HostTensor { dtype: dtype_of(kind)?, shape: t.size().iter().map(|&d| d as usize).collect(), bytes })
}

/// Writes `tensors` to `path` via a temporary file in the same folder and a
/// rename, so a failed or killed write never leaves a partial file at `path`.
pub fn save_safetensors(tensors: &[(String, Tensor)], metadata: Option<HashMap<String, String>>, path: &Path) -> Result<()> {
    let host = tensors.iter().map(|(k, t)| Ok((k.clone(), to_host(t)?))).collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::tensor::serialize(host.iter().map(|(k, t)| (k.as_str(), t)), metadata)
        .map_err(|e| Error::file(path, format!("cannot serialise: {e}")))?;
    write_atomically(path, &bytes)
}

pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::file(path, format!("the folder {} does not exist", dir.display())));
    }
    let name = path.file_name().ok_or_else(|| Error::file(path, "not a file path"))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::file(path, format!("cannot write: {e}")));
    }
    Ok(())
}

pub struct Loaded {
    pub tensors: Vec<(String, Tensor)>,
    pub metadata: HashMap<String, String>,
}

/// Reads a safetensors file; a truncated or foreign file is a `File` error.
pub fn load_safetensors(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::file(path, format!("not a valid safetensors file (truncated or another format): {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        let kind = kind_of(view.dtype())
            .ok_or_else(|| Error::file(path, format!("tensor '{name}' has unsupported dtype {:?}", view.dtype())))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        tensors.push((name, Tensor::f_from_data_size(view.data(), &shape, kind)?));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Loaded { tensors, metadata })
}

// ------------------------------------------------------------ training checkpoints
//
// A training checkpoint is a folder `step-00000120/` holding `model.safetensors`
// (loadable by `Byol::load` and by PyTorch), `optimizer.safetensors` (the
// optimiser's buffers) and `trainer.json` (everything else, with the size and
// CRC-32 of both files). The folder is written under a temporary name and
// renamed, so a checkpoint either exists whole or not at all.

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
    found.sort_by(|a, b| b.0.cmp(&a.0));
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
        return Err(e);
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
        let expected: FileCheck = serde_json::from_value(state["files"][name].clone()).map_err(|_| format!("{STATE_FILE} has no check of {name}"))?;
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
    let candidates: Vec<PathBuf> = if path.join(STATE_FILE).exists() || step_of(&path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()).is_some() {
        let step = path.file_name().and_then(|n| step_of(&n.to_string_lossy())).unwrap_or(i64::MAX);
        let mut c = vec![path.to_path_buf()];
        if let Some(parent) = path.parent() {
            c.extend(list_checkpoints(parent).into_iter().filter(|(s, _)| *s < step).map(|(_, p)| p));
        }
        c
    } else if path.is_dir() {
        list_checkpoints(path).into_iter().map(|(_, p)| p).collect()
    } else {
        return Err(Error::Checkpoint(format!("resumeFrom: {} is neither a checkpoint folder nor a folder of checkpoints", path.display())));
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

//! Named tensors to and from safetensors files, and files written atomically
//! (a temporary name, then a rename), so that a failed or killed write never
//! leaves a partial file.
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

/// Writes `t` as NumPy's `.npy` (float32 or int64; `numpy.load` reads it),
/// atomically as `save_safetensors`.
pub fn save_npy(t: &Tensor, path: &Path) -> Result<()> {
    use npyz::WriterBuilder;
    let t = t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?;
    let shape: Vec<u64> = t.size().iter().map(|&d| d as u64).collect();
    let mut bytes = Vec::new();
    let cannot = |e: std::io::Error| Error::file(path, format!("cannot serialise: {e}"));
    match t.f_kind()? {
        Kind::Float => {
            let values = Vec::<f32>::try_from(t.f_flatten(0, -1)?)?;
            let mut w = npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut bytes).begin_nd().map_err(cannot)?;
            w.extend(values).map_err(cannot)?;
            w.finish().map_err(cannot)?;
        }
        Kind::Int64 => {
            let values = Vec::<i64>::try_from(t.f_flatten(0, -1)?)?;
            let mut w = npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut bytes).begin_nd().map_err(cannot)?;
            w.extend(values).map_err(cannot)?;
            w.finish().map_err(cannot)?;
        }
        other => return Err(Error::invalid("tensor", "a float32 or int64 tensor for .npy", format!("{other:?}"))),
    }
    write_atomically(path, &bytes)
}

pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_atomically(path, |tmp| {
        use std::io::Write;
        let mut f = std::fs::File::create(tmp).map_err(|e| Error::file(path, format!("cannot write: {e}")))?;
        f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| Error::file(path, format!("cannot write: {e}")))
    })
}

/// Makes `path` by `write` into a temporary file beside it, then a rename:
/// a failed or killed write never leaves a partial file at `path`. For
/// writers that need a path of their own (libtorch's `save`).
pub fn replace_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::file(path, format!("the folder {} does not exist", dir.display())));
    }
    let name = path.file_name().ok_or_else(|| Error::file(path, "not a file path"))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = write(&tmp).and_then(|_| std::fs::rename(&tmp, path).map_err(|e| Error::file(path, format!("cannot write: {e}"))));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        let kind =
            kind_of(view.dtype()).ok_or_else(|| Error::file(path, format!("tensor '{name}' has unsupported dtype {:?}", view.dtype())))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        tensors.push((name, Tensor::f_from_data_size(view.data(), &shape, kind)?));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Loaded { tensors, metadata })
}

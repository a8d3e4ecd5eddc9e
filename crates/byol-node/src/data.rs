//! `NativeDataset`, `NativeDataLoader` and the batches it hands out.
use crate::enums::Layout;
use crate::error::{poisoned, OrThrow};
use crate::options::loader::LoaderOptions;
use crate::tensor::NativeTensor;
use crate::transforms::NativeByolTransform;
use crate::worker;
use byol::data::{Dataset, ImageFolder, Subset, TensorDataset};
use byol::loader::{Batch, Epoch};
use byol::tch::Tensor;
use byol::{DataLoader, LoaderConfig};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[napi]
pub struct NativeDataset {
    pub(crate) inner: Arc<dyn Dataset>,
    classes: Vec<String>,
}

#[napi]
impl NativeDataset {
    #[napi(factory)]
    pub fn from_tensor(env: &Env, images: &NativeTensor, labels: Option<Vec<i64>>, layout: Option<Layout>) -> Result<Self> {
        let nhwc = layout == Some(Layout::Nhwc);
        let d = images.get().and_then(|x| TensorDataset::new(x, labels, nhwc)).or_throw(env)?;
        Ok(Self { inner: Arc::new(d), classes: Vec::new() })
    }

    /// The items at `indices` (`torch.utils.data.Subset`).
    #[napi]
    pub fn subset(&self, env: &Env, indices: Vec<u32>) -> Result<NativeDataset> {
        let subset = Subset::new(Arc::clone(&self.inner), indices.into_iter().map(|i| i as usize).collect()).or_throw(env)?;
        Ok(NativeDataset { inner: Arc::new(subset), classes: self.classes.clone() })
    }

    #[napi(factory)]
    pub fn image_folder(env: &Env, root: String, extensions: Option<Vec<String>>) -> Result<Self> {
        let extensions = extensions.unwrap_or_else(ImageFolder::default_extensions);
        let d = ImageFolder::new(Path::new(&root), &extensions).or_throw(env)?;
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

    /// The file of each item, for datasets of files (`ImageFolder` and its subsets); null otherwise.
    #[napi(getter)]
    pub fn paths(&self) -> Option<Vec<String>> {
        (0..self.inner.len()).map(|i| self.inner.path(i).map(|p| p.display().to_string())).collect()
    }

    /// Item `index` as `[3, H, W]` uint8; null if it cannot be read.
    #[napi]
    pub fn get(&self, env: &Env, index: u32) -> Result<Option<NativeTensor>> {
        let item = self.inner.item(index as usize).or_throw(env)?;
        Ok(item.ok().map(|s| NativeTensor::wrap(env, s.image)))
    }
}

/// One batch: two views, labels, and what could not be read.
#[napi]
pub struct NativeBatch {
    x0: Option<Tensor>,
    x1: Option<Tensor>,
    labels: Vec<i64>,
    skipped: Vec<String>,
}

impl From<Batch> for NativeBatch {
    fn from(b: Batch) -> Self {
        Self { x0: Some(b.x0), x1: Some(b.x1), labels: b.labels, skipped: b.skipped }
    }
}

#[napi]
impl NativeBatch {
    #[napi]
    pub fn views(&mut self, env: &Env) -> Vec<NativeTensor> {
        [self.x0.take(), self.x1.take()].into_iter().flatten().map(|t| NativeTensor::wrap(env, t)).collect()
    }

    #[napi(getter)]
    pub fn labels(&self) -> Vec<i64> {
        self.labels.clone()
    }

    /// The images that could not be read: each path and why.
    #[napi(getter)]
    pub fn skipped(&self) -> Vec<String> {
        self.skipped.clone()
    }
}

type OpenEpoch = Arc<Mutex<Option<Epoch>>>;

#[napi]
pub struct NativeDataLoader {
    loader: Arc<Mutex<DataLoader>>,
    epoch: OpenEpoch,
}

impl NativeDataLoader {
    /// The loader as it is now, for a run on another thread.
    pub(crate) fn snapshot(&self) -> byol::Result<DataLoader> {
        Ok(self.loader.lock().map_err(|_| poisoned())?.clone())
    }
}

#[napi]
impl NativeDataLoader {
    #[napi(constructor)]
    pub fn new(env: &Env, dataset: &NativeDataset, options: LoaderOptions, transform: Option<&NativeByolTransform>) -> Result<Self> {
        let config =
            LoaderConfig { transform: transform.map(|t| t.inner.config.clone()), ..LoaderConfig::try_from(options).or_throw(env)? };
        let loader = DataLoader::new(Arc::clone(&dataset.inner), config).or_throw(env)?;
        Ok(Self { loader: Arc::new(Mutex::new(loader)), epoch: Arc::new(Mutex::new(None)) })
    }

    #[napi(getter)]
    pub fn num_batches(&self, env: &Env) -> Result<u32> {
        Ok(self.snapshot().or_throw(env)?.num_batches() as u32)
    }

    /// Starts a new epoch (ending any open one): workers begin to prefetch.
    #[napi]
    pub fn start_epoch(&self, env: &Env) -> Result<()> {
        let epoch = self.loader.lock().map_err(|_| poisoned()).or_throw(env)?.epoch();
        *self.epoch.lock().map_err(|_| poisoned()).or_throw(env)? = Some(epoch);
        Ok(())
    }

    /// The next batch of the open epoch, waited for on a thread of the
    /// addon's own; null at the end of the epoch.
    #[napi(ts_return_type = "Promise<NativeBatch | null>")]
    pub fn next<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let epoch = Arc::clone(&self.epoch);
        let work = move || {
            let mut guard = epoch.lock().map_err(|_| poisoned())?;
            let Some(e) = guard.as_mut() else { return Ok(None) };
            let next = e.next_batch()?;
            if next.is_none() {
                *guard = None;
            }
            Ok(next)
        };
        worker::spawn(env, "loader", 1, work, |_, batch: Option<Batch>| Ok(batch.map(NativeBatch::from)))
    }

    /// Ends the open epoch and stops its workers.
    #[napi]
    pub fn close(&self, env: &Env) -> Result<()> {
        *self.epoch.lock().map_err(|_| poisoned()).or_throw(env)? = None;
        Ok(())
    }
}

/// Writes a `[C, H, W]` image (uint8, or float in [0, 1]; C = 1 or 3) as a PNG, atomically.
#[napi]
pub fn save_image(env: &Env, image: &NativeTensor, path: String) -> Result<()> {
    image.get().and_then(|x| byol::data::save_png(x, Path::new(&path))).or_throw(env)
}

/// A `[C, H, W]` image (uint8, or float in [0, 1]; C = 1 or 3) as the bytes of a PNG file.
#[napi]
pub fn encode_png(env: &Env, image: &NativeTensor) -> Result<Buffer> {
    image.get().and_then(byol::data::encode_png).map(Buffer::from).or_throw(env)
}

/// The `__metadata__` of a safetensors file.
#[napi]
pub fn safetensors_metadata(env: &Env, path: String) -> Result<std::collections::HashMap<String, String>> {
    byol::tensor::load_safetensors(Path::new(&path)).map(|l| l.metadata).or_throw(env)
}

/// Writes a float32 or int64 tensor as NumPy's `.npy`, atomically.
#[napi]
pub fn save_npy(env: &Env, tensor: &NativeTensor, path: String) -> Result<()> {
    tensor.get().and_then(|t| byol::tensor::save_npy(t, Path::new(&path))).or_throw(env)
}

/// The indices of each subset of `torch.utils.data.random_split`.
#[napi]
pub fn random_split(env: &Env, total: u32, lengths: Vec<f64>, seed: Option<i64>) -> Result<Vec<Vec<u32>>> {
    let seed = seed.map(|s| u64::try_from(s).map_err(|_| byol::Error::range("seed", "an integer >= 0", s))).transpose().or_throw(env)?;
    let lengths = byol::data::split_lengths(total as usize, &lengths).or_throw(env)?;
    let parts = byol::data::random_split(total as usize, &lengths, seed).or_throw(env)?;
    Ok(parts.into_iter().map(|p| p.into_iter().map(|i| i as u32).collect()).collect())
}

//! Datasets and a prefetching loader that decodes and augments in worker
//! threads, so that the training step does not wait on the data.
use crate::error::{Error, Result};
use crate::transforms::{ByolTransform, ByolTransformConfig};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use tch::{Kind, Tensor};

/// One image as `[3, H, W]` uint8 (RGB) and its label (-1 when unlabelled).
pub struct Sample {
    pub image: Tensor,
    pub label: i64,
}

pub trait Dataset: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `Ok(None)`: the item cannot be read (a broken file); the loader skips it.
    fn get(&self, index: usize) -> Result<Option<Sample>>;
    /// What to say of an unreadable item.
    fn describe(&self, index: usize) -> String {
        format!("item {index}")
    }
}

/// Images already in memory, kept as uint8 `[N, C, H, W]` bytes (C in {1, 3})
/// so that worker threads can read them (a libtorch tensor is not `Sync`).
pub struct TensorDataset {
    bytes: Vec<u8>,
    shape: [i64; 4],
    labels: Option<Vec<i64>>,
}

impl TensorDataset {
    /// `images`: uint8 in [0, 255] or float in [0, 1], `[N, C, H, W]`, or
    /// `[N, H, W, C]` when `channels_last` (as decoded images usually come).
    pub fn new(images: &Tensor, labels: Option<Vec<i64>>, channels_last: bool) -> Result<Self> {
        if channels_last && images.dim() != 4 {
            return Err(Error::invalid("images", "a [N, H, W, C] tensor", format!("shape {:?}", images.size())));
        }
        let images = if channels_last { images.f_permute([0, 3, 1, 2])? } else { images.shallow_clone() };
        let images = &images;
        let size = images.size();
        if size.len() != 4 || !(size[1] == 1 || size[1] == 3) {
            return Err(Error::invalid("images", "a [N, C, H, W] tensor with C = 1 or 3", format!("shape {size:?}")));
        }
        let images = if images.kind() == Kind::Uint8 {
            images.shallow_clone()
        } else if crate::network::is_float(images.kind()) {
            // Rounding would turn NaN into 0 without a word: refuse it instead.
            let finite = images.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0;
            if !finite {
                return Err(Error::range("images", "finite values in [0, 1]", "NaN or infinite values"));
            }
            images.f_mul_scalar(255.0)?.f_round()?.f_clamp(0.0, 255.0)?.f_to_kind(Kind::Uint8)?
        } else {
            return Err(Error::invalid("images", "uint8 or float images", crate::network::kind_name(images.kind())));
        };
        if let Some(l) = &labels {
            if l.len() as i64 != size[0] {
                return Err(Error::invalid("labels", format!("{} labels, one per image", size[0]), format!("{} labels", l.len())));
            }
        }
        let images = images.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
        let numel = images.numel();
        let mut bytes = vec![0u8; numel];
        images.f_copy_data_u8(&mut bytes, numel)?;
        Ok(Self { bytes, shape: [size[0], size[1], size[2], size[3]], labels })
    }
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.shape[0] as usize
    }
    fn get(&self, index: usize) -> Result<Option<Sample>> {
        let [_, c, h, w] = self.shape;
        let per = (c * h * w) as usize;
        let image = Tensor::f_from_data_size(&self.bytes[index * per..(index + 1) * per], &[c, h, w], Kind::Uint8)?;
        let image = if c == 1 { image.f_expand([3, -1, -1], false)?.f_contiguous()? } else { image };
        Ok(Some(Sample { image, label: self.labels.as_ref().map(|l| l[index]).unwrap_or(-1) }))
    }
}

/// `torch.utils.data.Subset`: the items of another dataset at `indices`.
pub struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl Subset {
    pub fn new(inner: Arc<dyn Dataset>, indices: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= inner.len()) {
            return Err(Error::range("indices", format!("indices below the dataset's length, {}", inner.len()), bad));
        }
        Ok(Self { inner, indices })
    }
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<Option<Sample>> {
        self.inner.get(self.indices[index])
    }
    fn describe(&self, index: usize) -> String {
        self.inner.describe(self.indices[index])
    }
}

/// torchvision's `ImageFolder`: `root/<class>/**/<image>`, classes sorted by name.
pub struct ImageFolder {
    pub root: PathBuf,
    pub files: Vec<(PathBuf, i64)>,
    pub classes: Vec<String>,
}

impl ImageFolder {
    pub fn new(root: &Path, extensions: &[String]) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::file(root, "no such folder"));
        }
        let wanted: Vec<String> = extensions.iter().map(|e| e.trim_start_matches('.').to_ascii_lowercase()).collect();
        let mut classes = Vec::new();
        let mut files = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(root)
            .map_err(|e| Error::file(root, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        entries.sort();
        for dir in entries {
            let label = classes.len() as i64;
            let mut found = Vec::new();
            walk(&dir, &wanted, &mut found);
            found.sort();
            if !found.is_empty() {
                classes.push(dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default());
                files.extend(found.into_iter().map(|f| (f, label)));
            }
        }
        if files.is_empty() {
            return Err(Error::file(root, format!("no images with extensions {wanted:?} in its sub-folders")));
        }
        Ok(Self { root: root.to_path_buf(), files, classes })
    }
}

fn walk(dir: &Path, wanted: &[String], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, wanted, out);
        } else if path.extension().map(|e| wanted.contains(&e.to_string_lossy().to_ascii_lowercase())).unwrap_or(false) {
            out.push(path);
        }
    }
}

/// Decodes a JPEG or PNG (any bit depth, gray, RGBA...) to `[3, H, W]` RGB uint8.
pub fn decode_image(path: &Path) -> std::result::Result<Tensor, String> {
    let img = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let hwc = Tensor::f_from_data_size(img.as_raw(), &[h as i64, w as i64, 3], Kind::Uint8).map_err(|e| e.to_string())?;
    hwc.f_permute([2, 0, 1]).and_then(|t| t.f_contiguous()).map_err(|e| e.to_string())
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn get(&self, index: usize) -> Result<Option<Sample>> {
        let (path, label) = &self.files[index];
        Ok(decode_image(path).ok().map(|image| Sample { image, label: *label }))
    }
    fn describe(&self, index: usize) -> String {
        self.files[index].0.display().to_string()
    }
}

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    pub num_workers: usize,
    pub prefetch: usize,
    pub seed: u64,
    /// Side every image is resized to before batching, when there is no transform.
    pub image_size: Option<i64>,
    pub transform: Option<ByolTransformConfig>,
    /// Without a transform: `(x - mean) / std` per channel after scaling to
    /// [0, 1], so that evaluation sees what training saw.
    pub normalize: Option<(Vec<f64>, Vec<f64>)>,
    /// Where batches are assembled and augmented (a GPU takes the transform's work).
    pub device: tch::Device,
}

pub struct Batch {
    pub index: usize,
    pub x0: Tensor,
    pub x1: Tensor,
    pub labels: Vec<i64>,
    /// Items that could not be read, described.
    pub skipped: Vec<String>,
}

#[derive(Clone)]
pub struct DataLoader {
    dataset: Arc<dyn Dataset>,
    pub config: LoaderConfig,
    epoch: u64,
}

/// One pass over the dataset, fed by worker threads.
pub struct Epoch {
    receiver: Receiver<Result<Batch>>,
    pending: BTreeMap<usize, Result<Batch>>,
    next: usize,
    batches: usize,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl DataLoader {
    pub fn new(dataset: Arc<dyn Dataset>, config: LoaderConfig) -> Result<Self> {
        if config.batch_size < 1 {
            return Err(Error::range("batchSize", "a batch size >= 1", config.batch_size));
        }
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        if config.num_workers < 1 || config.num_workers > 64 * cores.max(1) {
            return Err(Error::range("numWorkers", format!("1 to {} worker threads", 64 * cores), config.num_workers));
        }
        if config.prefetch < 1 {
            return Err(Error::range("prefetch", "at least 1 batch", config.prefetch));
        }
        if dataset.is_empty() {
            return Err(Error::range("dataset", "a dataset with at least one item", "an empty dataset"));
        }
        if let Some(t) = &config.transform {
            t.validate()?;
        }
        if let Some((mean, std)) = &config.normalize {
            if mean.len() != 3 || std.len() != 3 || std.iter().any(|s| !(s.is_finite() && *s > 0.0)) || mean.iter().any(|m| !m.is_finite()) {
                return Err(Error::range("normalize", "3 finite means and 3 standard deviations > 0", format!("mean {mean:?}, std {std:?}")));
            }
        }
        Ok(Self { dataset, config, epoch: 0 })
    }

    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    pub fn num_batches(&self) -> usize {
        let n = self.dataset.len();
        let b = self.config.batch_size;
        if self.config.drop_last { n / b } else { n.div_ceil(b) }
    }

    /// Starts the next epoch: a new order, workers, and at most `prefetch`
    /// batches waiting (plus one being finished by each worker).
    pub fn epoch(&mut self) -> Epoch {
        let epoch = self.epoch;
        self.epoch += 1;
        self.epoch_at(epoch, 0)
    }

    /// Epoch number `epoch` from batch `start` on: the order and augmentations
    /// depend only on the seed, the epoch and the batch index, so a resumed run
    /// sees exactly the batches an uninterrupted one would.
    pub fn epoch_at(&self, epoch: u64, start: usize) -> Epoch {
        let c = self.config.clone();
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if c.shuffle {
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(c.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        }
        let batches = self.num_batches();
        let order = Arc::new(order);
        let (sender, receiver) = sync_channel(c.prefetch);
        let start = start.min(batches);
        let counter = Arc::new(AtomicUsize::new(start));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..c.num_workers.min(batches.max(1)))
            .map(|_| {
                let (dataset, order, counter, stop, sender, c) =
                    (Arc::clone(&self.dataset), Arc::clone(&order), Arc::clone(&counter), Arc::clone(&stop), sender.clone(), c.clone());
                std::thread::spawn(move || {
                    // Each worker's libtorch ops run on its own thread only.
                    crate::device::set_thread_count(1);
                    loop {
                        let b = counter.fetch_add(1, Ordering::SeqCst);
                        if b >= batches || stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let end = ((b + 1) * c.batch_size).min(order.len());
                        let result = make_batch(&*dataset, &order[b * c.batch_size..end], b, epoch, &c);
                        if sender.send(result).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        Epoch { receiver, pending: BTreeMap::new(), next: start, batches, stop, workers }
    }
}

fn make_batch(dataset: &dyn Dataset, indices: &[usize], index: usize, epoch: u64, c: &LoaderConfig) -> Result<Batch> {
    let _guard = tch::no_grad_guard();
    let mut images = Vec::with_capacity(indices.len());
    let mut labels = Vec::with_capacity(indices.len());
    let mut skipped = Vec::new();
    for &i in indices {
        match dataset.get(i)? {
            Some(s) => {
                images.push(s.image);
                labels.push(s.label);
            }
            None => skipped.push(dataset.describe(i)),
        }
    }
    if images.is_empty() {
        let empty = Tensor::f_zeros([0, 3, 1, 1], (Kind::Float, tch::Device::Cpu))?;
        return Ok(Batch { index, x0: empty.shallow_clone(), x1: empty, labels, skipped });
    }
    // Images of other sizes are resized to a common side before stacking; the
    // random crop of the transform then works on that.
    let side = c.image_size.or_else(|| c.transform.as_ref().map(|t| t.input_size.max(1) * 8 / 7)).unwrap_or_else(|| images[0].size()[1]);
    let same = images.iter().all(|im| im.size()[1] == side && im.size()[2] == side);
    let batch = if same {
        Tensor::f_stack(&images, 0)?
    } else {
        let resized = images
            .iter()
            .map(|im| {
                im.f_unsqueeze(0)?.f_to_kind(Kind::Float)?.f_internal_upsample_bilinear2d_aa([side, side], false, None, None)?.f_round()?.f_clamp(0.0, 255.0)?.f_to_kind(Kind::Uint8)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Tensor::f_cat(&resized, 0)?
    };
    let batch = batch.f_to_device(c.device)?;
    let (x0, x1) = match &c.transform {
        Some(t) => {
            let seed = c.seed ^ (epoch << 32) ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
            ByolTransform::new(t.clone(), seed)?.apply(&batch)?
        }
        None => {
            let x = batch.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?;
            let x = match &c.normalize {
                Some((mean, std)) => crate::transforms::normalize(&x, mean, std)?,
                None => x,
            };
            (x.shallow_clone(), x)
        }
    };
    Ok(Batch { index, x0, x1, labels, skipped })
}

impl Epoch {
    pub fn len(&self) -> usize {
        self.batches
    }

    pub fn is_empty(&self) -> bool {
        self.batches == 0
    }

    /// Batches handed out so far (or skipped over by `epoch_at`).
    pub fn position(&self) -> usize {
        self.next
    }

    /// The next batch in order; `None` at the end of the epoch. Blocks while
    /// the workers catch up.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        while self.next < self.batches {
            if let Some(b) = self.pending.remove(&self.next) {
                self.next += 1;
                return b.map(Some);
            }
            match self.receiver.recv() {
                Ok(Ok(b)) => {
                    self.pending.insert(b.index, Ok(b));
                }
                Ok(Err(e)) => {
                    self.stop.store(true, Ordering::SeqCst);
                    return Err(e);
                }
                Err(_) => return Err(Error::file("<loader>", "the data workers stopped early")),
            }
        }
        Ok(None)
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Unblock workers waiting on a full channel, then wait for them.
        while self.receiver.try_recv().is_ok() {}
        for w in self.workers.drain(..) {
            while !w.is_finished() {
                while self.receiver.try_recv().is_ok() {}
                std::thread::yield_now();
            }
            let _ = w.join();
        }
    }
}

/// Writes a `[C, H, W]` image (uint8, or float in [0, 1]; C = 1 or 3) as a PNG,
/// through a temporary file and a rename.
pub fn save_png(image: &Tensor, path: &Path) -> Result<()> {
    let size = image.size();
    if size.len() != 3 || !(size[0] == 1 || size[0] == 3) {
        return Err(Error::invalid("image", "a [C, H, W] image with C = 1 or 3", format!("shape {size:?}")));
    }
    let u8 = if image.kind() == Kind::Uint8 {
        image.f_to_device(tch::Device::Cpu)?
    } else {
        image.f_to_device(tch::Device::Cpu)?.f_mul_scalar(255.0)?.f_round()?.f_clamp(0.0, 255.0)?.f_to_kind(Kind::Uint8)?
    };
    let hwc = u8.f_expand([3, size[1], size[2]], false)?.f_permute([1, 2, 0])?.f_contiguous()?;
    let numel = hwc.numel();
    let mut pixels = vec![0u8; numel];
    hwc.f_copy_data_u8(&mut pixels, numel)?;
    let mut bytes = Vec::new();
    image::RgbImage::from_raw(size[2] as u32, size[1] as u32, pixels)
        .ok_or_else(|| Error::file(path, "cannot make an image of that size"))?
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| Error::file(path, format!("cannot encode PNG: {e}")))?;
    crate::checkpoint::write_atomically(path, &bytes)
}

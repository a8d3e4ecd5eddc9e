//! The loader: batches of two augmented views, made from a dataset by worker
//! threads and prefetched, in an order and with augmentations that depend
//! only on the seed, the epoch and the batch index.
use crate::data::image::{bytes_mut, planes};
use crate::data::{deinterleave, Dataset, DecodeBuffers, Pixels};
use crate::error::{Error, Result};
use crate::transforms::{normalize, ByolTransform, ByolTransformConfig};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use tch::{Kind, Tensor};

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
    /// This process's share of every epoch in data-parallel training,
    /// `(rank, replicas)`, dealt as `DistributedSampler` deals it; `(0, 1)`
    /// is the whole epoch.
    pub shard: (usize, usize),
}

impl Default for LoaderConfig {
    /// torch's `DataLoader` defaults, but shuffled and with a worker per core.
    fn default() -> Self {
        Self {
            batch_size: 32,
            shuffle: true,
            drop_last: false,
            num_workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            prefetch: 2,
            seed: 0,
            image_size: None,
            transform: None,
            normalize: None,
            device: tch::Device::Cpu,
            shard: (0, 1),
        }
    }
}

pub struct Batch {
    pub index: usize,
    pub x0: Tensor,
    pub x1: Tensor,
    pub labels: Vec<i64>,
    /// Items that could not be read: what each is (a path) and why.
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
            if mean.len() != 3 || std.len() != 3 || std.iter().any(|s| !(s.is_finite() && *s > 0.0)) || mean.iter().any(|m| !m.is_finite())
            {
                return Err(Error::range(
                    "normalize",
                    "3 finite means and 3 standard deviations > 0",
                    format!("mean {mean:?}, std {std:?}"),
                ));
            }
        }
        Ok(Self { dataset, config, epoch: 0 })
    }

    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// What the transform makes of the first `count` items, for a person to
    /// look at: a `[C, H, W]` float image in [0, 1] (normalisation undone),
    /// view 1 of each item above its view 2, one column per item, 2 white
    /// pixels between. `None` without a transform.
    pub fn view_pairs(&self, count: usize) -> Result<Option<Tensor>> {
        let Some(transform) = &self.config.transform else { return Ok(None) };
        let n = count.min(self.dataset.len());
        if n == 0 {
            return Ok(None);
        }
        let first = Arc::new(crate::data::Subset::new(self.dataset.clone(), (0..n).collect())?);
        let config = LoaderConfig {
            batch_size: n,
            shuffle: false,
            num_workers: 1,
            prefetch: 1,
            device: tch::Device::Cpu,
            shard: (0, 1),
            ..self.config.clone()
        };
        let Some(batch) = DataLoader::new(first, config)?.epoch().next_batch()? else { return Ok(None) };
        const GAP: i64 = 2;
        let row = |views: &Tensor| -> Tensor {
            let mut v = views.to_kind(Kind::Float);
            if let Some((mean, std)) = &transform.normalize {
                let channels = v.size()[1] as usize;
                let col = |xs: &[f64]| {
                    Tensor::from_slice(&xs.iter().cycle().take(channels).map(|x| *x as f32).collect::<Vec<_>>()).view([1, -1, 1, 1])
                };
                v = v * col(std) + col(mean);
            }
            // [n, C, h, w] -> padded right and below -> [C, h + gap, n * (w + gap)]
            // (white is 1: the padding of v - 1 with zeros, plus 1)
            let v = (v.clamp(0.0, 1.0) - 1.0).constant_pad_nd([0, GAP, 0, GAP]) + 1.0;
            let (k, c, h, w) = v.size4().unwrap_or_default();
            v.permute([1, 2, 0, 3]).reshape([c, h, k * w])
        };
        let grid = Tensor::cat(&[row(&batch.x0), row(&batch.x1)], 1);
        let (_, h, w) = grid.size3().unwrap_or_default();
        Ok(Some(grid.narrow(1, 0, h - GAP).narrow(2, 0, w - GAP).contiguous()))
    }

    /// This loader dealt out to `replicas` processes: the share of `rank`.
    pub fn sharded(&self, rank: usize, replicas: usize) -> Result<Self> {
        if replicas < 1 || rank >= replicas {
            return Err(Error::range("rank", format!("a rank below the number of replicas ({replicas})"), rank));
        }
        if self.config.drop_last && self.dataset.len() < replicas {
            return Err(Error::range("dataset", format!("at least one item per replica ({replicas}) with dropLast"), self.dataset.len()));
        }
        let mut sharded = self.clone();
        sharded.config.shard = (rank, replicas);
        Ok(sharded)
    }

    /// Items this process sees per epoch: `DistributedSampler`'s `num_samples`.
    fn shard_len(&self) -> usize {
        let (n, replicas) = (self.dataset.len(), self.config.shard.1.max(1));
        if self.config.drop_last {
            n / replicas
        } else {
            n.div_ceil(replicas)
        }
    }

    /// This process's indices of an epoch's order: padded with the order's
    /// first items up to a multiple of the replicas (or cut down to one with
    /// `drop_last`), then every `replicas`-th from `rank` on.
    fn deal(&self, order: Vec<usize>) -> Vec<usize> {
        let (rank, replicas) = self.config.shard;
        if replicas <= 1 {
            return order;
        }
        let total = self.shard_len() * replicas;
        let padded: Vec<usize> = order.iter().copied().cycle().take(total).collect();
        padded.into_iter().skip(rank).step_by(replicas).collect()
    }

    pub fn num_batches(&self) -> usize {
        let n = self.shard_len();
        let b = self.config.batch_size;
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
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
        let order = self.deal(order);
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
                    crate::tensor::device::set_thread_count(1);
                    let mut buffers = DecodeBuffers::default();
                    loop {
                        let b = counter.fetch_add(1, Ordering::SeqCst);
                        if b >= batches || stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let end = ((b + 1) * c.batch_size).min(order.len());
                        let result = make_batch(&*dataset, &order[b * c.batch_size..end], b, epoch, &c, &mut buffers);
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

fn make_batch(
    dataset: &dyn Dataset,
    indices: &[usize],
    index: usize,
    epoch: u64,
    c: &LoaderConfig,
    buffers: &mut DecodeBuffers,
) -> Result<Batch> {
    let _guard = tch::no_grad_guard();
    // Every image goes straight into its place in the batch, at a common side:
    // images of other sizes are resized to it, and the random crop of the
    // transform then works on that.
    let wanted = c.image_size.or_else(|| c.transform.as_ref().map(|t| t.input_size.max(1) * 8 / 7));
    let mut images: Option<Tensor> = None;
    let mut labels = Vec::with_capacity(indices.len());
    let mut skipped = Vec::new();
    for &i in indices {
        let item = match dataset.read(i, buffers)? {
            Ok(item) => item,
            Err(reason) => {
                skipped.push(format!("{} ({reason})", dataset.describe(i)));
                continue;
            }
        };
        let (channels, height, width) = match &item.pixels {
            Pixels::Decoded { height, width } => (3, *height, *width),
            Pixels::Planes(image) => image.size3()?,
        };
        let batch = match &mut images {
            Some(batch) => batch,
            None => {
                let side = wanted.unwrap_or(height);
                images.insert(Tensor::f_empty([indices.len() as i64, channels, side, side], (Kind::Uint8, tch::Device::Cpu))?)
            }
        };
        let (_, batch_channels, side, _) = batch.size4()?;
        if channels != batch_channels {
            return Err(Error::invalid(
                dataset.describe(i),
                format!("an image of {batch_channels} channels, as the batch's first"),
                format!("{channels} channels"),
            ));
        }
        let mut slot = batch.f_select(0, labels.len() as i64)?;
        match item.pixels {
            Pixels::Decoded { height, width } if height == side && width == side => {
                deinterleave(buffers.pixels(), bytes_mut(&mut slot)?)?;
            }
            pixels => {
                let image = match pixels {
                    Pixels::Decoded { height, width } => planes(buffers, height, width)?,
                    Pixels::Planes(image) => image,
                };
                if height == side && width == side {
                    slot.f_copy_(&image)?;
                } else {
                    let resized = image
                        .f_unsqueeze(0)?
                        .f_to_kind(Kind::Float)?
                        .f_internal_upsample_bilinear2d_aa([side, side], false, None, None)?
                        .f_round()?
                        .f_clamp(0.0, 255.0)?
                        .f_to_kind(Kind::Uint8)?;
                    slot.f_copy_(&resized.f_squeeze_dim(0)?)?;
                }
            }
        }
        labels.push(item.label);
    }
    let Some(batch) = images else {
        let empty = Tensor::f_zeros([0, 3, 1, 1], (Kind::Float, tch::Device::Cpu))?;
        return Ok(Batch { index, x0: empty.shallow_clone(), x1: empty, labels, skipped });
    };
    let batch = batch.f_narrow(0, 0, labels.len() as i64)?;
    let batch = batch.f_to_device(c.device)?;
    let (x0, x1) = match &c.transform {
        Some(t) => {
            // Each rank draws its own augmentations (rank 0's are a single process's).
            let rank = c.shard.0 as u64;
            let seed =
                c.seed ^ (epoch << 32) ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D) ^ rank.wrapping_mul(0xD6E8_FEB8_6659_FD93);
            ByolTransform::new(ByolTransformConfig { seed, ..t.clone() })?.apply(&batch)?
        }
        None => {
            let x = batch.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?;
            let x = match &c.normalize {
                Some((mean, std)) => normalize(&x, mean, std)?,
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

//! `new DataLoader(dataset, options)`.
use crate::options::transform::Normalization;
use crate::tensor::device;
use byol::LoaderConfig;
use napi::bindgen_prelude::{Either, Null};
use napi_derive::napi;

/// The loader's options. Each one left out takes its default.
#[napi(object)]
#[derive(Clone)]
pub struct LoaderOptions {
    /// Images per batch. Default `32`.
    pub batch_size: Option<u32>,
    /// A new random order every epoch. Default `true`.
    pub shuffle: Option<bool>,
    /// Drop the last, smaller batch. Default `false`.
    pub drop_last: Option<bool>,
    /// Rust worker threads that decode and augment. Default: the number of cores.
    pub num_workers: Option<u32>,
    /// Batches kept ready ahead of training (memory stays bounded by it). Default `2`.
    pub prefetch: Option<u32>,
    /// Seed of the order and of the augmentations. Default `0`.
    pub seed: Option<i64>,
    /// Side images of other sizes are resized to before batching. Default: `inputSize * 8 / 7` with a transform, else the first image's.
    pub image_size: Option<i64>,
    /// Where batches are assembled and augmented, e.g. `'cuda'` to run the transform on the GPU. Default `'cpu'`.
    #[napi(ts_type = "'cpu' | 'cuda' | `cuda:${number}` | 'auto'")]
    pub device: Option<String>,
    /// Without a transform: normalise the [0, 1] images per channel, e.g. with the training transform's `normalization`.
    #[napi(ts_type = "{ mean: readonly number[]; std: readonly number[] } | null")]
    pub normalize: Option<Either<Normalization, Null>>,
}

impl TryFrom<LoaderOptions> for LoaderConfig {
    type Error = byol::Error;

    fn try_from(o: LoaderOptions) -> byol::Result<Self> {
        let d = LoaderConfig::default();
        Ok(LoaderConfig {
            batch_size: o.batch_size.map_or(d.batch_size, |n| n as usize),
            shuffle: o.shuffle.unwrap_or(d.shuffle),
            drop_last: o.drop_last.unwrap_or(d.drop_last),
            num_workers: o.num_workers.map_or(d.num_workers, |n| n as usize),
            prefetch: o.prefetch.map_or(d.prefetch, |n| n as usize),
            seed: match o.seed {
                Some(s) => u64::try_from(s).map_err(|_| byol::Error::range("seed", "an integer >= 0", s))?,
                None => d.seed,
            },
            image_size: o.image_size.or(d.image_size),
            device: o.device.as_deref().map_or(Ok(d.device), |n| device(Some(n)))?,
            normalize: match o.normalize {
                Some(Either::A(n)) => Some((n.mean, n.std)),
                Some(Either::B(_)) | None => d.normalize,
            },
            ..d
        })
    }
}

//! Datasets: images with labels, read by index from any thread.
use crate::data::image::DecodeBuffers;
use crate::error::{Error, Result};
use crate::tensor::{is_float, kind_name};
use std::sync::Arc;
use tch::{Kind, Tensor};

/// One image as `[3, H, W]` uint8 (RGB) and its label (-1 when unlabelled).
pub struct Sample {
    pub image: Tensor,
    pub label: i64,
}

/// An item as a loader's worker reads it: decoded into the worker's buffers
/// (image files) or as the `[C, H, W]` uint8 tensor `get` gives.
pub enum Pixels {
    /// In `DecodeBuffers::pixels`, interleaved RGB, `height` by `width`.
    Decoded {
        height: i64,
        width: i64,
    },
    Planes(Tensor),
}

pub struct Item {
    pub pixels: Pixels,
    pub label: i64,
}

pub trait Dataset: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The item, or `Err(reason)` when it cannot be read (a broken file): the
    /// loader skips it and says so. The outer error stops the loader.
    fn get(&self, index: usize) -> Result<std::result::Result<Sample, String>>;
    /// Item `index` for a loader's worker, decoded into `buffers` where the
    /// dataset reads image files, so that a batch allocates nothing per image.
    fn read(&self, index: usize, _buffers: &mut DecodeBuffers) -> Result<std::result::Result<Item, String>> {
        Ok(self.get(index)?.map(|s| Item { pixels: Pixels::Planes(s.image), label: s.label }))
    }
    /// Item `index`, checked against the length (`get` may assume it is in range).
    fn item(&self, index: usize) -> Result<std::result::Result<Sample, String>> {
        if index >= self.len() {
            return Err(Error::range("index", format!("an index below the dataset's length, {}", self.len()), index));
        }
        self.get(index)
    }
    /// What to say of an unreadable item.
    fn describe(&self, index: usize) -> String {
        format!("item {index}")
    }
    /// The file item `index` is read from, for datasets of files.
    fn path(&self, _index: usize) -> Option<std::path::PathBuf> {
        None
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
        } else if is_float(images.kind()) {
            // Rounding would turn NaN into 0 without a word: refuse it instead.
            let finite = images.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0;
            if !finite {
                return Err(Error::range("images", "finite values in [0, 1]", "NaN or infinite values"));
            }
            images.f_mul_scalar(255.0)?.f_round()?.f_clamp(0.0, 255.0)?.f_to_kind(Kind::Uint8)?
        } else {
            return Err(Error::invalid("images", "uint8 or float images", kind_name(images.kind())));
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
    fn get(&self, index: usize) -> Result<std::result::Result<Sample, String>> {
        let [_, c, h, w] = self.shape;
        let per = (c * h * w) as usize;
        let image = Tensor::f_from_data_size(&self.bytes[index * per..(index + 1) * per], &[c, h, w], Kind::Uint8)?;
        let image = if c == 1 { image.f_expand([3, -1, -1], false)?.f_contiguous()? } else { image };
        Ok(Ok(Sample { image, label: self.labels.as_ref().map(|l| l[index]).unwrap_or(-1) }))
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
    fn get(&self, index: usize) -> Result<std::result::Result<Sample, String>> {
        self.inner.get(self.indices[index])
    }
    fn read(&self, index: usize, buffers: &mut DecodeBuffers) -> Result<std::result::Result<Item, String>> {
        self.inner.read(self.indices[index], buffers)
    }
    fn describe(&self, index: usize) -> String {
        self.inner.describe(self.indices[index])
    }
    fn path(&self, index: usize) -> Option<std::path::PathBuf> {
        self.inner.path(self.indices[index])
    }
}

//! The batched image transforms and `NativeByolTransform`, BYOL's two views.
use crate::enums::Adjustment;
use crate::error::OrThrow;
use crate::options::transform::{ByolTransformOptions, Normalization};
use crate::tensor::NativeTensor;
use byol::tch::Tensor;
use byol::transforms::{self as t, ByolTransform, ByolTransformConfig, CropBox};
use napi::bindgen_prelude::*;
use napi_derive::napi;

fn apply(env: &Env, x: &NativeTensor, op: impl FnOnce(&Tensor) -> byol::Result<Tensor>) -> Result<NativeTensor> {
    Ok(NativeTensor::wrap(env, x.get().and_then(op).or_throw(env)?))
}

#[napi]
pub fn transform_hflip(env: &Env, x: &NativeTensor, flags: Vec<bool>) -> Result<NativeTensor> {
    apply(env, x, |x| t::hflip(x, &flags))
}

#[napi]
pub fn transform_rgb_to_grayscale(env: &Env, x: &NativeTensor) -> Result<NativeTensor> {
    apply(env, x, t::rgb_to_grayscale)
}

#[napi]
pub fn transform_random_grayscale(env: &Env, x: &NativeTensor, flags: Vec<bool>) -> Result<NativeTensor> {
    apply(env, x, |x| t::random_grayscale(x, &flags))
}

#[napi]
pub fn transform_adjust(env: &Env, x: &NativeTensor, op: Adjustment, factors: Vec<f64>) -> Result<NativeTensor> {
    apply(env, x, |x| match op {
        Adjustment::Brightness => t::adjust_brightness(x, &factors),
        Adjustment::Contrast => t::adjust_contrast(x, &factors),
        Adjustment::Saturation => t::adjust_saturation(x, &factors),
        Adjustment::Hue => t::adjust_hue(x, &factors),
    })
}

/// `1 - x` where `x >= threshold` (`BYOLTransform`'s threshold where none is given).
#[napi]
pub fn transform_solarize(env: &Env, x: &NativeTensor, threshold: Option<f64>, flags: Vec<bool>) -> Result<NativeTensor> {
    let threshold = threshold.unwrap_or(ByolTransformConfig::default().solarize_threshold);
    apply(env, x, |x| t::solarize(x, threshold, &flags))
}

#[napi]
pub fn transform_gaussian_blur(env: &Env, x: &NativeTensor, kernel_size: i64, sigmas: Vec<f64>) -> Result<NativeTensor> {
    apply(env, x, |x| t::gaussian_blur(x, kernel_size, &sigmas))
}

/// `(x - mean) / std` per channel; ImageNet's statistics where none are given.
#[napi]
pub fn transform_normalize(env: &Env, x: &NativeTensor, mean: Option<Vec<f64>>, std: Option<Vec<f64>>) -> Result<NativeTensor> {
    let (default_mean, default_std) = t::imagenet_normalization();
    apply(env, x, |x| t::normalize(x, &mean.unwrap_or(default_mean), &std.unwrap_or(default_std)))
}

/// `boxes` holds `[top, left, height, width]` per image.
#[napi]
pub fn transform_resized_crop(env: &Env, x: &NativeTensor, boxes: Vec<Vec<i64>>, size: i64) -> Result<NativeTensor> {
    let boxes = boxes.iter().enumerate().map(|(i, b)| CropBox::from_slice(b, i)).collect::<byol::Result<Vec<_>>>().or_throw(env)?;
    apply(env, x, |x| t::resized_crop(x, &boxes, size))
}

#[napi]
pub struct NativeByolTransform {
    pub(crate) inner: ByolTransform,
}

#[napi]
impl NativeByolTransform {
    #[napi(constructor)]
    pub fn new(env: &Env, options: ByolTransformOptions) -> Result<Self> {
        let config = ByolTransformConfig::try_from(options).or_throw(env)?;
        Ok(Self { inner: ByolTransform::new(config).or_throw(env)? })
    }

    /// The two views of a batch.
    #[napi]
    pub fn apply(&mut self, env: &Env, images: &NativeTensor) -> Result<Vec<NativeTensor>> {
        let (a, b) = images.get().and_then(|x| self.inner.apply(x)).or_throw(env)?;
        Ok(vec![NativeTensor::wrap(env, a), NativeTensor::wrap(env, b)])
    }

    /// The normalisation the views end with, or null.
    #[napi(getter)]
    pub fn normalization(&self) -> Option<Normalization> {
        self.inner.config.normalize.clone().map(|(mean, std)| Normalization { mean, std })
    }
}

//! `new BYOLTransform(options)`.
use crate::options::pair;
use byol::transforms::{ByolTransformConfig, ViewConfig};
use napi::bindgen_prelude::{Either, Null};
use napi_derive::napi;

/// Per-view settings: BYOL's views differ in blur and solarisation.
#[napi(object)]
#[derive(Clone)]
pub struct ViewOptions {
    /// Probability of a Gaussian blur.
    pub gaussian_blur: Option<f64>,
    /// Probability of solarisation.
    pub solarization: Option<f64>,
}

/// Normalisation `(x - mean) / std`, per channel.
#[napi(object)]
#[derive(Clone)]
pub struct Normalization {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// lightly's `BYOLTransform` options. Each one left out takes lightly's default.
#[napi(object)]
#[derive(Clone)]
pub struct ByolTransformOptions {
    /// Output side in pixels. Default `224`.
    pub input_size: Option<i64>,
    /// Probability of colour jitter. Default `0.8`.
    pub cj_prob: Option<f64>,
    /// Scales all jitter strengths. Default `1`.
    pub cj_strength: Option<f64>,
    /// Brightness jitter. Default `0.4`.
    pub cj_bright: Option<f64>,
    /// Contrast jitter. Default `0.4`.
    pub cj_contrast: Option<f64>,
    /// Saturation jitter. Default `0.2`.
    pub cj_sat: Option<f64>,
    /// Hue jitter, in turns. Default `0.1`.
    pub cj_hue: Option<f64>,
    /// Smallest crop area, as a fraction of the image. Default `0.08`.
    pub min_scale: Option<f64>,
    /// Largest crop area. Default `1`.
    pub max_scale: Option<f64>,
    /// Aspect ratio range of the crop. Default `[0.75, 1.3333333333333333]`.
    #[napi(ts_type = "readonly [number, number]")]
    pub ratio: Option<Vec<f64>>,
    /// Probability of grayscale. Default `0.2`.
    pub random_gray_scale: Option<f64>,
    /// Probability of a horizontal flip. Default `0.5`.
    pub hf_prob: Option<f64>,
    /// Blur sigma range. Default `[0.1, 2]`.
    #[napi(ts_type = "readonly [number, number]")]
    pub sigmas: Option<Vec<f64>>,
    /// Odd blur kernel size. Default: about a tenth of `inputSize`.
    pub kernel_size: Option<i64>,
    /// Solarisation threshold. Default `0.5`.
    pub solarize_threshold: Option<f64>,
    /// Normalisation; `null` for none. Default: ImageNet's mean and std.
    #[napi(ts_type = "{ mean: readonly number[]; std: readonly number[] } | null")]
    pub normalize: Option<Either<Normalization, Null>>,
    /// First view. Default `{ gaussianBlur: 1, solarization: 0 }`.
    pub view1: Option<ViewOptions>,
    /// Second view. Default `{ gaussianBlur: 0.1, solarization: 0.2 }`.
    pub view2: Option<ViewOptions>,
    /// Seed of the transform's random generator. Default `0`.
    pub seed: Option<i64>,
}

fn view(o: Option<ViewOptions>, d: ViewConfig) -> ViewConfig {
    match o {
        None => d,
        Some(v) => {
            ViewConfig { gaussian_blur: v.gaussian_blur.unwrap_or(d.gaussian_blur), solarization: v.solarization.unwrap_or(d.solarization) }
        }
    }
}

impl TryFrom<ByolTransformOptions> for ByolTransformConfig {
    type Error = byol::Error;

    fn try_from(o: ByolTransformOptions) -> byol::Result<Self> {
        let d = ByolTransformConfig::default();
        Ok(ByolTransformConfig {
            input_size: o.input_size.unwrap_or(d.input_size),
            cj_prob: o.cj_prob.unwrap_or(d.cj_prob),
            cj_strength: o.cj_strength.unwrap_or(d.cj_strength),
            cj_bright: o.cj_bright.unwrap_or(d.cj_bright),
            cj_contrast: o.cj_contrast.unwrap_or(d.cj_contrast),
            cj_sat: o.cj_sat.unwrap_or(d.cj_sat),
            cj_hue: o.cj_hue.unwrap_or(d.cj_hue),
            min_scale: o.min_scale.unwrap_or(d.min_scale),
            max_scale: o.max_scale.unwrap_or(d.max_scale),
            ratio: o.ratio.as_deref().map(|r| pair(r, "ratio")).transpose()?.unwrap_or(d.ratio),
            random_gray_scale: o.random_gray_scale.unwrap_or(d.random_gray_scale),
            hf_prob: o.hf_prob.unwrap_or(d.hf_prob),
            sigmas: o.sigmas.as_deref().map(|s| pair(s, "sigmas")).transpose()?.unwrap_or(d.sigmas),
            kernel_size: o.kernel_size.or(d.kernel_size),
            solarize_threshold: o.solarize_threshold.unwrap_or(d.solarize_threshold),
            normalize: match o.normalize {
                None => d.normalize,
                Some(Either::B(_)) => None,
                Some(Either::A(n)) => Some((n.mean, n.std)),
            },
            view1: view(o.view1, d.view1),
            view2: view(o.view2, d.view2),
            seed: match o.seed {
                Some(s) => u64::try_from(s).map_err(|_| byol::Error::range("seed", "an integer >= 0", s))?,
                None => d.seed,
            },
        })
    }
}

//! BYOL's two asymmetric views (Grill et al. 2020), with lightly's
//! `BYOLTransform` settings and defaults, drawn per image from a seeded
//! generator: crops and blurs batched with the functional ops, the per-pixel
//! ops in place on the CPU (`pixels.rs`) or batched on a GPU.
use crate::error::{Error, Result};
use crate::transforms::functional::{
    adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, check_image_shape, check_images, check_range, crop_and_resize,
    gaussian_blur, hflip, imagenet_normalization, normalize, random_grayscale, solarize, CropBox,
};
use crate::transforms::pixels::{self, ColourOps, FinishOps, Jitter};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// Settings of one of BYOL's two views (the paper's asymmetric augmentations).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewConfig {
    pub gaussian_blur: f64,
    pub solarization: f64,
}

/// lightly's `BYOLTransform` settings, with its defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ByolTransformConfig {
    pub input_size: i64,
    pub cj_prob: f64,
    pub cj_strength: f64,
    pub cj_bright: f64,
    pub cj_contrast: f64,
    pub cj_sat: f64,
    pub cj_hue: f64,
    pub min_scale: f64,
    pub max_scale: f64,
    pub ratio: (f64, f64),
    pub random_gray_scale: f64,
    pub hf_prob: f64,
    pub sigmas: (f64, f64),
    /// Odd blur kernel; `None`: about a tenth of `input_size`.
    pub kernel_size: Option<i64>,
    pub solarize_threshold: f64,
    pub normalize: Option<(Vec<f64>, Vec<f64>)>,
    pub view1: ViewConfig,
    pub view2: ViewConfig,
    /// Seed of the random draws (a loader draws its own per batch).
    pub seed: u64,
}

impl Default for ByolTransformConfig {
    fn default() -> Self {
        Self {
            input_size: 224,
            cj_prob: 0.8,
            cj_strength: 1.0,
            cj_bright: 0.4,
            cj_contrast: 0.4,
            cj_sat: 0.2,
            cj_hue: 0.1,
            min_scale: 0.08,
            max_scale: 1.0,
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            random_gray_scale: 0.2,
            hf_prob: 0.5,
            sigmas: (0.1, 2.0),
            kernel_size: None,
            solarize_threshold: 0.5,
            normalize: Some(imagenet_normalization()),
            view1: ViewConfig { gaussian_blur: 1.0, solarization: 0.0 },
            view2: ViewConfig { gaussian_blur: 0.1, solarization: 0.2 },
            seed: 0,
        }
    }
}

impl ByolTransformConfig {
    pub fn validate(&self) -> Result<()> {
        let prob = |v: f64, arg: &str| check_range(&[v], arg, 0.0, 1.0);
        if self.input_size < 1 {
            return Err(Error::range("inputSize", "a size >= 1", self.input_size));
        }
        prob(self.cj_prob, "cjProb")?;
        prob(self.random_gray_scale, "randomGrayScale")?;
        prob(self.hf_prob, "hfProb")?;
        prob(self.view1.gaussian_blur, "view1.gaussianBlur")?;
        prob(self.view2.gaussian_blur, "view2.gaussianBlur")?;
        prob(self.view1.solarization, "view1.solarization")?;
        prob(self.view2.solarization, "view2.solarization")?;
        prob(self.solarize_threshold, "solarizeThreshold")?;
        check_range(
            &[self.cj_strength, self.cj_bright, self.cj_contrast, self.cj_sat],
            "cjStrength/cjBright/cjContrast/cjSat",
            0.0,
            f64::MAX,
        )?;
        check_range(&[self.cj_hue * self.cj_strength], "cjHue", 0.0, 0.5)?;
        if !(self.min_scale > 0.0 && self.min_scale <= self.max_scale && self.max_scale <= 1.0) {
            return Err(Error::range("minScale", "0 < minScale <= maxScale <= 1", self.min_scale));
        }
        if !(self.ratio.0 > 0.0 && self.ratio.0 <= self.ratio.1) {
            return Err(Error::range("ratio", "0 < ratio[0] <= ratio[1]", format!("{:?}", self.ratio)));
        }
        if !(self.sigmas.0 > 0.0 && self.sigmas.0 <= self.sigmas.1) {
            return Err(Error::range("sigmas", "0 < sigmas[0] <= sigmas[1]", format!("{:?}", self.sigmas)));
        }
        if let Some(k) = self.kernel_size {
            if k < 1 || k % 2 == 0 {
                return Err(Error::range("kernelSize", "an odd number >= 1", k));
            }
        }
        Ok(())
    }

    pub fn blur_kernel(&self) -> i64 {
        self.kernel_size.unwrap_or_else(|| {
            let k = ((self.input_size as f64) * 0.1).round() as i64;
            if k % 2 == 0 {
                k + 1
            } else {
                k.max(1)
            }
        })
    }
}

/// Two asymmetric random views of each image of a batch, seeded.
pub struct ByolTransform {
    pub config: ByolTransformConfig,
    rng: ChaCha8Rng,
}

impl ByolTransform {
    pub fn new(config: ByolTransformConfig) -> Result<Self> {
        config.validate()?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Ok(Self { config, rng })
    }

    /// Both views of a `[N, C, H, W]` batch (uint8 or float in [0, 1]).
    pub fn apply(&mut self, images: &Tensor) -> Result<(Tensor, Tensor)> {
        let _guard = tch::no_grad_guard();
        // uint8 images stay uint8 until each crop is taken (`crop_and_resize`).
        let x = images.shallow_clone();
        if x.kind() == Kind::Uint8 {
            check_image_shape(&x, &[1, 3])?;
        } else {
            check_images(&x, &[1, 3])?;
        }
        let x = if x.size()[1] == 1 { x.f_expand([-1, 3, -1, -1], false)? } else { x };
        let (v1, v2) = (self.config.view1, self.config.view2);
        Ok((self.view(&x, v1)?, self.view(&x, v2)?))
    }

    fn coin(&mut self, n: usize, p: f64) -> Vec<bool> {
        (0..n).map(|_| self.rng.random::<f64>() < p).collect()
    }

    fn uniform(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| if hi > lo { self.rng.random_range(lo..hi) } else { lo }).collect()
    }

    /// torchvision's `RandomResizedCrop.get_params`: ten tries of a random
    /// area and log-uniform aspect ratio, then a centred crop.
    fn crop_box(&mut self, height: i64, width: i64) -> CropBox {
        let c = &self.config;
        let (scale, ratio) = ((c.min_scale, c.max_scale), c.ratio);
        let area = (height * width) as f64;
        for _ in 0..10 {
            let target = area * self.rng.random_range(scale.0..=scale.1);
            let log_r = self.rng.random_range(ratio.0.ln()..=ratio.1.ln());
            let aspect = log_r.exp();
            let w = (target * aspect).sqrt().round() as i64;
            let h = (target / aspect).sqrt().round() as i64;
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = self.rng.random_range(0..=height - h);
                let left = self.rng.random_range(0..=width - w);
                return CropBox { top, left, height: h, width: w };
            }
        }
        let in_ratio = width as f64 / height as f64;
        let (w, h) = if in_ratio < ratio.0 {
            (width, (width as f64 / ratio.0).round() as i64)
        } else if in_ratio > ratio.1 {
            ((height as f64 * ratio.1).round() as i64, height)
        } else {
            (width, height)
        };
        CropBox { top: (height - h) / 2, left: (width - w) / 2, height: h, width: w }
    }

    fn view(&mut self, x: &Tensor, view: ViewConfig) -> Result<Tensor> {
        let (n, _, height, width) = x.size4()?;
        let n_us = n as usize;
        let c = self.config.clone();
        let boxes: Vec<CropBox> = (0..n_us).map(|_| self.crop_box(height, width)).collect();
        let flips = self.coin(n_us, c.hf_prob);
        let jitter = self.coin(n_us, c.cj_prob);
        let jitters: Vec<Option<Jitter>> = if jitter.iter().any(|&j| j) {
            let s = c.cj_strength;
            let b = self.uniform(n_us, (1.0 - c.cj_bright * s).max(0.0), 1.0 + c.cj_bright * s);
            let ct = self.uniform(n_us, (1.0 - c.cj_contrast * s).max(0.0), 1.0 + c.cj_contrast * s);
            let sat = self.uniform(n_us, (1.0 - c.cj_sat * s).max(0.0), 1.0 + c.cj_sat * s);
            let hue = self.uniform(n_us, -c.cj_hue * s, c.cj_hue * s);
            (0..n_us)
                .map(|i| {
                    // Each op in its own random order per image.
                    let mut order = [0, 1, 2, 3];
                    for k in (1..4).rev() {
                        order.swap(k, self.rng.random_range(0..=k));
                    }
                    let factors = (b[i] as f32, ct[i] as f32, sat[i] as f32, hue[i] as f32);
                    jitter[i].then_some(Jitter { order, brightness: factors.0, contrast: factors.1, saturation: factors.2, hue: factors.3 })
                })
                .collect()
        } else {
            vec![None; n_us]
        };
        let gray = self.coin(n_us, c.random_gray_scale);
        let blur = self.coin(n_us, view.gaussian_blur);
        let sigmas = self.uniform(n_us, c.sigmas.0, c.sigmas.1);
        let solarized = self.coin(n_us, view.solarization);

        let mut y = crop_and_resize(x, &boxes, c.input_size)?;
        let in_place = pixels::applies(&y);
        if in_place {
            let plans: Vec<ColourOps> = (0..n_us).map(|i| ColourOps { flip: flips[i], jitter: jitters[i], gray: gray[i] }).collect();
            pixels::colour(&mut y, &plans)?;
        } else {
            y = colour_batched(&y, &flips, &jitters, &gray)?;
        }
        let members: Vec<usize> = (0..n_us).filter(|&i| blur[i]).collect();
        let kernel = c.blur_kernel().min(2 * c.input_size - 1);
        if in_place {
            // Image by image into the batch: no batch-sized temporaries, which
            // glibc would map and unmap for every batch.
            for &i in &members {
                let mut image = y.f_narrow(0, i as i64, 1)?;
                image.f_copy_(&gaussian_blur(&image, kernel, &[sigmas[i]])?)?;
            }
        } else if !members.is_empty() {
            let chosen: Vec<f64> = members.iter().map(|&i| sigmas[i]).collect();
            let blurred = gaussian_blur(&subset(&y, &members)?, kernel, &chosen)?;
            y = put_subset(&y, &members, &blurred)?;
        }
        if in_place {
            let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let normalization = c.normalize.as_ref().map(|(m, s)| (f32s(m), f32s(s)));
            let ops = FinishOps {
                solarize: Some(c.solarize_threshold as f32),
                normalize: normalization.as_ref().map(|(m, s)| (m.as_slice(), s.as_slice())),
            };
            pixels::finish(&mut y, &solarized, ops)?;
            return Ok(y);
        }
        y = solarize(&y, c.solarize_threshold, &solarized)?;
        if let Some((mean, std)) = &c.normalize {
            y = normalize(&y, mean, std)?;
        }
        Ok(y)
    }
}

/// Flip, jitter and grayscale with the functional ops, for batches the
/// per-pixel ops do not take (on a GPU): images that share a jitter order are
/// jittered together, each op once, in a few batched kernels.
fn colour_batched(y: &Tensor, flips: &[bool], jitters: &[Option<Jitter>], gray: &[bool]) -> Result<Tensor> {
    let mut y = hflip(y, flips)?;
    let mut groups: std::collections::BTreeMap<[usize; 4], Vec<usize>> = std::collections::BTreeMap::new();
    for (i, j) in jitters.iter().enumerate() {
        if let Some(j) = j {
            groups.entry(j.order).or_default().push(i);
        }
    }
    for (order, members) in groups {
        let pick = |f: fn(&Jitter) -> f32| members.iter().filter_map(|&i| jitters[i].as_ref()).map(|j| f(j) as f64).collect::<Vec<f64>>();
        let mut sub = subset(&y, &members)?;
        for op in order {
            sub = match op {
                0 => adjust_brightness(&sub, &pick(|j| j.brightness))?,
                1 => adjust_contrast(&sub, &pick(|j| j.contrast))?,
                2 => adjust_saturation(&sub, &pick(|j| j.saturation))?,
                _ => adjust_hue(&sub, &pick(|j| j.hue))?,
            };
        }
        y = put_subset(&y, &members, &sub)?;
    }
    random_grayscale(&y, gray)
}

fn index_tensor(members: &[usize], x: &Tensor) -> Result<Tensor> {
    let idx: Vec<i64> = members.iter().map(|&i| i as i64).collect();
    Ok(Tensor::f_from_slice(&idx)?.f_to_device(x.device())?)
}

/// The images at `members`, as a batch; the whole batch when all are chosen.
fn subset(x: &Tensor, members: &[usize]) -> Result<Tensor> {
    if members.len() as i64 == x.size()[0] {
        return Ok(x.shallow_clone());
    }
    Ok(x.f_index_select(0, &index_tensor(members, x)?)?)
}

/// `x` with the images at `members` replaced by `values`.
fn put_subset(x: &Tensor, members: &[usize], values: &Tensor) -> Result<Tensor> {
    if members.len() as i64 == x.size()[0] {
        return Ok(values.shallow_clone());
    }
    Ok(x.f_index_copy(0, &index_tensor(members, x)?, values)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transform(min_scale: f64) -> ByolTransform {
        ByolTransform::new(ByolTransformConfig { min_scale, seed: 7, ..Default::default() }).expect("valid settings")
    }

    #[test]
    fn crop_boxes_lie_inside_the_image_with_an_area_and_aspect_in_range() {
        let mut t = transform(0.08);
        for _ in 0..1000 {
            let b = t.crop_box(48, 64);
            assert!(b.top >= 0 && b.left >= 0 && b.top + b.height <= 48 && b.left + b.width <= 64, "{b:?}");
            let area = (b.height * b.width) as f64 / (48.0 * 64.0);
            // Rounding each side to whole pixels moves the area and aspect a little.
            assert!((0.06..=1.0).contains(&area), "area {area}");
            let aspect = b.width as f64 / b.height as f64;
            assert!((0.7..=1.43).contains(&aspect), "aspect {aspect}");
        }
    }

    #[test]
    fn an_image_too_narrow_for_any_try_gets_torchvisions_centred_fallback() {
        // 2x200: every try needs a side of at least 5 pixels, so all ten fail;
        // the fallback clamps the aspect ratio to 4/3 and centres the box.
        let b = transform(0.08).crop_box(2, 200);
        assert_eq!((b.top, b.left, b.height, b.width), (0, 98, 2, 3));
    }

    #[test]
    fn blurring_image_by_image_equals_the_batched_blur() {
        let _guard = tch::no_grad_guard();
        tch::manual_seed(3);
        let x = Tensor::rand([4, 3, 20, 20], (Kind::Float, tch::Device::Cpu));
        let sigmas = [0.3, 1.1, 2.0, 0.7];
        let batched = gaussian_blur(&x, 5, &sigmas).expect("batched blur");
        for (i, &s) in sigmas.iter().enumerate() {
            let one = gaussian_blur(&x.narrow(0, i as i64, 1), 5, &[s]).expect("one image");
            let diff = (one - batched.narrow(0, i as i64, 1)).abs().max().double_value(&[]);
            assert!(diff <= 1e-6, "image {i}: {diff}");
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_boxes() {
        let (mut a, mut b) = (transform(0.3), transform(0.3));
        for _ in 0..20 {
            assert_eq!(format!("{:?}", a.crop_box(28, 28)), format!("{:?}", b.crop_box(28, 28)));
        }
    }
}

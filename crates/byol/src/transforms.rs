//! Image transforms on batches of float images `[N, C, H, W]` in `[0, 1]`, on
//! whatever device the batch is on. Each takes one parameter per image (or one
//! for all), so a batch gets independent random augmentations in a few kernels.
//! The semantics are those of `torchvision.transforms.v2.functional` on float
//! tensors, which the parity tests compare against.
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// Per-image factors as a `[N, 1, 1, 1]` tensor (or `[1, 1, 1, 1]` for one value).
fn per_image(x: &Tensor, values: &[f64], arg: &str) -> Result<Tensor> {
    let n = x.size()[0];
    if values.len() != 1 && values.len() as i64 != n {
        return Err(Error::invalid(arg, format!("1 or {n} values (one per image)"), format!("{} values", values.len())));
    }
    Ok(Tensor::f_from_slice(values)?.f_to_kind(x.kind())?.f_to_device(x.device())?.f_view([-1, 1, 1, 1])?)
}

/// Per-image flags as a `[N, 1, 1, 1]` boolean mask.
fn flag_mask(x: &Tensor, flags: &[bool]) -> Result<Tensor> {
    let values: Vec<f64> = flags.iter().map(|&f| if f { 1.0 } else { 0.0 }).collect();
    Ok(per_image(x, &values, "flags")?.f_to_kind(Kind::Bool)?)
}

pub fn check_images(x: &Tensor, channels: &[i64]) -> Result<()> {
    let size = x.size();
    if size.len() != 4 || !channels.contains(&size[1]) {
        return Err(Error::invalid("images", format!("a [N, C, H, W] batch with C in {channels:?}"), format!("shape {size:?}")));
    }
    if !crate::network::is_float(x.kind()) {
        return Err(Error::invalid("images", "float images in [0, 1]", crate::network::kind_name(x.kind())));
    }
    Ok(())
}

fn check_range(values: &[f64], arg: &str, lo: f64, hi: f64) -> Result<()> {
    match values.iter().find(|v| !(lo..=hi).contains(*v)) {
        Some(v) => Err(Error::range(arg, format!("values in [{lo}, {hi}]"), v)),
        None => Ok(()),
    }
}

/// `image1 * ratio + image2 * (1 - ratio)`, clamped to `[0, 1]`.
fn blend(a: &Tensor, b: &Tensor, ratio: &Tensor) -> Result<Tensor> {
    let one_minus = ratio.f_neg()?.f_add_scalar(1.0)?;
    Ok(a.f_mul(ratio)?.f_add(&b.f_mul(&one_minus)?)?.f_clamp(0.0, 1.0)?)
}

/// Horizontal flip of the images whose flag is set.
pub fn hflip(x: &Tensor, flags: &[bool]) -> Result<Tensor> {
    check_images(x, &[1, 3])?;
    let flipped = x.f_flip([3])?;
    Ok(flipped.f_where_self(&flag_mask(x, flags)?, x)?)
}

/// `rgb_to_grayscale`: ITU-R 601-2 luma, one channel.
pub fn rgb_to_grayscale(x: &Tensor) -> Result<Tensor> {
    check_images(x, &[1, 3])?;
    if x.size()[1] == 1 {
        return Ok(x.copy());
    }
    let c = x.f_unbind(1)?;
    Ok(c[0].f_mul_scalar(0.2989)?.f_add(&c[1].f_mul_scalar(0.587)?)?.f_add(&c[2].f_mul_scalar(0.114)?)?.f_unsqueeze(1)?)
}

/// Grayscale (as 3 equal channels) for the images whose flag is set.
pub fn random_grayscale(x: &Tensor, flags: &[bool]) -> Result<Tensor> {
    let gray = rgb_to_grayscale(x)?.f_expand_as(x)?;
    Ok(gray.f_where_self(&flag_mask(x, flags)?, x)?)
}

pub fn adjust_brightness(x: &Tensor, factors: &[f64]) -> Result<Tensor> {
    check_images(x, &[1, 3])?;
    check_range(factors, "brightnessFactor", 0.0, f64::MAX)?;
    Ok(x.f_mul(&per_image(x, factors, "brightnessFactor")?)?.f_clamp(0.0, 1.0)?)
}

pub fn adjust_contrast(x: &Tensor, factors: &[f64]) -> Result<Tensor> {
    check_images(x, &[1, 3])?;
    check_range(factors, "contrastFactor", 0.0, f64::MAX)?;
    let mean = rgb_to_grayscale(x)?.f_mean_dim(&[1i64, 2, 3][..], true, None::<Kind>)?;
    blend(x, &mean, &per_image(x, factors, "contrastFactor")?)
}

pub fn adjust_saturation(x: &Tensor, factors: &[f64]) -> Result<Tensor> {
    check_images(x, &[1, 3])?;
    check_range(factors, "saturationFactor", 0.0, f64::MAX)?;
    if x.size()[1] == 1 {
        return Ok(x.copy());
    }
    blend(x, &rgb_to_grayscale(x)?, &per_image(x, factors, "saturationFactor")?)
}

/// Shifts the hue by `factors` (in turns, each in [-0.5, 0.5]) through HSV.
pub fn adjust_hue(x: &Tensor, factors: &[f64]) -> Result<Tensor> {
    check_images(x, &[1, 3])?;
    check_range(factors, "hueFactor", -0.5, 0.5)?;
    if x.size()[1] == 1 {
        return Ok(x.copy());
    }
    let (h, s, v) = rgb_to_hsv(x)?;
    let h = h.f_add(&per_image(x, factors, "hueFactor")?.f_squeeze_dim(1)?)?.f_remainder(1.0)?;
    hsv_to_rgb(&h, &s, &v)
}

/// Hue in turns `[0, 1)`, saturation and value, each `[N, H, W]`.
fn rgb_to_hsv(x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let c = x.f_unbind(1)?;
    let (r, g) = (&c[0], &c[1]);
    let maxc = x.f_amax(&[1i64][..], false)?;
    let minc = x.f_amin(&[1i64][..], false)?;
    let range = maxc.f_sub(&minc)?;
    // Where all channels are equal, hue and saturation are 0: divide by 1 there.
    let varied = maxc.f_ne_tensor(&minc)?;
    let ones = maxc.f_ones_like()?;
    let s = range.f_div(&maxc.f_where_self(&varied, &ones)?)?;
    let div = range.f_where_self(&varied, &ones)?;
    let scaled = maxc.f_unsqueeze(1)?.f_sub(x)?.f_div(&div.f_unsqueeze(1)?)?.f_unbind(1)?;
    let (rc, gc, bc) = (&scaled[0], &scaled[1], &scaled[2]);
    let is_r = maxc.f_eq_tensor(r)?;
    let is_g = maxc.f_eq_tensor(g)?.f_logical_and(&is_r.f_logical_not()?)?;
    let h_r = bc.f_sub(gc)?;
    let h_g = rc.f_add_scalar(2.0)?.f_sub(bc)?;
    let h_b = gc.f_add_scalar(4.0)?.f_sub(rc)?;
    let h = h_r.f_where_self(&is_r, &h_g.f_where_self(&is_g, &h_b)?)?;
    let h = h.f_mul(&varied)?;
    let h = h.f_mul_scalar(1.0 / 6.0)?.f_add_scalar(1.0)?.f_fmod(1.0)?;
    Ok((h, s, maxc))
}

fn hsv_to_rgb(h: &Tensor, s: &Tensor, v: &Tensor) -> Result<Tensor> {
    let h6 = h.f_mul_scalar(6.0)?;
    let i = h6.f_floor()?;
    let f = h6.f_sub(&i)?;
    let i = i.f_remainder(6.0)?;
    let p = v.f_mul(&s.f_neg()?.f_add_scalar(1.0)?)?.f_clamp(0.0, 1.0)?;
    let q = v.f_mul(&s.f_mul(&f)?.f_neg()?.f_add_scalar(1.0)?)?.f_clamp(0.0, 1.0)?;
    let t = v.f_mul(&s.f_mul(&f.f_neg()?.f_add_scalar(1.0)?)?.f_neg()?.f_add_scalar(1.0)?)?.f_clamp(0.0, 1.0)?;
    // Sector i of the hue circle picks (r, g, b) from (v, t, p, q).
    let sectors = (0..5).map(|k| i.f_eq(k as i64)).collect::<std::result::Result<Vec<_>, _>>()?;
    let pick = |choices: [&Tensor; 6]| -> Result<Tensor> {
        let mut out = choices[5].shallow_clone();
        for k in (0..5).rev() {
            out = choices[k].f_where_self(&sectors[k], &out)?;
        }
        Ok(out)
    };
    let r = pick([v, &q, &p, &p, &t, v])?;
    let g = pick([&t, v, v, &q, &p, &p])?;
    let b = pick([&p, &p, &t, v, v, &q])?;
    Ok(Tensor::f_stack(&[r, g, b], 1)?)
}

/// `solarize`: `1 - x` where `x >= threshold`, for the images whose flag is set.
pub fn solarize(x: &Tensor, threshold: f64, flags: &[bool]) -> Result<Tensor> {
    check_images(x, &[1, 3])?;
    check_range(&[threshold], "threshold", 0.0, 1.0)?;
    let inverted = x.f_neg()?.f_add_scalar(1.0)?;
    let m = x.f_ge(threshold)?.f_logical_and(&flag_mask(x, flags)?)?;
    Ok(inverted.f_where_self(&m, x)?)
}

/// `gaussian_blur` with an odd `kernel_size` and one sigma per image; reflect padding.
pub fn gaussian_blur(x: &Tensor, kernel_size: i64, sigmas: &[f64]) -> Result<Tensor> {
    check_images(x, &[1, 3])?;
    if kernel_size < 1 || kernel_size % 2 == 0 {
        return Err(Error::range("kernelSize", "an odd number >= 1", kernel_size));
    }
    match sigmas.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        Some(s) => return Err(Error::range("sigma", "values > 0", s)),
        None => {}
    }
    let (n, c, hgt, wid) = x.size4()?;
    let half = (kernel_size - 1) as f64 / 2.0;
    // [N, K] kernels, one per image, normalised to sum 1.
    let offsets = Tensor::f_linspace(-half, half, kernel_size, (x.kind(), x.device()))?.f_view([1, -1])?;
    let sig = per_image(x, sigmas, "sigma")?.f_view([-1, 1])?;
    let pdf = offsets.f_div(&sig)?.f_pow_tensor_scalar(2)?.f_mul_scalar(-0.5)?.f_exp()?;
    let k1 = pdf.f_div(&pdf.f_sum_dim_intlist(&[1i64][..], true, None::<Kind>)?)?;
    let k1 = if k1.size()[0] == 1 && n > 1 { k1.f_expand([n, kernel_size], false)? } else { k1 };
    // Separable: rows then columns, each a grouped convolution over N*C channels.
    let pad = kernel_size / 2;
    let kernels = k1.f_repeat_interleave_self_int(c, 0, None)?;
    let flat = x.f_reshape([1, n * c, hgt, wid])?.f_pad(&[pad, pad, pad, pad][..], "reflect", None)?;
    let horizontal = flat.f_conv2d(&kernels.f_view([n * c, 1, 1, kernel_size])?, None::<Tensor>, [1, 1], [0, 0], [1, 1], n * c)?;
    let both = horizontal.f_conv2d(&kernels.f_view([n * c, 1, kernel_size, 1])?, None::<Tensor>, [1, 1], [0, 0], [1, 1], n * c)?;
    Ok(both.f_reshape([n, c, hgt, wid])?)
}

/// `normalize`: `(x - mean) / std` per channel.
pub fn normalize(x: &Tensor, mean: &[f64], std: &[f64]) -> Result<Tensor> {
    let c = x.size().get(1).copied().unwrap_or(0);
    if x.dim() != 4 || mean.len() as i64 != c || std.len() as i64 != c {
        return Err(Error::invalid("mean/std", format!("one value per channel of a [N, C, H, W] batch"), format!("{} and {} values for shape {:?}", mean.len(), std.len(), x.size())));
    }
    if let Some(s) = std.iter().find(|s| **s == 0.0 || !s.is_finite()) {
        return Err(Error::range("std", "non-zero finite values", s));
    }
    let m = Tensor::f_from_slice(mean)?.f_to_kind(x.kind())?.f_to_device(x.device())?.f_view([1, -1, 1, 1])?;
    let s = Tensor::f_from_slice(std)?.f_to_kind(x.kind())?.f_to_device(x.device())?.f_view([1, -1, 1, 1])?;
    Ok(x.f_sub(&m)?.f_div(&s)?)
}

/// A crop box: `top, left, height, width` in pixels.
#[derive(Clone, Copy, Debug)]
pub struct CropBox {
    pub top: i64,
    pub left: i64,
    pub height: i64,
    pub width: i64,
}

/// `resized_crop` of each image to `size x size`, bilinear with antialiasing
/// (torchvision's default for tensors).
pub fn resized_crop(x: &Tensor, boxes: &[CropBox], size: i64) -> Result<Tensor> {
    check_images(x, &[1, 3])?;
    let (n, _, hgt, wid) = x.size4()?;
    if boxes.len() as i64 != n {
        return Err(Error::invalid("boxes", format!("{n} crop boxes (one per image)"), format!("{} boxes", boxes.len())));
    }
    if size < 1 {
        return Err(Error::range("size", "an output size >= 1", size));
    }
    let mut out = Vec::with_capacity(boxes.len());
    for (i, b) in boxes.iter().enumerate() {
        if b.height < 1 || b.width < 1 || b.top < 0 || b.left < 0 || b.top + b.height > hgt || b.left + b.width > wid {
            return Err(Error::range(format!("boxes[{i}]"), format!("a box inside the {hgt}x{wid} image"), format!("{b:?}")));
        }
        let crop = x.f_narrow(0, i as i64, 1)?.f_narrow(2, b.top, b.height)?.f_narrow(3, b.left, b.width)?;
        out.push(crop.f_internal_upsample_bilinear2d_aa([size, size], false, None, None)?);
    }
    Ok(Tensor::f_cat(&out, 0)?)
}

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
            normalize: Some((vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225])),
            view1: ViewConfig { gaussian_blur: 1.0, solarization: 0.0 },
            view2: ViewConfig { gaussian_blur: 0.1, solarization: 0.2 },
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
        check_range(&[self.cj_strength, self.cj_bright, self.cj_contrast, self.cj_sat], "cjStrength/cjBright/cjContrast/cjSat", 0.0, f64::MAX)?;
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
            if k % 2 == 0 { k + 1 } else { k.max(1) }
        })
    }
}

/// Two asymmetric random views of each image of a batch, seeded.
pub struct ByolTransform {
    pub config: ByolTransformConfig,
    rng: ChaCha8Rng,
}

impl ByolTransform {
    pub fn new(config: ByolTransformConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, rng: ChaCha8Rng::seed_from_u64(seed) })
    }

    /// Both views of a `[N, C, H, W]` batch (uint8 or float in [0, 1]).
    pub fn apply(&mut self, images: &Tensor) -> Result<(Tensor, Tensor)> {
        let _guard = tch::no_grad_guard();
        let x = if images.kind() == Kind::Uint8 { images.f_to_kind(Kind::Float)?.f_div_scalar(255.0)? } else { images.shallow_clone() };
        check_images(&x, &[1, 3])?;
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
        let mut y = resized_crop(x, &boxes, c.input_size)?;
        let flips = self.coin(n_us, c.hf_prob);
        y = hflip(&y, &flips)?;

        // Colour jitter, each op in its own random order per image.
        let jitter = self.coin(n_us, c.cj_prob);
        if jitter.iter().any(|&j| j) {
            let s = c.cj_strength;
            let b = self.uniform(n_us, (1.0 - c.cj_bright * s).max(0.0), 1.0 + c.cj_bright * s);
            let ct = self.uniform(n_us, (1.0 - c.cj_contrast * s).max(0.0), 1.0 + c.cj_contrast * s);
            let sat = self.uniform(n_us, (1.0 - c.cj_sat * s).max(0.0), 1.0 + c.cj_sat * s);
            let hue = self.uniform(n_us, -c.cj_hue * s, c.cj_hue * s);
            let orders: Vec<[usize; 4]> = (0..n_us)
                .map(|_| {
                    let mut o = [0, 1, 2, 3];
                    for i in (1..4).rev() {
                        o.swap(i, self.rng.random_range(0..=i));
                    }
                    o
                })
                .collect();
            // Images that share an order are jittered together, each op once:
            // the same work as per-image jitter, in a few batched kernels.
            let mut groups: std::collections::BTreeMap<[usize; 4], Vec<usize>> = std::collections::BTreeMap::new();
            for i in (0..n_us).filter(|&i| jitter[i]) {
                groups.entry(orders[i]).or_default().push(i);
            }
            for (order, members) in groups {
                let pick = |v: &[f64]| members.iter().map(|&i| v[i]).collect::<Vec<f64>>();
                let mut sub = subset(&y, &members)?;
                for op in order {
                    sub = match op {
                        0 => adjust_brightness(&sub, &pick(&b))?,
                        1 => adjust_contrast(&sub, &pick(&ct))?,
                        2 => adjust_saturation(&sub, &pick(&sat))?,
                        _ => adjust_hue(&sub, &pick(&hue))?,
                    };
                }
                y = put_subset(&y, &members, &sub)?;
            }
        }
        let gray = self.coin(n_us, c.random_gray_scale);
        y = random_grayscale(&y, &gray)?;
        let blur = self.coin(n_us, view.gaussian_blur);
        let sigmas = self.uniform(n_us, c.sigmas.0, c.sigmas.1);
        let members: Vec<usize> = (0..n_us).filter(|&i| blur[i]).collect();
        if !members.is_empty() {
            let chosen: Vec<f64> = members.iter().map(|&i| sigmas[i]).collect();
            let blurred = gaussian_blur(&subset(&y, &members)?, c.blur_kernel().min(2 * c.input_size - 1), &chosen)?;
            y = put_subset(&y, &members, &blurred)?;
        }
        let sol = self.coin(n_us, view.solarization);
        y = solarize(&y, c.solarize_threshold, &sol)?;
        if let Some((mean, std)) = &c.normalize {
            y = normalize(&y, mean, std)?;
        }
        Ok(y)
    }
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

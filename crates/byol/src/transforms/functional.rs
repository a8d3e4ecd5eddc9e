//! Image transforms on batches of float images `[N, C, H, W]` in `[0, 1]`, on
//! whatever device the batch is on. Each takes one parameter per image (or one
//! for all), so a batch gets independent random augmentations in a few kernels.
//! The semantics are those of `torchvision.transforms.v2.functional` on float
//! tensors, which the parity tests compare against.
use crate::error::{Error, Result};
use crate::tensor::{is_float, kind_name};
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
    check_image_shape(x, channels)?;
    if !is_float(x.kind()) {
        return Err(Error::invalid("images", "float images in [0, 1]", kind_name(x.kind())));
    }
    Ok(())
}

/// The shape of a `[N, C, H, W]` batch with C in `channels`, whatever its kind.
pub(crate) fn check_image_shape(x: &Tensor, channels: &[i64]) -> Result<()> {
    let size = x.size();
    if size.len() != 4 || !channels.contains(&size[1]) {
        return Err(Error::invalid("images", format!("a [N, C, H, W] batch with C in {channels:?}"), format!("shape {size:?}")));
    }
    Ok(())
}

pub(crate) fn check_range(values: &[f64], arg: &str, lo: f64, hi: f64) -> Result<()> {
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
    if let Some(s) = sigmas.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(Error::range("sigma", "values > 0", s));
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

/// ImageNet's per-channel mean and standard deviation, the usual normalisation.
pub fn imagenet_normalization() -> (Vec<f64>, Vec<f64>) {
    (vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225])
}

/// `normalize`: `(x - mean) / std` per channel.
pub fn normalize(x: &Tensor, mean: &[f64], std: &[f64]) -> Result<Tensor> {
    let c = x.size().get(1).copied().unwrap_or(0);
    if x.dim() != 4 || mean.len() as i64 != c || std.len() as i64 != c {
        return Err(Error::invalid(
            "mean/std",
            "one value per channel of a [N, C, H, W] batch",
            format!("{} and {} values for shape {:?}", mean.len(), std.len(), x.size()),
        ));
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

impl CropBox {
    /// `[top, left, height, width]`, the box of image `index`.
    pub fn from_slice(b: &[i64], index: usize) -> Result<Self> {
        match b {
            [top, left, height, width] => Ok(Self { top: *top, left: *left, height: *height, width: *width }),
            _ => Err(Error::invalid(format!("boxes[{index}]"), "[top, left, height, width]", format!("{} numbers", b.len()))),
        }
    }
}

/// `resized_crop` of each image to `size x size`, bilinear with antialiasing
/// (torchvision's default for tensors).
pub fn resized_crop(x: &Tensor, boxes: &[CropBox], size: i64) -> Result<Tensor> {
    check_images(x, &[1, 3])?;
    crop_and_resize(x, boxes, size)
}

/// `resized_crop` that also takes uint8 images, each crop converted to float
/// in [0, 1] before resizing: the same values as converting the whole batch
/// first, without a float copy of every full image.
pub(crate) fn crop_and_resize(x: &Tensor, boxes: &[CropBox], size: i64) -> Result<Tensor> {
    let boxes: Vec<[i64; 4]> = boxes.iter().map(|b| [b.top, b.left, b.height, b.width]).collect();
    crate::tensor::shim::crop_resize(x, &boxes, size)
}

//! BYOL's per-pixel augmentations on a CPU float32 batch, in place, one image
//! at a time: flip, colour jitter in each image's order, grayscale, then
//! (after the blur) solarize and normalise. The functional ops in
//! `functional.rs` need a dozen kernels and as many temporaries per op (the
//! hue alone goes through HSV in about thirty); here each op is one pass over
//! an image that stays in cache. Each formula is the functional op's, in
//! float32 and in the same order of operations, so the results are the same
//! bit for bit, except the contrast's mean (summed in f64 here, by libtorch's
//! own reduction there), which differs by float32 rounding.
use crate::error::{Error, Result};
use tch::{Device, Kind, Tensor};

/// The jitter of one image: factors and the order of the four ops
/// (0 brightness, 1 contrast, 2 saturation, 3 hue).
#[derive(Clone, Copy, Debug)]
pub struct Jitter {
    pub order: [usize; 4],
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    pub hue: f32,
}

/// What happens to one image before the blur.
#[derive(Clone, Copy, Debug, Default)]
pub struct ColourOps {
    pub flip: bool,
    pub jitter: Option<Jitter>,
    pub gray: bool,
}

/// What happens to one image after the blur.
#[derive(Clone, Copy, Debug)]
pub struct FinishOps<'a> {
    /// Solarize at this threshold.
    pub solarize: Option<f32>,
    /// `(x - mean) / std` per channel.
    pub normalize: Option<(&'a [f32], &'a [f32])>,
}

/// Whether `x` is a batch these functions can work on in place.
pub fn applies(x: &Tensor) -> bool {
    x.device() == Device::Cpu && x.kind() == Kind::Float && x.dim() == 4 && x.size()[1] == 3 && x.is_contiguous()
}

/// The pixels of `x`, for writing in place.
///
/// `x` must be a contiguous CPU float32 tensor that no other tensor shares
/// (the transforms' own intermediate batch).
fn pixels(x: &mut Tensor) -> Result<&mut [f32]> {
    if !applies(x) {
        return Err(Error::State(format!("per-pixel ops need a contiguous CPU float32 [N, 3, H, W] batch, not {:?}", x.size())));
    }
    let len = x.numel();
    // SAFETY: checked above to be a contiguous float32 CPU tensor of `len`
    // elements; the caller owns the only handle, and `&mut x` keeps it alive
    // and unshared for the slice's lifetime.
    Ok(unsafe { std::slice::from_raw_parts_mut(x.data_ptr() as *mut f32, len) })
}

/// Flip, jitter and grayscale, image by image (`ops[i]` for image `i`).
pub fn colour(x: &mut Tensor, ops: &[ColourOps]) -> Result<()> {
    let (n, _, h, w) = x.size4()?;
    let (h, w) = (h as usize, w as usize);
    if ops.len() as i64 != n {
        return Err(Error::State(format!("{} colour plans for {n} images", ops.len())));
    }
    let data = pixels(x)?;
    for (image, op) in data.chunks_exact_mut(3 * h * w).zip(ops) {
        if op.flip {
            for row in image.chunks_exact_mut(w) {
                row.reverse();
            }
        }
        if let Some(j) = op.jitter {
            for step in j.order {
                jitter_step(image, step, &j);
            }
        }
        if op.gray {
            grayscale(image);
        }
    }
    Ok(())
}

/// Solarize (for the images whose flag is set) and normalise.
pub fn finish(x: &mut Tensor, solarize: &[bool], ops: FinishOps) -> Result<()> {
    let (_, _, h, w) = x.size4()?;
    let plane = (h * w) as usize;
    let data = pixels(x)?;
    for (image, &flag) in data.chunks_exact_mut(3 * plane).zip(solarize) {
        for (c, channel) in image.chunks_exact_mut(plane).enumerate() {
            let threshold = ops.solarize.filter(|_| flag);
            let norm = ops.normalize.map(|(m, s)| (m[c], s[c]));
            for v in channel.iter_mut() {
                if let Some(t) = threshold {
                    if *v >= t {
                        *v = -*v + 1.0;
                    }
                }
                if let Some((m, s)) = norm {
                    *v = (*v - m) / s;
                }
            }
        }
    }
    Ok(())
}

/// One of the jitter's four ops on one image.
fn jitter_step(image: &mut [f32], step: usize, j: &Jitter) {
    match step {
        0 => brightness(image, j.brightness),
        1 => contrast(image, j.contrast),
        2 => saturation(image, j.saturation),
        _ => hue(image, j.hue),
    }
}

fn planes(image: &mut [f32]) -> (&mut [f32], &mut [f32], &mut [f32]) {
    let plane = image.len() / 3;
    let (r, rest) = image.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    (r, g, b)
}

// libtorch rounds a double scalar to float32 for a float32 tensor; a float
// literal could round the decimal differently.
const LUMA: [f32; 3] = [0.2989f64 as f32, 0.587f64 as f32, 0.114f64 as f32];

fn gray_of(r: f32, g: f32, b: f32) -> f32 {
    r * LUMA[0] + g * LUMA[1] + b * LUMA[2]
}

/// `a * ratio + b * (1 - ratio)`, clamped.
fn blend(a: f32, b: f32, ratio: f32) -> f32 {
    (a * ratio + b * (-ratio + 1.0)).clamp(0.0, 1.0)
}

fn brightness(image: &mut [f32], f: f32) {
    for v in image.iter_mut() {
        *v = (*v * f).clamp(0.0, 1.0);
    }
}

fn contrast(image: &mut [f32], f: f32) {
    let (r, g, b) = planes(image);
    let sum: f64 = r.iter().zip(g.iter()).zip(b.iter()).map(|((&r, &g), &b)| gray_of(r, g, b) as f64).sum();
    let mean = (sum / r.len() as f64) as f32;
    for plane in [r, g, b] {
        for v in plane.iter_mut() {
            *v = blend(*v, mean, f);
        }
    }
}

fn saturation(image: &mut [f32], f: f32) {
    let (r, g, b) = planes(image);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let gray = gray_of(*r, *g, *b);
        (*r, *g, *b) = (blend(*r, gray, f), blend(*g, gray, f), blend(*b, gray, f));
    }
}

fn grayscale(image: &mut [f32]) {
    let (r, g, b) = planes(image);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let gray = gray_of(*r, *g, *b);
        (*r, *g, *b) = (gray, gray, gray);
    }
}

/// Floats at least this large are whole numbers (or infinite, or NaN).
const WHOLE: f32 = 8_388_608.0;

/// C's `fmod(x, 1)`: `x - trunc(x)` is exact. Rust's `%` becomes a call to a
/// software `fmodf` (which LLVM even runs on both sides of a branch): a tenth
/// of the views' time.
fn fmod1(x: f32) -> f32 {
    if x.abs() < WHOLE {
        let m = x - (x as i32) as f32;
        // fmod's zero has the sign of x.
        if m == 0.0 {
            x * 0.0
        } else {
            m
        }
    } else {
        // A whole number leaves ±0 with its sign; inf and NaN give NaN.
        x * 0.0
    }
}

/// `floor(x)`, without a call to libm's `floorf`.
fn floor(x: f32) -> f32 {
    if x.abs() < WHOLE {
        let t = (x as i32) as f32;
        if t > x {
            t - 1.0
        } else if t == 0.0 {
            // floor(-0) is -0.
            x * 0.0
        } else {
            t
        }
    } else {
        x
    }
}

/// libtorch's float `remainder(x, 1)`: `fmod`, then the divisor's sign.
fn remainder1(a: f32) -> f32 {
    let m = fmod1(a);
    if m < 0.0 {
        m + 1.0
    } else {
        m
    }
}

fn hue(image: &mut [f32], factor: f32) {
    let (r, g, b) = planes(image);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        (*r, *g, *b) = shift_hue(*r, *g, *b, factor);
    }
}

/// `adjust_hue` of one pixel: `functional::rgb_to_hsv`, the shift, then
/// `functional::hsv_to_rgb`, op for op.
fn shift_hue(r: f32, g: f32, b: f32, factor: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let range = maxc - minc;
    let varied = maxc != minc;
    let s = range / if varied { maxc } else { 1.0 };
    let div = if varied { range } else { 1.0 };
    let (rc, gc, bc) = ((maxc - r) / div, (maxc - g) / div, (maxc - b) / div);
    let is_r = maxc == r;
    let is_g = maxc == g && !is_r;
    let h = if is_r {
        bc - gc
    } else if is_g {
        (rc + 2.0) - bc
    } else {
        (gc + 4.0) - rc
    };
    let h = h * if varied { 1.0 } else { 0.0 };
    let h = fmod1(h * (1.0f64 / 6.0) as f32 + 1.0);
    let h = remainder1(h + factor);
    let v = maxc;
    let h6 = h * 6.0;
    let i = floor(h6);
    let f = h6 - i;
    // remainder(i, 6) of a whole number in [0, 6].
    let i = if i >= 6.0 { i - 6.0 } else { i };
    let p = (v * (-s + 1.0)).clamp(0.0, 1.0);
    let q = (v * (-(s * f) + 1.0)).clamp(0.0, 1.0);
    let t = (v * (-(s * (-f + 1.0)) + 1.0)).clamp(0.0, 1.0);
    match i as i64 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::functional::{
        adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, hflip, normalize, rgb_to_grayscale, solarize,
    };

    /// Random pixels with exact 0s and 1s and grey (equal-channel) pixels.
    fn batch() -> Tensor {
        let _guard = tch::no_grad_guard();
        tch::manual_seed(11);
        let x = Tensor::rand([2, 3, 9, 7], (Kind::Float, Device::Cpu));
        let _ = x.narrow(3, 0, 1).fill_(1.0);
        let _ = x.narrow(3, 1, 1).fill_(0.0);
        let _ = x.narrow(2, 0, 1).fill_(0.25);
        x
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// `x` after one jitter op on every image.
    fn one_step(x: &Tensor, step: usize, factor: f32) -> Tensor {
        let mut y = x.copy();
        let j = Jitter { order: [step; 4], brightness: factor, contrast: factor, saturation: factor, hue: factor };
        let (_, _, h, w) = y.size4().expect("4-D");
        for image in pixels(&mut y).expect("pixels").chunks_exact_mut(3 * (h * w) as usize) {
            jitter_step(image, step, &j);
        }
        y
    }

    #[test]
    fn brightness_saturation_and_hue_are_the_functional_ops_bit_for_bit() {
        let x = batch();
        for (step, factor) in [(0, 1.3f32), (0, 0.4), (2, 0.6), (2, 1.2), (3, 0.17), (3, -0.42), (3, 0.5)] {
            let f = [factor as f64];
            let expected = match step {
                0 => adjust_brightness(&x, &f),
                2 => adjust_saturation(&x, &f),
                _ => adjust_hue(&x, &f),
            }
            .expect("functional op");
            assert_eq!(max_diff(&one_step(&x, step, factor), &expected), 0.0, "op {step}, factor {factor}");
        }
    }

    #[test]
    fn fmod1_and_floor_are_cs_for_every_kind_of_float() {
        for x in [0.0f32, -0.0, 0.3, -0.3, 1.0, -1.0, 1.75, -1.75, 5.999_999_5, 6.0, 1e7, -1e7, 3e9, f32::MAX, f32::MIN_POSITIVE] {
            assert_eq!(fmod1(x).to_bits(), (x % 1.0).to_bits(), "fmod1({x})");
            assert_eq!(floor(x).to_bits(), x.floor().to_bits(), "floor({x})");
        }
        assert!(fmod1(f32::INFINITY).is_nan() && fmod1(f32::NAN).is_nan());
        assert!(floor(f32::NEG_INFINITY) == f32::NEG_INFINITY && floor(f32::NAN).is_nan());
    }

    #[test]
    fn contrast_matches_the_functional_op_to_float32_rounding() {
        let x = batch();
        assert!(max_diff(&one_step(&x, 1, 1.4), &adjust_contrast(&x, &[1.4]).expect("contrast")) <= 1e-6);
    }

    #[test]
    fn a_whole_plan_is_the_functional_ops_in_its_order() {
        let x = batch();
        let j = Jitter { order: [3, 1, 0, 2], brightness: 0.7, contrast: 1.2, saturation: 1.5, hue: -0.08 };
        let mut y = x.copy();
        let plans = [ColourOps { flip: true, jitter: Some(j), gray: false }, ColourOps { flip: false, jitter: None, gray: true }];
        colour(&mut y, &plans).expect("colour");
        let mut e = hflip(&x.narrow(0, 0, 1), &[true]).expect("flip");
        e = adjust_hue(&e, &[-0.08]).expect("hue");
        e = adjust_contrast(&e, &[1.2]).expect("contrast");
        e = adjust_brightness(&e, &[0.7]).expect("brightness");
        e = adjust_saturation(&e, &[1.5]).expect("saturation");
        assert!(max_diff(&y.narrow(0, 0, 1), &e) <= 1e-6);
        let gray = rgb_to_grayscale(&x.narrow(0, 1, 1)).expect("gray").expand([1, 3, 9, 7], false);
        assert_eq!(max_diff(&y.narrow(0, 1, 1), &gray), 0.0);
    }

    #[test]
    fn solarize_and_normalize_are_the_functional_ops_bit_for_bit() {
        let x = batch();
        let (mean, std) = ([0.485f64 as f32, 0.456f64 as f32, 0.406f64 as f32], [0.229f64 as f32, 0.224f64 as f32, 0.225f64 as f32]);
        let mut y = x.copy();
        finish(&mut y, &[true, false], FinishOps { solarize: Some(0.5), normalize: Some((&mean, &std)) }).expect("finish");
        let s = solarize(&x, 0.5, &[true, false]).expect("solarize");
        let e = normalize(&s, &[0.485, 0.456, 0.406], &[0.229, 0.224, 0.225]).expect("normalize");
        assert_eq!(max_diff(&y, &e), 0.0);
    }

    #[test]
    fn a_batch_that_is_not_contiguous_cpu_float32_is_refused() {
        let mut x = batch().transpose(2, 3);
        assert!(colour(&mut x, &[ColourOps::default(); 2]).is_err());
    }
}

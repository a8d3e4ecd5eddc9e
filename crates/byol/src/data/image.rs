//! Image files to and from `[3, H, W]` uint8 tensors (JPEG and PNG, any bit
//! depth, gray or with alpha, converted to 8-bit RGB).
use crate::error::{Error, Result};
use crate::tensor::write_atomically;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Decodes a JPEG or PNG (any bit depth, gray, RGBA...) to `[3, H, W]` RGB uint8.
pub fn decode_image(path: &Path) -> std::result::Result<Tensor, String> {
    let img = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?
        .into_rgb8();
    let (w, h) = img.dimensions();
    let (w, h) = (i64::from(w), i64::from(h));
    let pixels = img.as_raw();
    // The decoder's interleaved pixels, seen as [3, H, W] in place and copied
    // into planes once (not copied into a tensor, then permuted by a copy).
    // `copy_`, not `contiguous`: a 1x1 view already counts as contiguous, and
    // must not outlive `pixels`.
    let mut planes = Tensor::f_empty([3, h, w], (Kind::Uint8, Device::Cpu)).map_err(|e| e.to_string())?;
    // SAFETY: the view reads `pixels` (3 * H * W bytes of an RgbImage), which
    // outlives it: the view is dropped once `copy_` has copied it.
    let view =
        unsafe { Tensor::f_from_blob(pixels.as_ptr(), &[3, h, w], &[1, 3 * w, 3], Kind::Uint8, Device::Cpu) }.map_err(|e| e.to_string())?;
    planes.f_copy_(&view).map_err(|e| e.to_string())?;
    Ok(planes)
}

/// Writes a `[C, H, W]` image (uint8, or float in [0, 1]; C = 1 or 3) as a PNG,
/// through a temporary file and a rename.
pub fn save_png(image: &Tensor, path: &Path) -> Result<()> {
    write_atomically(path, &encode(image, path)?)
}

/// A `[C, H, W]` image (uint8, or float in [0, 1]; C = 1 or 3) as the bytes of a PNG file.
pub fn encode_png(image: &Tensor) -> Result<Vec<u8>> {
    encode(image, Path::new("<png>"))
}

/// The PNG bytes of `image`; `path` names the file in errors.
fn encode(image: &Tensor, path: &Path) -> Result<Vec<u8>> {
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
    Ok(bytes)
}

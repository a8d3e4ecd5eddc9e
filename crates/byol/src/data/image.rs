//! Image files to and from `[3, H, W]` uint8 tensors (JPEG and PNG, any bit
//! depth, gray or with alpha, converted to 8-bit RGB).
use crate::error::{Error, Result};
use crate::tensor::write_atomically;
use std::path::Path;
use tch::{Kind, Tensor};

/// Decodes a JPEG or PNG (any bit depth, gray, RGBA...) to `[3, H, W]` RGB uint8.
pub fn decode_image(path: &Path) -> std::result::Result<Tensor, String> {
    let img = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let hwc = Tensor::f_from_data_size(img.as_raw(), &[h as i64, w as i64, 3], Kind::Uint8).map_err(|e| e.to_string())?;
    hwc.f_permute([2, 0, 1]).and_then(|t| t.f_contiguous()).map_err(|e| e.to_string())
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

//! Image files to and from `[3, H, W]` uint8 tensors (JPEG and PNG, any bit
//! depth, gray or with alpha, converted to 8-bit RGB).
use crate::error::{Error, Result};
use crate::tensor::write_atomically;
use image::ImageDecoder;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// One reader's buffer for decoding, kept from image to image so that a
/// loader's worker does not allocate the decoded pixels per image.
#[derive(Default)]
pub struct DecodeBuffers {
    pixels: Vec<u8>,
}

impl DecodeBuffers {
    /// The last image decoded here: 8-bit RGB, interleaved (`[H, W, 3]`).
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }
}

/// Decodes a JPEG or PNG (any bit depth, gray, RGBA...) into `buffers` as
/// 8-bit RGB, interleaved; returns its `(height, width)`. The same pixels
/// and errors as `image`'s `ImageReader::open(path)?.decode()?.into_rgb8()`.
pub fn decode_rgb_into(path: &Path, buffers: &mut DecodeBuffers) -> std::result::Result<(i64, i64), String> {
    let mut decoder = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_decoder()
        .map_err(|e| e.to_string())?;
    // What `decode` does: refuse an image larger than the default limits allow.
    let mut limits = image::Limits::default();
    limits.reserve(decoder.total_bytes()).map_err(|e| e.to_string())?;
    decoder.set_limits(limits).map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions();
    if decoder.color_type() == image::ColorType::Rgb8 {
        let len = usize::try_from(decoder.total_bytes()).map_err(|e| e.to_string())?;
        buffers.pixels.resize(len, 0);
        decoder.read_image(&mut buffers.pixels).map_err(|e| e.to_string())?;
    } else {
        // Gray, alpha or 16-bit: converted as `into_rgb8` converts them.
        let rgb = image::DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?.into_rgb8();
        buffers.pixels.clear();
        buffers.pixels.extend_from_slice(rgb.as_raw());
    }
    Ok((i64::from(h), i64::from(w)))
}

/// Interleaved RGB pixels (`[H, W, 3]`) into planes (`[3, H, W]`, as long).
pub fn deinterleave(pixels: &[u8], planes: &mut [u8]) -> Result<()> {
    if pixels.len() != planes.len() || !pixels.len().is_multiple_of(3) {
        return Err(Error::State(format!("{} interleaved RGB bytes for {} bytes of planes", pixels.len(), planes.len())));
    }
    let plane = planes.len() / 3;
    let (r, rest) = planes.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (((px, r), g), b) in pixels.chunks_exact(3).zip(r).zip(g).zip(b) {
        *r = px[0];
        *g = px[1];
        *b = px[2];
    }
    Ok(())
}

/// The bytes of `t`, which must be a contiguous CPU uint8 tensor that the
/// caller alone holds (one it just made), for writing.
pub(crate) fn bytes_mut(t: &mut Tensor) -> Result<&mut [u8]> {
    if t.device() != Device::Cpu || t.kind() != Kind::Uint8 || !t.is_contiguous() {
        return Err(Error::State(format!("expected a contiguous CPU uint8 tensor, not {:?} {:?}", t.kind(), t.size())));
    }
    let len = t.numel();
    // SAFETY: a contiguous uint8 CPU tensor of `len` elements, checked above;
    // `&mut t` keeps it alive and, by the contract above, unshared.
    Ok(unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut u8, len) })
}

/// Decodes a JPEG or PNG (any bit depth, gray, RGBA...) to `[3, H, W]` RGB uint8.
pub fn decode_image(path: &Path) -> std::result::Result<Tensor, String> {
    let mut buffers = DecodeBuffers::default();
    let (h, w) = decode_rgb_into(path, &mut buffers)?;
    planes(&buffers, h, w).map_err(|e| e.to_string())
}

/// The image last decoded into `buffers`, `h` by `w`, as a `[3, H, W]` tensor of its own.
pub(crate) fn planes(buffers: &DecodeBuffers, h: i64, w: i64) -> Result<Tensor> {
    let mut planes = Tensor::f_empty([3, h, w], (Kind::Uint8, Device::Cpu))?;
    deinterleave(buffers.pixels(), bytes_mut(&mut planes)?)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deinterleaving_puts_each_channel_of_each_pixel_in_its_plane() {
        for n in [0, 1, 2, 17, 100] {
            let pixels: Vec<u8> = (0..3 * n).map(|i| (i * 7 % 251) as u8).collect();
            let mut planes = vec![0u8; 3 * n];
            deinterleave(&pixels, &mut planes).expect("equal lengths");
            for i in 0..n {
                for c in 0..3 {
                    assert_eq!(planes[c * n + i], pixels[3 * i + c], "{n} pixels: channel {c} of pixel {i}");
                }
            }
        }
    }

    #[test]
    fn deinterleaving_into_planes_of_another_length_is_an_error() {
        assert!(deinterleave(&[1, 2, 3], &mut [0; 6]).is_err());
        assert!(deinterleave(&[1, 2], &mut [0; 2]).is_err());
    }
}

//! Tensors made from and read into host memory, with the checks users need
//! (a shape that fits the data, one element for `item`).
use crate::error::{Error, Result};
use tch::{Device, Kind, Tensor};

fn check_shape(shape: &[i64]) -> Result<()> {
    match shape.iter().enumerate().find(|(_, d)| **d < 0) {
        Some((i, d)) => Err(Error::range(format!("shape[{i}]"), "a dimension >= 0", d)),
        None => Ok(()),
    }
}

/// The bytes of `t`'s elements (a view counts as much as its data: what
/// the caller would free by dropping it when it is the last reference).
pub fn nbytes(t: &Tensor) -> i64 {
    if !t.defined() {
        return 0;
    }
    t.f_kind().map_or(0, |kind| t.size().iter().product::<i64>() * kind.elt_size_in_bytes() as i64)
}

/// A tensor of `shape` and `kind` holding `bytes` (row-major), on `device`.
pub fn from_bytes(bytes: &[u8], shape: &[i64], kind: Kind, device: Device) -> Result<Tensor> {
    check_shape(shape)?;
    let numel: i64 = shape.iter().product();
    let size = kind.elt_size_in_bytes();
    if bytes.len() != numel as usize * size {
        return Err(Error::range("data", format!("{numel} elements for shape {shape:?}"), format!("{} elements", bytes.len() / size)));
    }
    Ok(Tensor::f_from_data_size(bytes, shape, kind)?.f_to_device(device)?)
}

/// Standard normal float32 values; `seed` reseeds libtorch's generator first.
pub fn randn(shape: &[i64], seed: Option<i64>, device: Device) -> Result<Tensor> {
    check_shape(shape)?;
    if let Some(s) = seed {
        tch::manual_seed(s);
    }
    Ok(Tensor::f_randn(shape, (Kind::Float, device))?)
}

pub fn zeros(shape: &[i64], device: Device) -> Result<Tensor> {
    check_shape(shape)?;
    Ok(Tensor::f_zeros(shape, (Kind::Float, device))?)
}

/// The values as float32 in row-major order, copied to the host.
pub fn to_f32_vec(t: &Tensor) -> Result<Vec<f32>> {
    let flat = t.f_detach()?.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?.f_flatten(0, -1)?;
    Ok(Vec::<f32>::try_from(&flat)?)
}

/// `tensor.item()`: the value of a one-element tensor.
pub fn item(t: &Tensor) -> Result<f64> {
    if t.numel() != 1 {
        return Err(Error::range("tensor", "a tensor with exactly one element for item()", format!("shape {:?}", t.size())));
    }
    Ok(t.f_double_value(&[])?)
}

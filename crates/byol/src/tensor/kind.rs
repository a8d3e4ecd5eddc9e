//! Element types as users name them, and the checks inputs go through.
use crate::error::{Error, Result};
use crate::tensor::device::device_name;
use tch::{Device, Kind, Tensor};

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Uint8 => "uint8",
        Kind::Int8 => "int8",
        Kind::Int16 => "int16",
        Kind::Int => "int32",
        Kind::Int64 => "int64",
        Kind::Half => "float16",
        Kind::Float => "float32",
        Kind::Double => "float64",
        Kind::Bool => "bool",
        Kind::BFloat16 => "bfloat16",
        _ => "other",
    }
}

pub fn is_float(kind: Kind) -> bool {
    matches!(kind, Kind::Half | Kind::Float | Kind::Double | Kind::BFloat16)
}

/// A dtype by the name `kind_name` gives it (the integer and float types a
/// typed array can hold).
pub fn parse_dtype(name: &str) -> Result<Kind> {
    Ok(match name {
        "float32" => Kind::Float,
        "float64" => Kind::Double,
        "int32" => Kind::Int,
        "int64" => Kind::Int64,
        "uint8" => Kind::Uint8,
        "int8" => Kind::Int8,
        "int16" => Kind::Int16,
        other => {
            return Err(Error::invalid("dtype", "'float32', 'float64', 'int32', 'int64', 'int16', 'int8' or 'uint8'", format!("'{other}'")))
        }
    })
}

/// Fails unless `x` is a floating-point tensor on `device`.
pub fn check_float(x: &Tensor, arg: &str, device: Device) -> Result<()> {
    let kind = x.f_kind()?;
    if !is_float(kind) {
        return Err(Error::invalid(arg, "a floating-point tensor", format!("dtype {}", kind_name(kind))));
    }
    if x.device() != device {
        return Err(Error::invalid(
            arg,
            format!("a tensor on the model's device {}", device_name(device)),
            format!("a tensor on {}", device_name(x.device())),
        ));
    }
    Ok(())
}

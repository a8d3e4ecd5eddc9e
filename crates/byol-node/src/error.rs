//! Core errors as JS errors: a `TypeError` (wrong kind of argument), a
//! `RangeError` (out of range) or an `Error`, whose `code` is the core's
//! stable code, with the fields the core has: `argument`, `path`, `step`.
use byol::ErrorKind;
use napi::bindgen_prelude::*;
use napi::{JsError, JsRangeError, JsTypeError};
use napi_derive::napi;

/// The JS error for `e`, built on the JS thread of `env`.
pub(crate) fn js_error(env: &Env, e: byol::Error) -> napi::Error {
    build(env, &e).unwrap_or_else(|_| napi::Error::new(Status::GenericFailure, format!("[{}] {e}", e.code())))
}

fn build(env: &Env, e: &byol::Error) -> napi::Result<napi::Error> {
    let raw = napi::Error::new(e.code(), e.to_string());
    let value = match e.kind() {
        ErrorKind::InvalidArgument => JsTypeError::from(raw).into_unknown(*env),
        ErrorKind::OutOfRange => JsRangeError::from(raw).into_unknown(*env),
        _ => JsError::from(raw).into_unknown(*env),
    };
    // SAFETY: napi_create_*_error made an object.
    let mut object: Object = unsafe { value.cast()? };
    if let Some(argument) = e.argument() {
        object.set_named_property("argument", argument)?;
    }
    match e {
        byol::Error::File { path, .. } => object.set_named_property("path", path.display().to_string())?,
        byol::Error::NonFinite { step, .. } => object.set_named_property("step", *step)?,
        _ => {}
    }
    Ok(napi::Error::from(value))
}

/// `byol::Result` to the result a `#[napi]` function returns.
pub(crate) trait OrThrow<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T>;
}

impl<T> OrThrow<T> for byol::Result<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|e| js_error(env, e))
    }
}

impl<T> OrThrow<T> for std::result::Result<T, byol::tch::TchError> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|e| js_error(env, e.into()))
    }
}

/// The error of a lock whose holder panicked.
pub(crate) fn poisoned() -> byol::Error {
    byol::Error::State("the object was left inconsistent by an earlier panic".into())
}

/// Every `code` an error of the addon can carry (the core's), for the
/// facade's list of codes to be checked against.
#[napi]
pub fn error_codes() -> Vec<String> {
    ErrorKind::all_codes().into_iter().map(String::from).collect()
}

//! `NativeTensorBoardWriter`: TensorBoard event files, for the loggers of the facade and the CLI.
use crate::error::OrThrow;
use byol::train::EventWriter;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::Path;

#[napi]
pub struct NativeTensorBoardWriter {
    inner: EventWriter,
}

#[napi]
impl NativeTensorBoardWriter {
    /// A new event file in `dir` (made if missing).
    #[napi(factory)]
    pub fn create(env: &Env, dir: String) -> Result<Self> {
        Ok(Self { inner: EventWriter::create(Path::new(&dir)).or_throw(env)? })
    }

    #[napi(getter)]
    pub fn path(&self) -> String {
        self.inner.path().display().to_string()
    }

    #[napi]
    pub fn add_scalar(&mut self, env: &Env, tag: String, value: f64, step: i64) -> Result<()> {
        self.inner.add_scalar(&tag, value, step).or_throw(env)
    }

    #[napi]
    pub fn add_png(&mut self, env: &Env, tag: String, png: Buffer, step: i64) -> Result<()> {
        self.inner.add_png(&tag, &png, step).or_throw(env)
    }

    #[napi]
    pub fn add_text(&mut self, env: &Env, tag: String, text: String, step: i64) -> Result<()> {
        self.inner.add_text(&tag, &text, step).or_throw(env)
    }
}

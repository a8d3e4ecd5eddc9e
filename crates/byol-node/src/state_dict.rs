//! `NativeStateDict`: an ordered list of named tensors, as `state_dict()` returns.
use crate::error::OrThrow;
use crate::tensor::NativeTensor;
use byol::tch::Tensor;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::Path;

#[napi]
#[derive(Default)]
pub struct NativeStateDict {
    pub(crate) entries: Vec<(String, Tensor)>,
}

#[napi]
impl NativeStateDict {
    #[napi(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    #[napi]
    pub fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.clone()).collect()
    }

    #[napi]
    pub fn get(&self, env: &Env, key: String) -> Option<NativeTensor> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, t)| NativeTensor::wrap(env, t.shallow_clone()))
    }

    #[napi]
    pub fn set(&mut self, env: &Env, key: String, tensor: &NativeTensor) -> Result<()> {
        let t = tensor.get().or_throw(env)?.shallow_clone();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = t,
            None => self.entries.push((key, t)),
        }
        Ok(())
    }

    /// Copies every tensor (so the dict no longer shares storage with a model).
    #[napi]
    pub fn detach_copy(&self, env: &Env) -> Result<NativeStateDict> {
        let entries = self.entries.iter().map(|(k, t)| Ok((k.clone(), byol::nn::fresh_copy(t)?))).collect::<byol::Result<Vec<_>>>();
        Ok(Self { entries: entries.or_throw(env)? })
    }

    #[napi]
    pub fn save(&self, env: &Env, path: String) -> Result<()> {
        byol::tensor::save_safetensors(&self.entries, None, Path::new(&path)).or_throw(env)
    }

    #[napi(factory)]
    pub fn load(env: &Env, path: String) -> Result<Self> {
        Ok(Self { entries: byol::tensor::load_safetensors(Path::new(&path)).or_throw(env)?.tensors })
    }
}

//! `NativeTensor` and the functions that make tensors or report on libtorch.
use crate::enums::Dtype;
use crate::error::OrThrow;
use crate::memory::External;
use byol::tch::{self, Kind, Tensor};
use byol::tensor::{device_name, kind_name, parse_device};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// A libtorch tensor. `None` once disposed.
#[napi(custom_finalize)]
pub struct NativeTensor {
    pub(crate) tensor: Option<Tensor>,
    external: External,
}

impl NativeTensor {
    pub(crate) fn wrap(env: &Env, inner: Tensor) -> Self {
        let external = External::new(env, byol::tensor::nbytes(&inner));
        Self { tensor: Some(inner), external }
    }

    pub(crate) fn get(&self) -> byol::Result<&Tensor> {
        self.tensor.as_ref().ok_or_else(|| byol::Error::Disposed { what: "tensor".into() })
    }
}

/// The device named `name`, or the CPU when none is named.
pub(crate) fn device(name: Option<&str>) -> byol::Result<tch::Device> {
    name.map_or(Ok(tch::Device::Cpu), parse_device)
}

impl ObjectFinalize for NativeTensor {
    fn finalize(self, env: Env) -> Result<()> {
        self.external.release(&env);
        Ok(())
    }
}

#[napi]
impl NativeTensor {
    #[napi(getter)]
    pub fn shape(&self, env: &Env) -> Result<Vec<i64>> {
        Ok(self.get().or_throw(env)?.size())
    }

    #[napi(getter)]
    pub fn dtype(&self, env: &Env) -> Result<String> {
        Ok(kind_name(self.get().or_throw(env)?.kind()).to_string())
    }

    #[napi(getter)]
    pub fn device(&self, env: &Env) -> Result<String> {
        Ok(device_name(self.get().or_throw(env)?.device()))
    }

    #[napi(getter)]
    pub fn requires_grad(&self, env: &Env) -> Result<bool> {
        Ok(self.get().or_throw(env)?.requires_grad())
    }

    /// Frees the tensor's memory now rather than when JS garbage-collects it
    /// (Node runs addon finalizers only between event-loop turns).
    #[napi]
    pub fn dispose(&mut self, env: &Env) {
        self.tensor = None;
        self.external.release(env);
    }

    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.tensor.is_none()
    }

    /// The values as float32, in row-major order; the buffer is handed to JS without a further copy.
    #[napi]
    pub fn to_float32_array(&self, env: &Env) -> Result<Float32Array> {
        let values = byol::tensor::to_f32_vec(self.get().or_throw(env)?).or_throw(env)?;
        Ok(Float32Array::new(values))
    }

    #[napi]
    pub fn to(&self, env: &Env, device_name: String) -> Result<NativeTensor> {
        let d = parse_device(&device_name).or_throw(env)?;
        Ok(Self::wrap(env, self.get().or_throw(env)?.f_to_device(d).or_throw(env)?))
    }

    #[napi]
    pub fn item(&self, env: &Env) -> Result<f64> {
        byol::tensor::item(self.get().or_throw(env)?).or_throw(env)
    }
}

/// A tensor from the bytes of a typed array (copied once, into libtorch).
#[napi]
pub fn tensor_from_bytes(env: &Env, bytes: Uint8Array, shape: Vec<i64>, dtype: Dtype, device_name: Option<String>) -> Result<NativeTensor> {
    let d = device(device_name.as_deref()).or_throw(env)?;
    Ok(NativeTensor::wrap(env, byol::tensor::from_bytes(&bytes, &shape, Kind::from(dtype), d).or_throw(env)?))
}

/// Standard normal values; `seed` reseeds libtorch's generator first.
#[napi]
pub fn randn(env: &Env, shape: Vec<i64>, seed: Option<i64>, device_name: Option<String>) -> Result<NativeTensor> {
    let d = device(device_name.as_deref()).or_throw(env)?;
    Ok(NativeTensor::wrap(env, byol::tensor::randn(&shape, seed, d).or_throw(env)?))
}

#[napi]
pub fn zeros(env: &Env, shape: Vec<i64>, device_name: Option<String>) -> Result<NativeTensor> {
    let d = device(device_name.as_deref()).or_throw(env)?;
    Ok(NativeTensor::wrap(env, byol::tensor::zeros(&shape, d).or_throw(env)?))
}

#[napi]
pub fn manual_seed(seed: i64) {
    tch::manual_seed(seed);
}

#[napi]
pub fn cuda_is_available() -> bool {
    byol::tensor::device::cuda_is_available()
}

#[napi]
pub fn cuda_device_count() -> u32 {
    byol::tensor::device::cuda_device_count() as u32
}

/// The names of the CUDA devices, from the driver.
#[napi]
pub fn cuda_device_names() -> Vec<String> {
    byol::tensor::device::cuda_device_names()
}

/// libtorch's kernel level on this CPU, e.g. `"AVX512"`.
#[napi]
pub fn cpu_capability() -> Option<String> {
    byol::tensor::device::cpu_capability()
}

#[napi]
pub fn set_num_threads(env: &Env, n: i32) -> Result<()> {
    byol::tensor::device::set_threads(n).or_throw(env)
}

#[napi]
pub fn get_num_threads() -> i32 {
    tch::get_num_threads()
}

/// The addon's version (its crate's, kept equal to the npm package's).
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// torch.backends' switches for CUDA arithmetic (process-wide, as in PyTorch).
#[napi(object)]
pub struct CudaBackends {
    /// `torch.backends.cudnn.allow_tf32`: convolutions may round fp32 inputs to TF32 (libtorch's default `true`).
    pub cudnn_allow_tf32: Option<bool>,
    /// `torch.backends.cuda.matmul.allow_tf32`: matrix products may (default `false`).
    pub matmul_allow_tf32: Option<bool>,
    /// `torch.backends.cudnn.deterministic`: only deterministic cuDNN algorithms (default `false`).
    pub cudnn_deterministic: Option<bool>,
    /// `torch.backends.cudnn.benchmark`: cuDNN times its algorithms for each new shape and keeps the fastest (default `false`).
    pub cudnn_benchmark: Option<bool>,
}

/// Sets each switch given and returns all four, as they now are.
#[napi]
pub fn cuda_backends(env: &Env, set: Option<CudaBackends>) -> Result<CudaBackends> {
    let s =
        set.unwrap_or(CudaBackends { cudnn_allow_tf32: None, matmul_allow_tf32: None, cudnn_deterministic: None, cudnn_benchmark: None });
    let m =
        byol::tensor::shim::cuda_math([s.cudnn_allow_tf32, s.matmul_allow_tf32, s.cudnn_deterministic, s.cudnn_benchmark]).or_throw(env)?;
    Ok(CudaBackends {
        cudnn_allow_tf32: Some(m.cudnn_allow_tf32),
        matmul_allow_tf32: Some(m.matmul_allow_tf32),
        cudnn_deterministic: Some(m.cudnn_deterministic),
        cudnn_benchmark: Some(m.cudnn_benchmark),
    })
}

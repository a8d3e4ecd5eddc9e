//! Evaluation of features: what `embed` returns, the kNN accuracy and the
//! linear probe, both on threads of the addon's own.
use crate::error::OrThrow;
use crate::options::eval::{KnnOptions, LinearProbeOptions};
use crate::worker;
use byol::eval::{KnnConfig, ProbeConfig};
use byol::tch::{self, Tensor};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Backbone features of a dataset, one row per image that could be read.
#[napi(object)]
pub struct Embedding {
    /// Row-major `[rows, dim]` features.
    pub data: Float32Array,
    pub rows: u32,
    pub dim: u32,
    pub labels: Vec<i64>,
    /// The images that could not be read: each path and why.
    pub skipped: Vec<String>,
}

impl TryFrom<byol::eval::Embedding> for Embedding {
    type Error = byol::Error;

    fn try_from(e: byol::eval::Embedding) -> byol::Result<Self> {
        let size = e.features.size();
        let data = byol::tensor::to_f32_vec(&e.features)?;
        Ok(Embedding { data: Float32Array::new(data), rows: size[0] as u32, dim: size[1] as u32, labels: e.labels, skipped: e.skipped })
    }
}

/// Features handed in from JS, copied for a thread of their own.
struct Features {
    data: Vec<f32>,
    dim: i64,
    labels: Vec<i64>,
}

impl Features {
    fn new(data: &Float32Array, dim: u32, labels: Vec<i64>, arg: &str) -> byol::Result<Self> {
        let dim = dim as i64;
        if dim < 1 || data.len() as i64 % dim != 0 {
            return Err(byol::Error::invalid(
                format!("{arg}Features"),
                format!("a Float32Array whose length is a multiple of dim ({dim})"),
                data.len(),
            ));
        }
        Ok(Self { data: data.to_vec(), dim, labels })
    }

    fn tensor(&self) -> byol::Result<Tensor> {
        Ok(Tensor::f_from_slice(&self.data)?.f_view([-1, self.dim])?)
    }
}

/// The train and test features of an evaluation.
struct Split {
    train: Features,
    test: Features,
}

impl Split {
    fn new(train: (&Float32Array, Vec<i64>), test: (&Float32Array, Vec<i64>), dim: u32) -> byol::Result<Self> {
        Ok(Self { train: Features::new(train.0, dim, train.1, "train")?, test: Features::new(test.0, dim, test.1, "test")? })
    }

    /// `eval(train, train_labels, test, test_labels)` on the features as tensors.
    fn run<R>(&self, eval: impl FnOnce(&Tensor, &[i64], &Tensor, &[i64]) -> byol::Result<R>) -> byol::Result<R> {
        eval(&self.train.tensor()?, &self.train.labels, &self.test.tensor()?, &self.test.labels)
    }
}

#[napi(ts_return_type = "Promise<number>")]
#[allow(clippy::too_many_arguments)]
pub fn knn_accuracy<'env>(
    env: &'env Env,
    train: Float32Array,
    train_labels: Vec<i64>,
    test: Float32Array,
    test_labels: Vec<i64>,
    dim: u32,
    options: KnnOptions,
) -> Result<Object<'env>> {
    let split = Split::new((&train, train_labels), (&test, test_labels), dim).or_throw(env)?;
    let config = KnnConfig::from(options);
    let work = move || split.run(|a, la, b, lb| byol::eval::knn_accuracy(a, la, b, lb, &config));
    worker::spawn(env, "knn", tch::get_num_threads(), work, |_, accuracy| Ok(accuracy))
}

/// The neighbours kNN asks for and those that vote among `rows` training features (k capped at `rows`).
#[napi(object)]
pub struct KnnNeighbours {
    pub requested: i64,
    pub used: i64,
}

#[napi]
pub fn knn_neighbours(options: KnnOptions, rows: u32) -> KnnNeighbours {
    let config = KnnConfig::from(options);
    KnnNeighbours { requested: config.k, used: config.neighbours(i64::from(rows)) }
}

#[napi(object)]
pub struct ProbeResult {
    pub train_accuracy: f64,
    pub test_accuracy: f64,
}

#[napi(ts_return_type = "Promise<ProbeResult>")]
pub fn linear_probe<'env>(
    env: &'env Env,
    train: Float32Array,
    train_labels: Vec<i64>,
    test: Float32Array,
    test_labels: Vec<i64>,
    dim: u32,
    options: LinearProbeOptions,
) -> Result<Object<'env>> {
    let split = Split::new((&train, train_labels), (&test, test_labels), dim).or_throw(env)?;
    let config = ProbeConfig::try_from(options).or_throw(env)?;
    let work = move || split.run(|a, la, b, lb| byol::eval::linear_probe(a, la, b, lb, &config));
    worker::spawn(env, "probe", tch::get_num_threads(), work, |_, r| {
        Ok(ProbeResult { train_accuracy: r.train_accuracy, test_accuracy: r.test_accuracy })
    })
}

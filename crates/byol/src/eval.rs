//! Evaluation of learned features: embeddings, the weighted kNN classifier
//! that lightly and solo-learn report, and a linear probe.
use crate::data::DataLoader;
use crate::error::{Error, Result};
use crate::optim::{Optimizer, OptimizerConfig};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// Features `[n, d]` (float32, on the CPU) with one label per row.
pub struct Embedding {
    pub features: Tensor,
    pub labels: Vec<i64>,
}

/// Runs `forward` (a backbone in eval mode) over one pass of `loader`, taking
/// the first view of each batch; 4-D outputs are average-pooled, as the
/// backbone's features are in every BYOL evaluation.
pub fn embed(loader: &DataLoader, device: Device, mut forward: impl FnMut(&Tensor) -> Result<Tensor>) -> Result<Embedding> {
    let _guard = tch::no_grad_guard();
    let mut epoch = loader.epoch_at(0, 0);
    let mut chunks = Vec::new();
    let mut labels = Vec::new();
    while let Some(b) = epoch.next_batch()? {
        if b.labels.is_empty() {
            continue;
        }
        let y = forward(&b.x0.f_to_device(device)?)?;
        let y = if y.dim() == 4 { y.f_adaptive_avg_pool2d([1, 1])?.f_flatten(1, -1)? } else { y.f_flatten(1, -1)? };
        chunks.push(y.f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)?);
        labels.extend(b.labels);
    }
    if chunks.is_empty() {
        return Err(Error::range("loader", "a loader with at least one readable image", "none"));
    }
    Ok(Embedding { features: Tensor::f_cat(&chunks, 0)?, labels })
}

fn check_pair(features: &Tensor, labels: &[i64], what: &str) -> Result<()> {
    let size = features.size();
    if size.len() != 2 || size[0] < 1 {
        return Err(Error::invalid(format!("{what}Features"), "features of shape [n, d], n >= 1", format!("shape {size:?}")));
    }
    if labels.len() as i64 != size[0] {
        return Err(Error::invalid(format!("{what}Labels"), format!("{} labels (one per row of {what}Features)", size[0]), labels.len()));
    }
    if let Some(l) = labels.iter().find(|&&l| l < 0) {
        return Err(Error::range(format!("{what}Labels"), "class indices >= 0", l));
    }
    Ok(())
}

fn normalized(x: &Tensor) -> Result<Tensor> {
    let x = x.f_to_kind(Kind::Float)?;
    Ok(x.f_div(&x.f_norm_scalaropt_dim(2, [1i64].as_slice(), true)?.f_clamp_min(1e-12)?)?)
}

/// Weighted kNN (Wu et al. 2018): cosine similarity to the `k` nearest
/// training features, each neighbour voting `exp(sim / temperature)` for its
/// class. Returns the top-1 accuracy on the test features, in [0, 1].
pub fn knn_accuracy(train: &Tensor, train_labels: &[i64], test: &Tensor, test_labels: &[i64], k: i64, temperature: f64) -> Result<f64> {
    check_pair(train, train_labels, "train")?;
    check_pair(test, test_labels, "test")?;
    if train.size()[1] != test.size()[1] {
        return Err(Error::invalid("testFeatures", format!("{} features per row, as trainFeatures", train.size()[1]), test.size()[1]));
    }
    if k < 1 {
        return Err(Error::range("k", "an integer >= 1", k));
    }
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::range("temperature", "a number > 0", temperature));
    }
    let _guard = tch::no_grad_guard();
    let classes = train_labels.iter().chain(test_labels).copied().max().unwrap_or(0) + 1;
    let train_n = normalized(train)?;
    let test_n = normalized(test)?;
    let train_y = Tensor::from_slice(train_labels);
    let k = k.min(train.size()[0]);
    let mut correct = 0i64;
    let rows = test.size()[0];
    let chunk = 256;
    let mut start = 0;
    while start < rows {
        let len = chunk.min(rows - start);
        let q = test_n.f_narrow(0, start, len)?;
        let sim = q.f_matmul(&train_n.f_tr()?)?;
        let (values, indices) = sim.f_topk(k, 1, true, true)?;
        let weights = values.f_div_scalar(temperature)?.f_exp()?;
        let neighbour_labels = train_y.f_index_select(0, &indices.f_flatten(0, -1)?)?.f_view([len, k])?;
        let scores = Tensor::f_zeros([len, classes], (Kind::Float, Device::Cpu))?.f_scatter_add(1, &neighbour_labels, &weights)?;
        let predicted = scores.f_argmax(1, false)?;
        let truth = Tensor::from_slice(&test_labels[start as usize..(start + len) as usize]);
        correct += predicted.f_eq_tensor(&truth)?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
        start += len;
    }
    Ok(correct as f64 / rows as f64)
}

#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub epochs: i64,
    pub batch_size: i64,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self { epochs: 20, batch_size: 256, lr: 1e-2, weight_decay: 0.0, seed: 0 }
    }
}

pub struct ProbeResult {
    pub train_accuracy: f64,
    pub test_accuracy: f64,
}

/// A linear classifier trained on frozen features (standardised with the
/// training set's mean and deviation) with AdamW and cross-entropy.
pub fn linear_probe(train: &Tensor, train_labels: &[i64], test: &Tensor, test_labels: &[i64], c: &ProbeConfig) -> Result<ProbeResult> {
    check_pair(train, train_labels, "train")?;
    check_pair(test, test_labels, "test")?;
    let d = train.size()[1];
    if test.size()[1] != d {
        return Err(Error::invalid("testFeatures", format!("{d} features per row, as trainFeatures"), test.size()[1]));
    }
    if c.epochs < 1 {
        return Err(Error::range("epochs", "an integer >= 1", c.epochs));
    }
    if c.batch_size < 1 {
        return Err(Error::range("batchSize", "an integer >= 1", c.batch_size));
    }
    let classes = train_labels.iter().chain(test_labels).copied().max().unwrap_or(0) + 1;
    let (x, x_test) = {
        let _guard = tch::no_grad_guard();
        let x = train.f_to_kind(Kind::Float)?;
        let mean = x.f_mean_dim([0i64].as_slice(), true, Kind::Float)?;
        let std = x.f_std_correction([0i64].as_slice(), 0, true)?.f_clamp_min(1e-6)?;
        (x.f_sub(&mean)?.f_div(&std)?, test.f_to_kind(Kind::Float)?.f_sub(&mean)?.f_div(&std)?)
    };
    let y = Tensor::from_slice(train_labels);
    let y_test = Tensor::from_slice(test_labels);
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
    let bound = 1.0 / (d as f64).sqrt();
    let mut init = |shape: &[i64]| -> Result<Tensor> {
        // nn.Linear's init, drawn from our seeded generator so probes repeat.
        let n: usize = shape.iter().product::<i64>() as usize;
        let values: Vec<f32> = (0..n).map(|_| ((rand::Rng::random::<f64>(&mut rng) * 2.0 - 1.0) * bound) as f32).collect();
        Ok(Tensor::from_slice(&values).f_view(shape)?.f_set_requires_grad(true)?)
    };
    let w = init(&[classes, d])?;
    let b = init(&[classes])?;
    let mut optimizer = Optimizer::new(OptimizerConfig::adamw(c.lr, c.weight_decay))?;
    let n = train.size()[0] as usize;
    let mut order: Vec<i64> = (0..n as i64).collect();
    for _ in 0..c.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(c.batch_size as usize) {
            let idx = Tensor::from_slice(chunk);
            let xb = x.f_index_select(0, &idx)?;
            let yb = y.f_index_select(0, &idx)?;
            let logits = xb.f_linear(&w, Some(&b))?;
            let loss = logits.f_cross_entropy_loss::<Tensor>(&yb, None, tch::Reduction::Mean, -100, 0.0)?;
            let grads = Tensor::f_run_backward(&[&loss], &[&w, &b], false, false)?;
            optimizer.step([&w, &b].into_iter(), grads)?;
        }
    }
    let _guard = tch::no_grad_guard();
    let accuracy = |x: &Tensor, y: &Tensor| -> Result<f64> {
        let predicted = x.f_linear(&w, Some(&b))?.f_argmax(1, false)?;
        Ok(predicted.f_eq_tensor(y)?.f_sum(Kind::Int64)?.f_int64_value(&[])? as f64 / y.size()[0] as f64)
    };
    Ok(ProbeResult { train_accuracy: accuracy(&x, &y)?, test_accuracy: accuracy(&x_test, &y_test)? })
}

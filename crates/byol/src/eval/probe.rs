//! A linear probe: a linear classifier trained on frozen features.
use crate::error::{Error, Result};
use crate::eval::knn::check_pair;
use crate::optim::{Optimizer, OptimizerConfig};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

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
    if !(c.lr.is_finite() && c.lr > 0.0) {
        return Err(Error::range("lr", "a number > 0", c.lr));
    }
    if !(c.weight_decay.is_finite() && c.weight_decay >= 0.0) {
        return Err(Error::range("weightDecay", "a number >= 0", c.weight_decay));
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
        if crate::stop::requested() {
            return Err(Error::State("stopped: the process is exiting".into()));
        }
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

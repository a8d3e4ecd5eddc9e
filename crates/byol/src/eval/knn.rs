//! The weighted kNN classifier that lightly and solo-learn report for
//! self-supervised features.
use crate::error::{Error, Result};
use tch::{Device, Kind, Tensor};

/// The neighbours that vote and how softly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KnnConfig {
    /// Neighbours that vote (lightly, solo-learn: 200); capped at the number of training features.
    pub k: i64,
    /// Softness of the votes `exp(similarity / temperature)`.
    pub temperature: f64,
}

impl KnnConfig {
    /// The neighbours that vote among `rows` training features: `k`, capped
    /// at `rows` (what `knn_accuracy` uses).
    pub fn neighbours(&self, rows: i64) -> i64 {
        self.k.min(rows).max(1)
    }
}

impl Default for KnnConfig {
    fn default() -> Self {
        Self { k: 200, temperature: 0.1 }
    }
}

pub(crate) fn check_pair(features: &Tensor, labels: &[i64], what: &str) -> Result<()> {
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
pub fn knn_accuracy(train: &Tensor, train_labels: &[i64], test: &Tensor, test_labels: &[i64], config: &KnnConfig) -> Result<f64> {
    let KnnConfig { k, temperature } = *config;
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
    let k = config.neighbours(train.size()[0]);
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

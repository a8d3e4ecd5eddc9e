//! The few layers BYOL needs, as functions of a `Params` store, with PyTorch's
//! default initialisations and state-dict names.
use crate::dist::{with_sync_group, ProcessGroup};
use crate::error::{Error, Result};
use crate::nn::params::{join, Params, Role, Slot};
use crate::tensor::shim::{views_batch_norm, views_conv2d, views_linear};
use tch::{Device, Kind, Tensor};

/// PyTorch's BatchNorm defaults.
pub const BN_MOMENTUM: f64 = 0.1;
pub const BN_EPS: f64 = 1e-5;

#[derive(Clone, Debug)]
pub struct Conv2d {
    pub weight: Slot,
    pub stride: i64,
    pub padding: i64,
}

impl Conv2d {
    /// Bias-free convolution with torchvision's ResNet initialisation:
    /// Kaiming normal, `mode='fan_out'`, `nonlinearity='relu'`.
    pub fn new(p: &mut Params, name: &str, (cin, cout, k): (i64, i64, i64), stride: i64, padding: i64, device: Device) -> Result<Self> {
        let std = (2.0 / (cout * k * k) as f64).sqrt();
        let w = Tensor::f_randn([cout, cin, k, k], (Kind::Float, device))?.f_mul_scalar(std)?;
        Ok(Self { weight: p.add(join(name, "weight"), Role::Parameter, w), stride, padding })
    }

    /// `views`: see `BatchNorm::forward`; the weight's gradient is reduced
    /// view by view, as separate calls would reduce it.
    pub fn forward(&self, p: &Params, x: &Tensor, views: i64) -> Result<Tensor> {
        views_conv2d(x, p.get(self.weight), self.stride, self.padding, views)
    }
}

#[derive(Clone, Debug)]
pub struct BatchNorm {
    pub weight: Slot,
    pub bias: Slot,
    pub running_mean: Slot,
    pub running_var: Slot,
    pub num_batches_tracked: Slot,
}

impl BatchNorm {
    /// Weight 1, bias 0, as `nn.BatchNorm1d/2d` and torchvision's ResNet.
    pub fn new(p: &mut Params, name: &str, features: i64, device: Device) -> Result<Self> {
        let opts = (Kind::Float, device);
        Ok(Self {
            weight: p.add(join(name, "weight"), Role::Parameter, Tensor::f_ones([features], opts)?),
            bias: p.add(join(name, "bias"), Role::Parameter, Tensor::f_zeros([features], opts)?),
            running_mean: p.add(join(name, "running_mean"), Role::Buffer, Tensor::f_zeros([features], opts)?),
            running_var: p.add(join(name, "running_var"), Role::Buffer, Tensor::f_ones([features], opts)?),
            num_batches_tracked: p.add(join(name, "num_batches_tracked"), Role::Buffer, Tensor::f_zeros([], (Kind::Int64, device))?),
        })
    }

    /// With `views > 1` in training mode, `x` is that many batches one after
    /// the other (BYOL's two views in one call): each is normalised by its own
    /// statistics and moves the running ones in turn, as separate calls would,
    /// while the layers around it see one call instead of `views`.
    pub fn forward(&self, p: &Params, x: &Tensor, train: bool, views: i64) -> Result<Tensor> {
        if !train || views <= 1 {
            return self.forward_batch(p, x, train);
        }
        if with_sync_group(|g| g.is_some()) {
            // SyncBatchNorm's statistics span the ranks: view by view here.
            let outputs = x.f_chunk(views, 0)?.iter().map(|v| self.forward_batch(p, v, true)).collect::<Result<Vec<_>>>()?;
            return Ok(Tensor::f_cat(&outputs, 0)?);
        }
        self.count_batches(p, views)?;
        let params = [p.get(self.weight), p.get(self.bias), p.get(self.running_mean), p.get(self.running_var)];
        views_batch_norm(x, params, BN_MOMENTUM, BN_EPS, views)
    }

    /// PyTorch counts batches even when `momentum` is set; kept so that state
    /// dicts round-trip with the same values.
    fn count_batches(&self, p: &Params, n: i64) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let _ = p.get(self.num_batches_tracked).shallow_clone().f_add_scalar_(n)?;
        Ok(())
    }

    fn forward_batch(&self, p: &Params, x: &Tensor, train: bool) -> Result<Tensor> {
        if train {
            self.count_batches(p, 1)?;
            if let Some(y) = with_sync_group(|g| g.map(|g| self.forward_synced(p, x, g))) {
                return y;
            }
        }
        Ok(x.f_batch_norm(
            Some(p.get(self.weight)),
            Some(p.get(self.bias)),
            Some(p.get(self.running_mean)),
            Some(p.get(self.running_var)),
            train,
            BN_MOMENTUM,
            BN_EPS,
            true,
        )?)
    }
}

impl BatchNorm {
    /// `torch.nn.SyncBatchNorm` in training mode: the batch statistics of all
    /// ranks together (two differentiable all-reduces, the mean, then the
    /// centred second moment, so that backward reduces the matching terms),
    /// and the running statistics moved by them, the variance unbiased over
    /// the whole count.
    fn forward_synced(&self, p: &Params, x: &Tensor, group: &ProcessGroup) -> Result<Tensor> {
        let size = x.size();
        let c = *size.get(1).ok_or_else(|| Error::invalid("input", "a batch of shape [N, C, ...]", format!("{size:?}")))?;
        let dims: Vec<i64> = std::iter::once(0).chain(2..size.len() as i64).collect();
        let mut shape = vec![1i64; size.len()];
        shape[1] = c;
        let count = (x.numel() as i64 / c.max(1)) as f64 * group.world_size() as f64;
        let kind = x.kind();
        let x = x.f_to_kind(Kind::Float)?;
        let mean = group.all_reduce_sum(&x.f_sum_dim_intlist(dims.as_slice(), false, Kind::Float)?)?.f_div_scalar(count)?;
        let centred = x.f_sub(&mean.f_view(shape.as_slice())?)?;
        let squares = centred.f_mul(&centred)?.f_sum_dim_intlist(dims.as_slice(), false, Kind::Float)?;
        let var = group.all_reduce_sum(&squares)?.f_div_scalar(count)?;
        let invstd = var.f_add_scalar(BN_EPS)?.f_rsqrt()?;
        let y = centred
            .f_mul(&invstd.f_view(shape.as_slice())?)?
            .f_mul(&p.get(self.weight).f_view(shape.as_slice())?)?
            .f_add(&p.get(self.bias).f_view(shape.as_slice())?)?;
        {
            let _guard = tch::no_grad_guard();
            let unbiased = var.f_mul_scalar(count / (count - 1.0).max(1.0))?;
            for (slot, batch) in [(self.running_mean, &mean), (self.running_var, &unbiased)] {
                let mut running = p.get(slot).shallow_clone();
                let _ = running.f_mul_scalar_(1.0 - BN_MOMENTUM)?;
                let _ = running.f_add_(&batch.f_mul_scalar(BN_MOMENTUM)?)?;
            }
        }
        Ok(y.f_to_kind(kind)?)
    }
}

#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Slot,
    pub bias: Option<Slot>,
    pub in_features: i64,
    pub out_features: i64,
}

impl Linear {
    /// `nn.Linear`'s initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
    /// weight and bias (Kaiming uniform with a = sqrt(5)).
    pub fn new(p: &mut Params, name: &str, cin: i64, cout: i64, bias: bool, device: Device) -> Result<Self> {
        let bound = 1.0 / (cin as f64).sqrt();
        let opts = (Kind::Float, device);
        let w = Tensor::f_empty([cout, cin], opts)?.f_uniform_(-bound, bound)?;
        let weight = p.add(join(name, "weight"), Role::Parameter, w);
        let bias = if bias {
            let b = Tensor::f_empty([cout], opts)?.f_uniform_(-bound, bound)?;
            Some(p.add(join(name, "bias"), Role::Parameter, b))
        } else {
            None
        };
        Ok(Self { weight, bias, in_features: cin, out_features: cout })
    }

    /// `views`: as `Conv2d::forward`.
    pub fn forward(&self, p: &Params, x: &Tensor, views: i64) -> Result<Tensor> {
        views_linear(x, p.get(self.weight), self.bias.map(|b| p.get(b)), views)
    }
}

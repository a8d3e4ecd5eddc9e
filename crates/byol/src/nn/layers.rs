//! The few layers BYOL needs, as functions of a `Params` store, with PyTorch's
//! default initialisations and state-dict names.
use crate::error::Result;
use crate::nn::params::{join, Params, Role, Slot};
use crate::tensor::shim::{views_conv2d, views_linear};
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
        let outputs = x.f_chunk(views, 0)?.iter().map(|v| self.forward_batch(p, v, true)).collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_cat(&outputs, 0)?)
    }

    fn forward_batch(&self, p: &Params, x: &Tensor, train: bool) -> Result<Tensor> {
        if train {
            // PyTorch counts batches even when `momentum` is set; kept so that
            // state dicts round-trip with the same values.
            let _guard = tch::no_grad_guard();
            let mut n = p.get(self.num_batches_tracked).shallow_clone();
            let _ = n.f_add_scalar_(1)?;
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

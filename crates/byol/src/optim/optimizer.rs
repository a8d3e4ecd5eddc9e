//! Optimisers, stepping parameters with gradients handed in (no `.grad`
//! accumulation, so no `zero_grad`). Each follows its PyTorch (or, for LARS,
//! lightly's) update rule in the same order of operations, so runs match.
use crate::error::{Error, Result};
use crate::nn::fresh_copy;
use crate::optim::config::{OptimizerConfig, OptimizerKind};
use crate::tensor::shim::{add_scaled, foreach_add_, foreach_mul_};
use tch::{Kind, Tensor};

/// An optimiser and its per-parameter state.
#[derive(Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    /// SGD/LARS: momentum buffers; AdamW: first moments.
    first: Vec<Option<Tensor>>,
    /// AdamW: second moments.
    second: Vec<Option<Tensor>>,
    /// Steps taken (AdamW's bias correction counts them).
    pub steps: i64,
}

impl Optimizer {
    pub fn new(config: OptimizerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, first: Vec::new(), second: Vec::new(), steps: 0 })
    }

    pub fn config(&self) -> OptimizerConfig {
        self.config
    }

    /// The learning rate of the next step; schedules move it.
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        if !lr.is_finite() || lr < 0.0 {
            return Err(Error::range("lr", "a finite number >= 0", lr));
        }
        self.config.lr = lr;
        Ok(())
    }

    /// One step. `grads` are consumed: they become the update in place.
    pub fn step<'a>(&mut self, params: impl Iterator<Item = &'a Tensor>, grads: Vec<Tensor>) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let n = grads.len();
        if self.first.len() < n {
            self.first.resize_with(n, || None);
            self.second.resize_with(n, || None);
        }
        self.steps += 1;
        let live: Vec<(usize, &Tensor, Tensor)> =
            params.zip(grads).enumerate().filter(|(_, (_, d))| d.defined()).map(|(i, (p, d))| (i, p, d)).collect();
        match self.config.kind {
            OptimizerKind::Sgd | OptimizerKind::Lars => self.sgd_like(live),
            OptimizerKind::AdamW => {
                for (i, p, d) in live {
                    let excluded = self.excluded(p);
                    self.adamw(i, p, d, excluded)?;
                }
                Ok(())
            }
        }
    }

    /// Whether `p` is left out of weight decay and LARS's adaptation.
    fn excluded(&self, p: &Tensor) -> bool {
        self.config.exclude_bias_and_norm && p.dim() <= 1
    }

    /// torch.optim.SGD (and lightly's LARS), op for op as PyTorch's
    /// single-tensor step, each phase over all parameters at once: the update
    /// of each tensor only reads its own values, so the order across tensors
    /// does not change a bit. Weight decay and LARS's trust ratio need each
    /// tensor's norms; the momentum buffers and the parameters move with
    /// `_foreach_*` ops.
    fn sgd_like(&mut self, live: Vec<(usize, &Tensor, Tensor)>) -> Result<()> {
        let c = self.config;
        let mut updates = Vec::with_capacity(live.len());
        for (_, p, d) in &live {
            let excluded = self.excluded(p);
            let wd = if excluded { 0.0 } else { c.weight_decay };
            let mut d = d.shallow_clone();
            if c.kind == OptimizerKind::Lars && !excluded {
                // lightly's LARS: scale by η‖w‖/(‖g‖ + wd‖w‖ + ε) when both norms are
                // non-zero, computed on the device (no host sync per tensor).
                let p_norm = p.f_norm()?;
                let g_norm = d.f_norm()?;
                let ratio =
                    p_norm.f_div(&g_norm.f_add(&p_norm.f_mul_scalar(wd)?)?.f_add_scalar(1e-8)?)?.f_mul_scalar(c.trust_coefficient)?;
                let ok = p_norm.f_gt(0.0)?.f_logical_and(&g_norm.f_gt(0.0)?)?;
                let ratio = ratio.f_where_self(&ok, &Tensor::f_ones([], (Kind::Float, p.device()))?)?;
                if wd != 0.0 {
                    d = add_scaled(&d, p, wd)?;
                }
                d = d.f_mul(&ratio)?;
            } else if wd != 0.0 {
                d = add_scaled(&d, p, wd)?;
            }
            updates.push(d);
        }
        if c.momentum != 0.0 {
            // buf = d on the first step; then buf = buf * momentum + (1 - dampening) * d.
            let mut old: (Vec<Tensor>, Vec<&Tensor>) = (Vec::new(), Vec::new());
            for ((i, _, _), d) in live.iter().zip(&updates) {
                match self.first[*i].as_ref() {
                    Some(b) => {
                        old.0.push(b.shallow_clone());
                        old.1.push(d);
                    }
                    None => self.first[*i] = Some(fresh_copy(d)?),
                }
            }
            let bufs: Vec<&Tensor> = old.0.iter().collect();
            foreach_mul_(&bufs, c.momentum)?;
            foreach_add_(&bufs, &old.1, 1.0 - c.dampening)?;
            for ((i, _, _), d) in live.iter().zip(updates.iter_mut()) {
                let buf = self.first[*i].as_ref().ok_or_else(|| Error::State("a momentum buffer went missing".into()))?;
                *d = if c.nesterov { add_scaled(d, buf, c.momentum)? } else { buf.shallow_clone() };
            }
        }
        let params: Vec<&Tensor> = live.iter().map(|(_, p, _)| *p).collect();
        foreach_add_(&params, &updates.iter().collect::<Vec<_>>(), -c.lr)
    }

    fn adamw(&mut self, i: usize, p: &Tensor, d: Tensor, excluded: bool) -> Result<()> {
        let c = self.config;
        let (b1, b2) = c.betas;
        let mut p = p.shallow_clone();
        let wd = if excluded { 0.0 } else { c.weight_decay };
        if wd != 0.0 {
            let _ = p.f_mul_scalar_(1.0 - c.lr * wd)?;
        }
        let mut m = match self.first[i].take() {
            Some(m) => m,
            None => d.f_zeros_like()?,
        };
        let mut v = match self.second[i].take() {
            Some(v) => v,
            None => d.f_zeros_like()?,
        };
        // torch.optim.AdamW (single-tensor path): lerp_, mul_.addcmul_, then
        // denom = sqrt(v)/sqrt(bc2) + eps and p -= lr/bc1 * m/denom.
        let _ = m.f_lerp_(&d, 1.0 - b1)?;
        let _ = v.f_mul_scalar_(b2)?;
        let _ = v.f_addcmul_(&d, &d.f_mul_scalar(1.0 - b2)?)?;
        let t = self.steps as f64;
        let bc1 = 1.0 - b1.powf(t);
        let bc2_sqrt = (1.0 - b2.powf(t)).sqrt();
        let denom = v.f_sqrt()?.f_div_scalar(bc2_sqrt)?.f_add_scalar(c.eps)?;
        let _ = p.f_addcdiv_(&m.f_mul_scalar(-c.lr / bc1)?, &denom)?;
        self.first[i] = Some(m);
        self.second[i] = Some(v);
        Ok(())
    }

    /// Per-parameter state as named tensors (for checkpoints).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, t) in self.first.iter().enumerate() {
            if let Some(t) = t {
                out.push((format!("{i}.first"), t.shallow_clone()));
            }
        }
        for (i, t) in self.second.iter().enumerate() {
            if let Some(t) = t {
                out.push((format!("{i}.second"), t.shallow_clone()));
            }
        }
        out
    }

    /// Restores what `state_tensors` gave, onto `device`.
    pub fn load_state_tensors(&mut self, tensors: &[(String, Tensor)], params: &[Tensor]) -> Result<()> {
        let mut first: Vec<Option<Tensor>> = (0..params.len()).map(|_| None).collect();
        let mut second: Vec<Option<Tensor>> = (0..params.len()).map(|_| None).collect();
        for (name, t) in tensors {
            let (index, which) =
                name.split_once('.').ok_or_else(|| Error::StateDict(format!("optimizer state: unexpected key '{name}'")))?;
            let i: usize = index.parse().map_err(|_| Error::StateDict(format!("optimizer state: unexpected key '{name}'")))?;
            let p = params.get(i).ok_or_else(|| {
                Error::StateDict(format!("optimizer state: '{name}' is beyond the {} parameters of the model", params.len()))
            })?;
            if t.size() != p.size() {
                return Err(Error::StateDict(format!("optimizer state: '{name}' has shape {:?}, the parameter {:?}", t.size(), p.size())));
            }
            let t = t.f_to_device(p.device())?.f_to_kind(p.kind())?;
            match which {
                "first" => first[i] = Some(t),
                "second" => second[i] = Some(t),
                _ => return Err(Error::StateDict(format!("optimizer state: unexpected key '{name}'"))),
            }
        }
        self.first = first;
        self.second = second;
        Ok(())
    }
}

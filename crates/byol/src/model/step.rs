//! The training step: lightly's order (momentum update, four forwards, loss),
//! then backward and the optimiser step, with a precision, a loss form, a loss
//! scaler and a NaN check.
use crate::dist::{ProcessGroup, SyncBatchNormScope};
use crate::error::{Error, Result};
use crate::model::byol::Byol;
use crate::model::loss::LossForm;
use crate::model::momentum::update_momentum_params;
use crate::nn::fresh_copy;
use crate::optim::GradScaler;
use crate::tensor::shim::{foreach_add_, InferenceMode};
use crate::tensor::{Autocast, Precision};
use tch::Tensor;

pub struct StepOutput {
    pub loss: Tensor,
    /// The loss as read for the NaN check (`StepOptions::check_finite`).
    pub loss_value: Option<f64>,
    pub momentum: f64,
    /// The online projection of the first view, detached.
    pub projection: Tensor,
    /// False when the loss scaler skipped the update (fp16 overflow).
    pub stepped: bool,
    /// Whether this call closed its accumulation window with an optimiser
    /// step (always, without accumulation).
    pub applied: bool,
}

impl StepOutput {
    /// The collapse monitor: the standard deviation over the batch of the
    /// l2-normalised online projections, averaged over dimensions. About
    /// `1/sqrt(dim)` when healthy, 0 when every image maps to one point.
    /// Computed on demand, off the training step.
    pub fn projection_std(&self) -> Result<f64> {
        let _guard = tch::no_grad_guard();
        let z = self.projection.f_to_kind(tch::Kind::Float)?;
        let zn = z.f_div(&z.f_norm_scalaropt_dim(2, [1i64].as_slice(), true)?.f_clamp_min(1e-12)?)?;
        Ok(zn.f_std_correction([0i64].as_slice(), 1, false)?.f_mean(None)?.f_double_value(&[])?)
    }
}

/// How `training_step_with` runs a step.
pub struct StepOptions<'a> {
    pub precision: Precision,
    pub loss: LossForm,
    /// Required with `Precision::Fp16Mixed`.
    pub scaler: Option<&'a mut GradScaler>,
    /// Check the loss before updating anything and fail with `NonFinite`.
    pub check_finite: bool,
    /// Data-parallel training, as DistributedDataParallel does it: rank 0's
    /// BatchNorm buffers broadcast before the forwards (`broadcast_buffers`),
    /// the gradients averaged over the ranks after backward.
    pub group: Option<&'a ProcessGroup>,
    /// With a group: BatchNorm statistics over all ranks (`torch.nn.SyncBatchNorm`).
    pub sync_batch_norm: bool,
    /// Lightning's `accumulate_grad_batches`: each loss is divided by this,
    /// its gradients added to those of the window's earlier micro-batches,
    /// and the optimiser steps only when `last` is set.
    pub accumulate: usize,
    /// This micro-batch closes its window: all-reduce, optimiser step.
    pub last: bool,
}

impl Default for StepOptions<'_> {
    fn default() -> Self {
        Self {
            precision: Precision::Full,
            loss: LossForm::Minerva,
            scaler: None,
            check_finite: false,
            group: None,
            sync_batch_norm: false,
            accumulate: 1,
            last: true,
        }
    }
}

impl Byol {
    /// One whole training step on the views `(x0, x1)`; always in training mode.
    pub fn training_step(&mut self, x0: &Tensor, x1: &Tensor) -> Result<StepOutput> {
        self.training_step_with(x0, x1, StepOptions::default())
    }

    /// The training step with a precision, a loss form, a loss scaler and a
    /// NaN check: lightly's order (momentum update, four forwards, loss), then
    /// backward and the optimiser step.
    pub fn training_step_with(&mut self, x0: &Tensor, x1: &Tensor, options: StepOptions) -> Result<StepOutput> {
        self.check_idle("trainingStep")?;
        self.step(x0, x1, options)
    }

    /// `training_step_with` without the busy check: `fit`'s own steps.
    pub(crate) fn step(&mut self, x0: &Tensor, x1: &Tensor, options: StepOptions) -> Result<StepOutput> {
        if x0.size() != x1.size() {
            return Err(Error::invalid("batch[1]", format!("the shape of batch[0], {:?}", x0.size()), format!("{:?}", x1.size())));
        }
        if self.optimizer.is_none() {
            self.configure_optimizers()?;
        }
        let momentum = self.current_momentum()?;
        if self.momentum_updated_at != Some(self.global_step) {
            update_momentum_params(&self.backbone.params, &self.backbone_momentum.params, momentum)?;
            update_momentum_params(&self.projection_head.params, &self.projection_head_momentum.params, momentum)?;
            self.momentum_updated_at = Some(self.global_step);
        }

        if let Some(group) = options.group {
            let buffers: Vec<&Tensor> = self.buffers().collect();
            group.broadcast_(&buffers, 0)?;
        }
        let _sync = options.group.filter(|_| options.sync_batch_norm).map(SyncBatchNormScope::enter);
        let (loss, projection) = {
            let _autocast = Autocast::new(options.precision, self.device())?;
            // lightly runs four forwards, one per view and network. The two
            // views go through each network in one call instead: BatchNorm
            // normalises each view by itself and moves the running statistics
            // view by view, and the weight gradients are reduced view by view
            // (csrc/views.cpp), so every number is lightly's, bit for bit.
            let views = Tensor::f_cat(&[x0, x1], 0)?;
            // The momentum network first: its activations are freed layer by
            // layer before the online network's, kept for backward, pile up.
            // It needs no autograd bookkeeping at all; its outputs, which the
            // loss saves for backward, become normal tensors again by a copy
            // of [2 x batch, dim] values.
            let z = {
                let _inference = InferenceMode::enter()?;
                self.forward_momentum_views(&views, true, 2)?
            };
            let (z0, z1) = halves(&fresh_copy(&z)?)?;
            let (z_online, p) = self.forward_views(&views, true, 2)?;
            let (p0, p1) = halves(&p)?;
            let z_online = halves(&z_online)?.0;
            let loss = options.loss.loss(&p0, &z0, &p1, &z1)?.f_to_kind(tch::Kind::Float)?;
            (loss, z_online.f_detach()?)
        };
        let mut loss_value = None;
        if options.check_finite {
            let value = loss.f_double_value(&[])?;
            if !value.is_finite() {
                // The window's gradients so far go with the step that failed.
                self.accumulated = None;
                return Err(Error::NonFinite { step: self.global_step + 1, value, last_good: self.global_step, saved: String::new() });
            }
            loss_value = Some(value);
        }

        // Shallow clones: the optimiser needs `&mut self.optimizer` while they are held.
        let params: Vec<Tensor> = self.trainable().map(Tensor::shallow_clone).collect();
        let mut stepped = true;
        let scaler = options.scaler.filter(|_| options.precision == Precision::Fp16Mixed);
        // Lightning divides each micro-batch's loss by the window's length.
        let mut scaled = if options.accumulate > 1 { loss.f_div_scalar(options.accumulate as f64)? } else { loss.shallow_clone() };
        if let Some(scaler) = &scaler {
            scaled = scaled.f_mul_scalar(scaler.scale)?;
        }
        let mut grads = match options.group.filter(|_| options.last) {
            // Once per window (as DDP's no_sync leaves the others local), and
            // before unscaling, so that every rank sees the same gradients
            // and skips (or takes) the same fp16 steps; overlapped with backward.
            Some(group) => group.backward_mean(&scaled, &params, self.accumulated.take().as_deref())?,
            None => {
                let grads = Tensor::f_run_backward(&[&scaled], &params, false, false)?;
                match self.accumulated.take() {
                    Some(sum) => {
                        foreach_add_(&sum.iter().collect::<Vec<_>>(), &grads.iter().collect::<Vec<_>>(), 1.0)?;
                        sum
                    }
                    None => grads,
                }
            }
        };
        if !options.last {
            self.accumulated = Some(grads);
            return Ok(StepOutput { loss: loss.f_detach()?, loss_value, momentum, projection, stepped: false, applied: false });
        }
        if let Some(scaler) = scaler {
            stepped = scaler.unscale(&mut grads)?;
        }
        if stepped {
            let optimizer = self.optimizer.as_mut().ok_or_else(|| Error::State("no optimiser".into()))?;
            optimizer.step(params.iter(), grads)?;
        }
        self.global_step += 1;
        Ok(StepOutput { loss: loss.f_detach()?, loss_value, momentum, projection, stepped, applied: true })
    }
}

/// The two views of a stacked `[2 x batch, ...]` tensor.
fn halves(t: &Tensor) -> Result<(Tensor, Tensor)> {
    let mut parts = t.f_chunk(2, 0)?.into_iter();
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(Error::State(format!("expected two views stacked in a tensor of shape {:?}", t.size()))),
    }
}

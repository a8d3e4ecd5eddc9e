//! Named tensors of a network, kept apart from its structure.
//!
//! A network is an architecture (shared, immutable) plus a `Params` store. The
//! momentum encoder of BYOL is the same architecture with a deep copy of the
//! store, so deep copy, EMA update, state dicts and optimisers all work on the
//! flat list here rather than walking module trees.
use crate::error::{Error, Result};
use crate::tensor::is_float;
use tch::{Device, Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Learned; has gradients while `requires_grad` is on.
    Parameter,
    /// State that is saved but not learned (BatchNorm running statistics).
    Buffer,
}

#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub role: Role,
    pub tensor: Tensor,
}

#[derive(Debug, Default)]
pub struct Params {
    entries: Vec<Entry>,
}

/// Index of a tensor in its `Params`; architectures hold these, not tensors.
pub type Slot = usize;

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<String>, role: Role, tensor: Tensor) -> Slot {
        let tensor = match role {
            Role::Parameter => tensor.set_requires_grad(true),
            Role::Buffer => tensor,
        };
        self.entries.push(Entry { name: name.into(), role, tensor });
        self.entries.len() - 1
    }

    #[inline]
    pub fn get(&self, slot: Slot) -> &Tensor {
        &self.entries[slot].tensor
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn parameters(&self) -> impl Iterator<Item = &Tensor> {
        self.entries.iter().filter(|e| e.role == Role::Parameter).map(|e| &e.tensor)
    }

    pub fn named_parameters(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.role == Role::Parameter)
    }

    pub fn device(&self) -> Device {
        self.entries.first().map(|e| e.tensor.device()).unwrap_or(Device::Cpu)
    }

    /// Another handle on the same tensors (no values are copied).
    pub fn shallow_clone(&self) -> Params {
        let entries = self.entries.iter().map(|e| Entry { name: e.name.clone(), role: e.role, tensor: e.tensor.shallow_clone() }).collect();
        Params { entries }
    }

    /// A copy that shares nothing with `self` (PyTorch's `copy.deepcopy`).
    pub fn deep_copy(&self) -> Result<Params> {
        let _guard = tch::no_grad_guard();
        let mut out = Params::new();
        for e in &self.entries {
            let t = fresh_copy(&e.tensor)?;
            let t = if e.role == Role::Parameter { t.f_set_requires_grad(e.tensor.requires_grad())? } else { t };
            out.entries.push(Entry { name: e.name.clone(), role: e.role, tensor: t });
        }
        Ok(out)
    }

    /// Turns gradient tracking of every parameter on or off.
    pub fn set_requires_grad(&mut self, on: bool) -> Result<()> {
        for e in self.entries.iter_mut().filter(|e| e.role == Role::Parameter) {
            e.tensor = e.tensor.f_set_requires_grad(on)?;
        }
        Ok(())
    }

    pub fn requires_grad(&self) -> bool {
        self.parameters().any(|t| t.requires_grad())
    }

    /// Moves every tensor to `device` in place of the old ones.
    pub fn to_device(&mut self, device: Device) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for e in self.entries.iter_mut() {
            let rg = e.tensor.requires_grad();
            let t = e.tensor.f_to_device(device)?.f_detach()?;
            e.tensor = if e.role == Role::Parameter { t.f_set_requires_grad(rg)? } else { t };
        }
        Ok(())
    }

    /// Re-lays every 4-D tensor out as channels_last (values unchanged).
    pub fn to_channels_last(&mut self) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for e in self.entries.iter_mut().filter(|e| e.tensor.dim() == 4) {
            let rg = e.tensor.requires_grad();
            let t = crate::tensor::to_channels_last(&e.tensor.f_detach()?)?;
            e.tensor = if e.role == Role::Parameter { t.f_set_requires_grad(rg)? } else { t };
        }
        Ok(())
    }

    /// `(name, tensor)` pairs with `prefix.` in front, sharing storage with the store.
    pub fn state_dict(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.entries.iter().map(|e| (join(prefix, &e.name), e.tensor.shallow_clone())).collect()
    }

    /// Checks that `source` has every tensor of the store under `prefix.`, with
    /// the same shape and a compatible dtype; writes nothing.
    pub fn check_fits(&self, source: &[(String, Tensor)], prefix: &str) -> Result<()> {
        self.matching(source, prefix).map(|_| ())
    }

    fn matching<'a>(&'a self, source: &'a [(String, Tensor)], prefix: &str) -> Result<Vec<(&'a Tensor, &'a Tensor)>> {
        let mut missing = Vec::new();
        let mut pairs = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let key = join(prefix, &e.name);
            match source.iter().find(|(k, _)| *k == key) {
                None => missing.push(key),
                Some((_, t)) => {
                    if t.size() != e.tensor.size() {
                        return Err(Error::StateDict(format!(
                            "'{key}' has shape {:?} in the dict but {:?} in the model",
                            t.size(),
                            e.tensor.size()
                        )));
                    }
                    if !is_compatible_kind(t.kind(), e.tensor.kind()) {
                        return Err(Error::StateDict(format!(
                            "'{key}' has dtype {:?} in the dict but {:?} in the model",
                            t.kind(),
                            e.tensor.kind()
                        )));
                    }
                    pairs.push((&e.tensor, t));
                }
            }
        }
        if !missing.is_empty() {
            return Err(Error::StateDict(format!("missing keys: {}", list(&missing))));
        }
        Ok(pairs)
    }

    /// Copies values in place from `source`, checking names and shapes first so
    /// that a bad dict leaves the store untouched.
    pub fn load_from(&self, source: &[(String, Tensor)], prefix: &str) -> Result<()> {
        let pairs = self.matching(source, prefix)?;
        let _guard = tch::no_grad_guard();
        for (dst, src) in pairs {
            let mut dst = dst.shallow_clone();
            dst.f_copy_(src)?;
        }
        Ok(())
    }

    /// Fills parameter and buffer values from `other`, which must have the same layout.
    pub fn copy_from(&self, other: &Params) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for (dst, src) in self.entries.iter().zip(other.entries.iter()) {
            let mut dst = dst.tensor.shallow_clone();
            dst.f_copy_(&src.tensor)?;
        }
        Ok(())
    }
}

fn is_compatible_kind(a: Kind, b: Kind) -> bool {
    a == b || (is_float(a) && is_float(b))
}

pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

pub(crate) fn list(keys: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = keys.iter().take(SHOWN).map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    if keys.len() > SHOWN {
        s.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    s
}

/// A new tensor with the values of `t`, sharing nothing with it and outside
/// any autograd graph (tch's `f_clone` is `clone_out`, which writes into its argument).
pub fn fresh_copy(t: &Tensor) -> Result<Tensor> {
    let _guard = tch::no_grad_guard();
    let mut out = t.f_empty_like()?;
    out.f_copy_(t)?;
    Ok(out.f_detach()?)
}

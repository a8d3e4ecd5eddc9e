//! BYOL's criterion: lightly's negative cosine similarity, in minerva's form
//! or the paper's.
use crate::error::{Error, Result};
use tch::Tensor;

/// lightly's `NegativeCosineSimilarity`: `-cos(x0, x1)` along dim 1, averaged.
pub fn negative_cosine_similarity(x0: &Tensor, x1: &Tensor) -> Result<Tensor> {
    if x0.size() != x1.size() {
        return Err(Error::invalid("x1", format!("the shape of x0, {:?}", x0.size()), format!("{:?}", x1.size())));
    }
    Ok(Tensor::f_cosine_similarity(x0, x1, 1, 1e-8)?.f_mean(None)?.f_neg()?)
}

/// The symmetrised loss of minerva's `training_step`:
/// `0.5 * (criterion(p0, z1) + criterion(p1, z0))`.
pub fn byol_loss(p0: &Tensor, z0: &Tensor, p1: &Tensor, z1: &Tensor) -> Result<Tensor> {
    let a = negative_cosine_similarity(p0, z1)?;
    let b = negative_cosine_similarity(p1, z0)?;
    Ok(a.f_add(&b)?.f_mul_scalar(0.5)?)
}

/// Which form of BYOL's loss the training step minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossForm {
    /// minerva's: `0.5 * (-cos(p0, z1) - cos(p1, z0))`.
    Minerva,
    /// The BYOL paper's: `(2 - 2cos(p0, z1)) + (2 - 2cos(p1, z0))`, summed over
    /// both views; the same minimum, gradients 4x minerva's.
    Paper,
}

impl LossForm {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "minerva" => Ok(Self::Minerva),
            "paper" => Ok(Self::Paper),
            other => Err(Error::invalid("loss", "'minerva' or 'paper'", format!("'{other}'"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Minerva => "minerva",
            Self::Paper => "paper",
        }
    }

    pub fn loss(self, p0: &Tensor, z0: &Tensor, p1: &Tensor, z1: &Tensor) -> Result<Tensor> {
        let l = byol_loss(p0, z0, p1, z1)?;
        match self {
            Self::Minerva => Ok(l),
            Self::Paper => Ok(l.f_mul_scalar(4.0)?.f_add_scalar(4.0)?),
        }
    }
}

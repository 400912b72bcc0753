//! The replacements themselves: max-pool -> average-pool (same window,
//! stride, padding) and a non-polynomial activation -> a polynomial.

use serde::{Deserialize, Serialize};

use super::fit::least_squares;
use crate::error::{Error, Result};
use crate::model::{Activation, Layer, Poly};

/// How a polynomial's coefficients start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum PolyInit {
    /// Every coefficient `1e-5`, as MOFHEI initialises them.
    Mofhei,
    /// Every coefficient this value.
    Constant(f32),
    /// A least-squares fit of the original activation on the inputs the
    /// layer actually sees (from a forward pass over training samples).
    LeastSquares,
}

/// What a non-polynomial activation becomes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Replacement {
    /// The fixed `x^2`.
    Square,
    /// A trainable polynomial of degree 2, 3 or 4.
    Poly {
        /// Degree (2..=4).
        degree: usize,
        /// Initial coefficients.
        init: PolyInit,
        /// One coefficient set per channel instead of one per layer.
        per_channel: bool,
    },
}

impl Replacement {
    /// MOFHEI's choice for LeNet: a degree-2 trainable polynomial per layer,
    /// coefficients initialised to 1e-5.
    pub fn mofhei() -> Replacement {
        Replacement::Poly {
            degree: 2,
            init: PolyInit::Mofhei,
            per_channel: false,
        }
    }

    /// Checks the degree.
    pub fn validate(&self) -> Result<()> {
        if let Replacement::Poly { degree, .. } = self
            && !(2..=4).contains(degree)
        {
            return Err(Error::InvalidParameter {
                name: "polynomial degree",
                value: *degree as i64,
                allowed: "2, 3 or 4",
            });
        }
        Ok(())
    }
}

/// The original activation as a function (for least-squares fitting).
pub fn activation_fn(act: &Activation) -> fn(f64) -> f64 {
    match act {
        Activation::Relu => |x| x.max(0.0),
        Activation::Tanh => f64::tanh,
        Activation::Sigmoid => |x| 1.0 / (1.0 + (-x).exp()),
        Activation::Square => |x| x * x,
        Activation::Poly(_) => |x| x,
    }
}

/// Whether HE can evaluate `layer` as it is (no max-pool, no
/// non-polynomial activation, no batch-norm, no dropout at inference is fine).
pub fn is_he_friendly(layer: &Layer) -> bool {
    match layer {
        Layer::MaxPool2d(_) | Layer::BatchNorm(_) => false,
        Layer::Activation(a) => a.is_polynomial(),
        _ => true,
    }
}

/// The average-pool that replaces a max-pool (same window, stride, padding);
/// other layers are returned unchanged.
pub fn replace_max_pool(layer: &Layer) -> Layer {
    match layer {
        Layer::MaxPool2d(p) => Layer::AvgPool2d(*p),
        other => other.clone(),
    }
}

/// The polynomial activation replacing `act`. `observed[c]` are inputs the
/// layer saw in channel `c` (one entry when not per channel); only used by
/// [`PolyInit::LeastSquares`].
pub fn replace_activation(
    act: &Activation,
    replacement: Replacement,
    observed: &[Vec<f32>],
) -> Result<Activation> {
    replacement.validate()?;
    let Replacement::Poly {
        degree,
        init,
        per_channel,
    } = replacement
    else {
        return Ok(Activation::Square);
    };
    let sets = if per_channel {
        observed.len().max(1)
    } else {
        1
    };
    let coeffs = match init {
        PolyInit::Mofhei => vec![vec![1e-5; degree + 1]; sets],
        PolyInit::Constant(c) => vec![vec![c; degree + 1]; sets],
        PolyInit::LeastSquares => {
            let f = activation_fn(act);
            let fit_one = |xs: &[f32]| -> Vec<f32> {
                let xs: Vec<f64> = xs.iter().map(|&x| f64::from(x)).collect();
                least_squares(f, &xs, degree)
                    .into_iter()
                    .map(|c| c as f32)
                    .collect()
            };
            if per_channel {
                observed.iter().map(|xs| fit_one(xs)).collect()
            } else {
                let all: Vec<f32> = observed.iter().flatten().copied().collect();
                vec![fit_one(&all)]
            }
        }
    };
    Ok(Activation::Poly(Poly { coeffs }))
}

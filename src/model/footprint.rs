//! What running, training or compiling a network costs, from its shapes
//! alone: checked (saturating) sizes compared with a [`Budget`] before the
//! forward pass, training or the compiler allocates anything.

use super::{Layer, Network, kernels};
use crate::budget::{self, Budget};
use crate::error::Result;

/// Sizes a network implies for a batch, in elements (saturating at
/// `u64::MAX`, which exceeds every budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// The largest single buffer of a forward pass: one activation of the
    /// whole batch (input included) or one convolution scratch matrix.
    pub largest_buffer: u64,
    /// All activations of the batch, input included (what
    /// [`Network::forward_all`] returns and training keeps).
    pub all_activations: u64,
    /// The compiler's folding work ([`Budget::max_compile_terms`]): input
    /// elements, plus per layer its output elements and weight terms.
    pub compile_terms: u64,
}

impl Network {
    /// The [`Footprint`] of a batch of `batch` samples. Errors only when the
    /// layer shapes do not chain ([`Network::shapes`]).
    pub fn footprint(&self, batch: usize) -> Result<Footprint> {
        let shapes = self.shapes()?;
        let n = batch as u64;
        let input = budget::product(&self.input_shape);
        let mut largest = budget::mul(n, input);
        let mut all = largest;
        let mut terms = input;
        for (layer, out_shape) in self.layers.iter().zip(&shapes) {
            let out = budget::product(out_shape);
            largest = largest.max(budget::mul(n, out));
            all = all.saturating_add(budget::mul(n, out));
            let fan_in = match layer {
                Layer::Dense(d) => d.weight.shape().get(1).copied().unwrap_or(0) as u64,
                Layer::Conv2d(c) => budget::product(c.weight.shape().get(1..).unwrap_or(&[])),
                Layer::AvgPool2d(p) => budget::mul(p.kernel.0 as u64, p.kernel.1 as u64),
                Layer::BatchNorm(_) | Layer::Activation(_) => 1,
                Layer::MaxPool2d(p) => budget::mul(p.kernel.0 as u64, p.kernel.1 as u64),
                Layer::Flatten | Layer::Dropout { .. } => 0,
            };
            terms = terms
                .saturating_add(out)
                .saturating_add(budget::mul(out, fan_in));
            if let Layer::Conv2d(c) = layer {
                // im2col scratch: [C*kh*kw, chunk*P] for a chunk of samples.
                let ckk = budget::product(c.weight.shape().get(1..).unwrap_or(&[]));
                let p = budget::product(out_shape.get(1..).unwrap_or(&[]));
                let chunk = kernels::conv_chunk(usize::try_from(p).unwrap_or(usize::MAX), batch);
                largest = largest.max(budget::mul(budget::mul(ckk, p), chunk as u64));
            }
        }
        Ok(Footprint {
            largest_buffer: largest,
            all_activations: all,
            compile_terms: terms,
        })
    }

    /// Checks a forward pass of `batch` samples against `budget`: every
    /// buffer within [`Budget::max_tensor_elements`], and with `keep_all`
    /// (forward_all, training) all activations together.
    pub fn check_budget(&self, batch: usize, keep_all: bool, budget: &Budget) -> Result<()> {
        let f = self.footprint(batch)?;
        Budget::check(
            "tensor elements",
            f.largest_buffer,
            budget.max_tensor_elements,
        )?;
        if keep_all {
            Budget::check(
                "kept activation elements",
                f.all_activations,
                budget.max_tensor_elements,
            )?;
        }
        Ok(())
    }
}

//! What a plan compiled from an integer-quantised network carries
//! ([`IntegerPlan`]): input quantisation, output scales and the accumulator
//! bounds a plaintext modulus is checked against.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::quant::{QuantizedNetwork, check_bounds, min_modulus};

/// The largest integer magnitude a plan stores exactly (plan constants are
/// `f64`): `2^53`.
pub const MAX_PLAN_INTEGER: f64 = 9_007_199_254_740_992.0;

/// What a plan compiled from a [`QuantizedNetwork`] carries for the client
/// and for integer schemes: how inputs become integers, the scale of every
/// output, and the worst-case magnitude of every layer's integers (from
/// [`QuantizedNetwork::accumulator_bounds`]), against which a plaintext
/// modulus is checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegerPlan {
    input_scale: f64,
    input_bound: u64,
    output_scales: Vec<f64>,
    layer_bounds: Vec<u128>,
}

impl IntegerPlan {
    /// The integer facts of a quantised network.
    pub fn new(q: &QuantizedNetwork) -> Result<IntegerPlan> {
        let input_bound = u64::try_from(q.input_bound()).map_err(|_| Error::Internal {
            invariant: "a quantised input bound is non-negative",
        })?;
        Ok(IntegerPlan {
            input_scale: q.input_scale(),
            input_bound,
            output_scales: q.output_scales(),
            layer_bounds: q.accumulator_bounds(),
        })
    }

    /// The input scale: the client encrypts `round(x * scale)`, clipped.
    pub fn input_scale(&self) -> f64 {
        self.input_scale
    }

    /// The largest input integer magnitude (inputs are clipped to it).
    pub fn input_bound(&self) -> u64 {
        self.input_bound
    }

    /// The integer the client encrypts for input value `x` (the same as
    /// [`QuantizedNetwork::quantize_input`]).
    pub fn quantize_input(&self, x: f32) -> f64 {
        let top = self.input_bound as f64;
        (f64::from(x) * self.input_scale).round().clamp(-top, top)
    }

    /// The scale of every output element: real output = integer / scale.
    pub fn output_scales(&self) -> &[f64] {
        &self.output_scales
    }

    /// The worst-case magnitude of each network layer's integers.
    pub fn layer_bounds(&self) -> &[u128] {
        &self.layer_bounds
    }

    /// The smallest plaintext modulus that cannot overflow (`2 * max bound + 1`).
    pub fn min_plaintext_modulus(&self) -> Result<u64> {
        min_modulus(u128::from(self.input_bound), &self.layer_bounds)
    }

    /// Refuses a plaintext modulus `t` that some layer's integers could
    /// exceed ([`Error::AccumulatorOverflow`] naming the first such layer).
    pub fn check_plaintext_modulus(&self, t: u64) -> Result<()> {
        check_bounds(u128::from(self.input_bound), &self.layer_bounds, t)
    }

    /// Internal consistency (for [`Plan::validate`]).
    pub(crate) fn is_consistent(&self, outputs: usize) -> bool {
        self.input_scale.is_finite()
            && self.input_scale > 0.0
            && self.output_scales.len() == outputs
            && self
                .output_scales
                .iter()
                .all(|s| s.is_finite() && *s != 0.0)
    }
}

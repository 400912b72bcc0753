//! Test helpers: the networks and reference forward pass of
//! [`crate::conformance::reference`], and a simulator setup from a plan.

pub(crate) use crate::conformance::quantised_net;
pub use crate::conformance::reference::*;

use crate::he::sim::{Sim, SimParams};
use crate::model::{Layer, Network};
use crate::plan::Plan;

/// Zeroes every unit from `k` on of layer `l` for each `(l, k)` in `keep`
/// (conv filters or dense rows; the culled units of a pruned network).
pub fn keep_units(net: &mut Network, keep: &[(usize, usize)]) {
    for &(l, k) in keep {
        match &mut net.layers[l] {
            Layer::Conv2d(c) => {
                let per: usize = c.weight.shape()[1..].iter().product();
                c.weight.data_mut()[k * per..]
                    .iter_mut()
                    .for_each(|w| *w = 0.0);
            }
            Layer::Dense(d) => {
                let per = d.weight.shape()[1];
                d.weight.data_mut()[k * per..]
                    .iter_mut()
                    .for_each(|w| *w = 0.0);
            }
            _ => unreachable!("layer {l} is not a conv or dense layer"),
        }
    }
}

/// The exact integer outputs of `q` for each sample of `x`
/// (`per_sample` elements each): the reference of the BFV runs.
#[cfg(feature = "bfv")]
pub fn integer_outputs(
    q: &crate::quant::QuantizedNetwork,
    x: &crate::model::Tensor,
    per_sample: usize,
) -> Vec<Vec<i64>> {
    x.data()
        .chunks(per_sample)
        .map(|s| q.forward(&q.quantize_input(s).unwrap()).unwrap())
        .collect()
}

/// A simulator matching the plan's chosen moduli, with `slots` slots.
pub fn sim_for(plan: &Plan, slots: usize) -> Sim {
    let p: SimParams = plan.params().sim_params(slots).unwrap();
    Sim::new(p)
}

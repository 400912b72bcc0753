//! The compiler: a (pruned) network + a [`Packing`] become a [`Plan`], the
//! exact list of HE instructions to run, with zero blocks already gone.
//! This module is the driver; the plan IR is in [`crate::plan`], the
//! interface a packing lowers through in [`crate::lower`].
//!
//! Steps (design notes in `docs/compile.md`):
//! 1. **Fold** ([`Folded`]): the network becomes sparse linear maps and
//!    squarings; average-pool divisors, polynomial coefficients, batch-norm
//!    and culled units move into neighbouring weights and biases, so an
//!    activation costs one ct x ct mult and one level, a pool no mult at all.
//! 2. **Lower**: the packing emits [`Instr`](crate::plan::Instr)uctions
//!    through a [`Builder`]; a zero weight, tile or diagonal emits nothing.
//! 3. **Schedule**: dead code removed, instructions ordered depth-first from
//!    the outputs and grouped into waves of independent instructions (run in
//!    parallel); each value is freed after the wave of its last use, so the
//!    live set, not the network size, sets peak memory.
//! 4. **Levels and parameters**: inputs enter at level `depth` (the number of
//!    rescales on the longest path); [`choose_params`] picks the smallest
//!    128-bit-secure CKKS parameters that fit the depth, the precision and
//!    the layout's slot count.
//! 5. **Cost**: exact op counts per kind and level (the same convention as
//!    [`crate::he::Counted`]) and a time estimate from a [`CostModel`].
//!
//! Integer-quantised networks ([`crate::quant::QuantizedNetwork`]) for exact
//! integer schemes (BFV) go through [`compile_quantized`]: the same steps
//! with integer weights and no pending factors, and the accumulator bounds
//! recorded in the plan ([`IntegerPlan`]) and checked against the plaintext
//! modulus (notes in `docs/bfv.md`).

use crate::error::{Error, Result};
use crate::he::OpCounts;
use crate::lower::{Builder, Folded, Lowered};
use crate::model::Network;
use crate::packing::Packing;
use crate::plan::{CostModel, IntegerPlan, PackingKind, Plan};

mod params;
mod quantized;
mod waves;

pub use params::{ParamRequest, choose_params};
pub use quantized::compile_quantized;

/// Options of [`compile`].
#[derive(Debug, Clone, PartialEq)]
pub struct CompileOptions {
    /// Precision and magnitude requirements for parameter selection.
    pub params: ParamRequest,
    /// The fewest slots the chosen parameters must have (e.g. a batch size for
    /// batch packing; the layout's own need is added automatically).
    pub min_slots: usize,
    /// Most instructions per parallel wave (bounds the extra live values).
    pub wave_width: usize,
    /// The plaintext modulus `t` of the integer scheme a quantised plan is
    /// for ([`compile_quantized`] refuses a plan whose accumulators could
    /// exceed it); `None`: not checked at compile time (the evaluator still
    /// checks the backend's modulus). Ignored by [`compile`].
    pub plaintext_modulus: Option<u64>,
    /// Limits on the folding work and activation sizes a network may cause
    /// ([`Folded::with_budget`]), checked before anything is built.
    pub budget: crate::budget::Budget,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            params: ParamRequest::default(),
            min_slots: 1,
            wave_width: 16,
            plaintext_modulus: None,
            budget: crate::budget::Budget::default(),
        }
    }
}

/// The cheapest of several packings for one network: compiles `net` under
/// each candidate and returns the index and plan with the lowest estimated
/// single-thread seconds **per sample** under `model`
/// ([`Plan::estimated_seconds`] over [`Plan::samples`]; ties go to the
/// earlier candidate). A candidate that cannot compile the network (e.g. an
/// unsupported layer) is skipped; if none compiles, its first error is
/// returned, and an empty list is [`Error::EmptyInput`].
///
/// Typical candidates: the tile packing's two interleaved transitions
/// ([`crate::packing::tile::Transition`]), several tile shapes, or batch vs
/// tile packing. Memory is not part of the estimate: leave out candidates
/// whose plaintexts would not fit (a `Products` transition stores one
/// plaintext per output and input tile).
pub fn compile_cheapest(
    net: &Network,
    candidates: &[&dyn Packing],
    opts: &CompileOptions,
    model: &CostModel,
) -> Result<(usize, Plan)> {
    let mut best: Option<(usize, Plan, f64)> = None;
    let mut first_err = None;
    for (i, packing) in candidates.iter().enumerate() {
        match compile(net, *packing, opts) {
            Ok(plan) => {
                let samples = plan.samples(plan.params().slots()).max(1) as f64;
                let per_sample = plan.estimated_seconds(model) / samples;
                if best.as_ref().is_none_or(|b| per_sample < b.2) {
                    best = Some((i, plan, per_sample));
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match (best, first_err) {
        (Some((i, plan, _)), _) => Ok((i, plan)),
        (None, Some(e)) => Err(e),
        (None, None) => Err(Error::EmptyInput {
            what: "compile_cheapest candidates",
        }),
    }
}

/// Compile a network with a packing into a [`Plan`].
///
/// Refuses, before anything is encrypted: layers HE cannot evaluate or the
/// packing cannot do ([`Error::UnsupportedLayer`], e.g. ReLU or max-pool
/// before the HE-friendly transform), inconsistent shapes, depths no
/// secure parameter set can hold, and networks whose folding work exceeds
/// [`CompileOptions::budget`] ([`Error::BudgetExceeded`], checked before
/// anything is built).
pub fn compile(net: &Network, packing: &dyn Packing, opts: &CompileOptions) -> Result<Plan> {
    net.shapes()?;
    let folded = Folded::with_budget(net, &opts.budget)?;
    for (i, l) in net.layers.iter().enumerate() {
        if !packing.supports(l) {
            return Err(Error::UnsupportedLayer {
                layer: i,
                kind: l.kind(),
                by: packing.name(),
            });
        }
    }
    let mut b = Builder::new();
    packing.lower(&folded, &mut b)?;
    let kinds = net.layers.iter().map(|l| l.kind().to_string()).collect();
    to_plan(b.finish()?, kinds, packing.kind(), &folded, opts, None)
}

/// Schedule what a packing emitted into a validated [`Plan`]: waves,
/// levels, parameters and op counts.
fn to_plan(
    lowered: Lowered,
    layer_kinds: Vec<String>,
    packing: PackingKind,
    folded: &Folded,
    opts: &CompileOptions,
    integer: Option<IntegerPlan>,
) -> Result<Plan> {
    let n_values = lowered.consumed.len();
    let scheduled = waves::schedule(
        &lowered.steps,
        n_values,
        lowered.n_inputs,
        &lowered.outputs,
        opts.wave_width.max(1),
    );
    let depth = lowered.consumed.iter().copied().max().unwrap_or(0);
    let levels: Vec<u32> = lowered.consumed.iter().map(|c| depth - c).collect();
    let layout_slots = lowered
        .period
        .unwrap_or(1)
        .max(lowered.samples.unwrap_or(1));
    let params = choose_params(depth, layout_slots.max(opts.min_slots), &opts.params)?;
    let mut plan = Plan {
        packing,
        input_shape: folded.input_shape.clone(),
        output_shape: folded.output_shape.clone(),
        input: lowered.input,
        samples: lowered.samples,
        period: lowered.period,
        levels,
        steps: scheduled.steps,
        waves: scheduled.waves,
        plains: lowered.plains,
        outputs: lowered.outputs,
        output_map: lowered.output_map,
        depth,
        keys: lowered.keys,
        params,
        counts: OpCounts::default(),
        peak_live: scheduled.peak_live,
        peak_live_streamed: scheduled.peak_live_streamed,
        layer_kinds,
        integer,
    };
    plan.counts = plan.count_ops(plan.params.slots());
    plan.validate()?;
    Ok(plan)
}

#[cfg(test)]
mod tests;

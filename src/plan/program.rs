//! [`Plan`]: a compiled network, its accessors, op counts and estimates.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{
    CkksChoice, CostModel, InputLayout, IntegerPlan, OutputElem, PackingKind, Plain, Step, ValueId,
    Wave,
};
use crate::he::{KeyRequirements, Level, OpCounts};

/// A compiled network: HE instructions (zero blocks gone), levels, keys,
/// parameters and cost. Serialisable ([`Plan::to_bytes`] / [`Plan::from_bytes`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub(crate) packing: PackingKind,
    pub(crate) input_shape: Vec<usize>,
    pub(crate) output_shape: Vec<usize>,
    pub(crate) input: InputLayout,
    pub(crate) samples: Option<usize>,
    pub(crate) period: Option<usize>,
    pub(crate) levels: Vec<u32>,
    pub(crate) steps: Vec<Step>,
    pub(crate) waves: Vec<Wave>,
    pub(crate) plains: Vec<Plain>,
    pub(crate) outputs: Vec<ValueId>,
    pub(crate) output_map: Vec<OutputElem>,
    pub(crate) depth: u32,
    pub(crate) keys: KeyRequirements,
    pub(crate) params: CkksChoice,
    pub(crate) counts: OpCounts,
    pub(crate) peak_live: usize,
    pub(crate) peak_live_streamed: usize,
    pub(crate) layer_kinds: Vec<String>,
    pub(crate) integer: Option<IntegerPlan>,
}

impl Plan {
    /// The packing it was compiled with.
    pub fn packing(&self) -> PackingKind {
        self.packing
    }
    /// Per-sample input shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }
    /// Per-sample output shape.
    pub fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }
    /// Where the client puts input elements.
    pub fn input_layout(&self) -> &InputLayout {
        &self.input
    }
    /// Samples per inference for `slots` slots.
    pub fn samples(&self, slots: usize) -> usize {
        self.samples.unwrap_or(slots)
    }
    /// The slot period of a replicated layout.
    pub fn period(&self) -> Option<usize> {
        self.period
    }
    /// Multiplicative depth: the level inputs are encrypted at.
    pub fn depth(&self) -> u32 {
        self.depth
    }
    /// Level of each value (inputs at `depth`).
    pub fn level(&self, v: ValueId) -> Level {
        Level(self.levels.get(v as usize).copied().unwrap_or(0))
    }
    /// Number of values.
    pub fn value_count(&self) -> usize {
        self.levels.len()
    }
    /// The instructions in execution order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
    /// The parallel waves.
    pub fn waves(&self) -> &[Wave] {
        &self.waves
    }
    /// The stored plaintext constants.
    pub fn plains(&self) -> &[Plain] {
        &self.plains
    }
    /// The ciphertexts returned to the client.
    pub fn outputs(&self) -> &[ValueId] {
        &self.outputs
    }
    /// Where each output element is read.
    pub fn output_map(&self) -> &[OutputElem] {
        &self.output_map
    }
    /// Evaluation keys the plan needs.
    pub fn key_requirements(&self) -> &KeyRequirements {
        &self.keys
    }
    /// The smallest secure CKKS parameters that fit.
    pub fn params(&self) -> &CkksChoice {
        &self.params
    }
    /// Estimated homomorphic op counts of one run (equal to what
    /// [`crate::he::Counted`] counts during [`crate::eval::Server::run`]),
    /// at the chosen parameters' slot count.
    pub fn counts(&self) -> &OpCounts {
        &self.counts
    }
    /// The most ciphertexts alive at once during a run (inputs included).
    pub fn peak_live(&self) -> usize {
        self.peak_live
    }
    /// The most ciphertexts alive at once when inputs are streamed in as
    /// first needed ([`crate::eval::Server::run_streamed`]).
    pub fn peak_live_streamed(&self) -> usize {
        self.peak_live_streamed
    }
    /// Kind name of each network layer (for reports).
    pub fn layer_kinds(&self) -> &[String] {
        &self.layer_kinds
    }
    /// For a plan compiled from a quantised network ([`crate::compile::compile_quantized`]):
    /// input quantisation, output scales and the accumulator bounds an
    /// integer scheme's plaintext modulus must hold; `None` for a real-valued
    /// plan.
    pub fn integer(&self) -> Option<&IntegerPlan> {
        self.integer.as_ref()
    }

    /// Op counts of one run for a backend with `slots` slots (only rotation
    /// steps that are multiples of the slot count differ).
    pub(crate) fn count_ops(&self, slots: usize) -> OpCounts {
        let mut c = OpCounts::default();
        for s in &self.steps {
            let lvl = s
                .instr
                .inputs()
                .first()
                .map(|&v| self.level(v))
                .unwrap_or_default();
            s.instr.count_into(&mut c, lvl, slots.max(1));
        }
        c
    }

    /// Op counts per network layer.
    pub fn counts_by_layer(&self) -> Vec<OpCounts> {
        let mut v = vec![OpCounts::default(); self.layer_kinds.len()];
        let slots = self.params.slots();
        for s in &self.steps {
            let lvl = s
                .instr
                .inputs()
                .first()
                .map(|&x| self.level(x))
                .unwrap_or_default();
            if let Some(c) = v.get_mut(s.layer as usize) {
                s.instr.count_into(c, lvl, slots);
            }
        }
        v
    }

    /// Estimated single-thread run time in seconds at the chosen parameters.
    pub fn estimated_seconds(&self, model: &CostModel) -> f64 {
        model.estimate(&self.counts, self.params.log_n)
    }

    /// Estimated bytes of ciphertexts alive at the peak at the chosen
    /// parameters (each at the input level: an upper bound).
    pub fn estimated_peak_bytes(&self) -> u64 {
        self.ciphertext_bytes()
            .saturating_mul(self.peak_live as u64)
    }

    /// Like [`Plan::estimated_peak_bytes`] for a streamed run.
    pub fn estimated_peak_bytes_streamed(&self) -> u64 {
        self.ciphertext_bytes()
            .saturating_mul(self.peak_live_streamed as u64)
    }

    /// Bytes of one ciphertext at the input level (2 polynomials of N
    /// 64-bit words per limb).
    fn ciphertext_bytes(&self) -> u64 {
        let n = 1u64.checked_shl(self.params.log_n).unwrap_or(u64::MAX);
        let limbs = u64::from(self.depth) + 1;
        n.saturating_mul(limbs).saturating_mul(16)
    }

    /// Rotation steps the plan uses (for reports).
    pub fn rotation_steps(&self) -> BTreeSet<i64> {
        self.keys.rotations().map(|r| r.0).collect()
    }
}

//! The compiler: a (pruned) network + a [`Packing`] become a [`Plan`], the
//! exact list of HE instructions to run, with zero blocks already gone.
//!
//! Steps (design notes in `docs/compile.md`):
//! 1. **Fold** ([`Folded`]): the network becomes sparse linear maps and
//!    squarings; average-pool divisors, polynomial coefficients, batch-norm
//!    and culled units move into neighbouring weights and biases, so an
//!    activation costs one ct x ct mult and one level, a pool no mult at all.
//! 2. **Lower**: the packing emits [`Instr`]uctions through a [`Builder`];
//!    a zero weight, tile or diagonal emits nothing.
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

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, Error, Result};
use crate::he::{KeyRequirements, Level, OpCounts, OpKind, Rotation};
use crate::model::Network;
use crate::packing::{Packing, PackingKind};

mod cost;
mod fold;
mod params;
mod quantized;
mod schedule;

pub use cost::CostModel;
pub use fold::{Elem, Folded, Row, Stage, Window};
pub use params::{CkksChoice, ParamRequest, choose_params};
pub use quantized::{IntegerPlan, MAX_PLAN_INTEGER, compile_quantized, fold_quantized};

/// Identifier of a ciphertext value in a plan.
pub type ValueId = u32;
/// Identifier of a plaintext constant in a plan.
pub type PlainId = u32;

/// One HE instruction. Every instruction allocates its outputs; inputs are
/// never mutated (the evaluator reuses a buffer when the input dies here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Instr {
    /// `sum_i inputs[i] * weights[i]` with ct x scalar mults (no plaintext
    /// encoded), then a rescale, then `+ bias` if non-zero. One level.
    DotScalar {
        /// Output value.
        out: ValueId,
        /// Input values (same level).
        inputs: Vec<ValueId>,
        /// One weight per input.
        weights: Vec<f64>,
        /// Added after the rescale (skipped when 0).
        bias: f64,
    },
    /// `sum_i inputs[i]`, then `+ bias` if non-zero. No level.
    Sum {
        /// Output value.
        out: ValueId,
        /// Input values (same level and scale).
        inputs: Vec<ValueId>,
        /// Added at the end (skipped when 0).
        bias: f64,
    },
    /// `input^2`, relinearised and rescaled. One level.
    Square {
        /// Output value.
        out: ValueId,
        /// Input value.
        input: ValueId,
    },
    /// `input^2` left unrelinearised and unrescaled: a size-3 ciphertext at
    /// the squared scale, same level. The compiler emits it only for squares
    /// that a [`Instr::Sum`] adds up and one [`Instr::RelinRescale`] then
    /// finishes (lazy relinearisation: an average pool after a polynomial
    /// activation costs one key switch and one rescale per window, not four).
    SquareLazy {
        /// Output value.
        out: ValueId,
        /// Input value.
        input: ValueId,
    },
    /// Relinearise then rescale (finishes a sum of lazy squares). One level.
    RelinRescale {
        /// Output value.
        out: ValueId,
        /// Input value (size 3).
        input: ValueId,
    },
    /// `input + value` in every slot. No level.
    AddScalar {
        /// Output value.
        out: ValueId,
        /// Input value.
        input: ValueId,
        /// The constant.
        value: f64,
    },
    /// `sum_i inputs[i] * plains[i]` (ct x pt), then a rescale. One level.
    DotPlain {
        /// Output value.
        out: ValueId,
        /// Input values (same level).
        inputs: Vec<ValueId>,
        /// One plaintext per input.
        plains: Vec<PlainId>,
    },
    /// `input * plain` then a rescale (masks). One level.
    MulPlain {
        /// Output value.
        out: ValueId,
        /// Input value.
        input: ValueId,
        /// The plaintext.
        plain: PlainId,
    },
    /// `input + plain`. No level.
    AddPlain {
        /// Output value.
        out: ValueId,
        /// Input value.
        input: ValueId,
        /// The plaintext (encoded at the input's scale).
        plain: PlainId,
    },
    /// Rotations of one ciphertext by several steps (hoisted by backends that can).
    RotateMany {
        /// One output per step.
        outs: Vec<ValueId>,
        /// Input value.
        input: ValueId,
        /// Steps (non-zero).
        steps: Vec<i64>,
    },
    /// Slot `i` receives `sum_{k < count} input[i + k * stride]`, by
    /// `log2(count)` rotations by `stride * 2^j` and as many adds.
    RotateSum {
        /// Output value.
        out: ValueId,
        /// Input value.
        input: ValueId,
        /// Distance between summed slots (negative: towards lower slots, i.e. duplication).
        stride: i64,
        /// Number of terms (a power of two).
        count: u32,
    },
    /// Drop to the output's (lower) level without rescaling.
    DropLevel {
        /// Output value.
        out: ValueId,
        /// Input value.
        input: ValueId,
    },
}

impl Instr {
    /// The values this instruction reads.
    pub fn inputs(&self) -> Vec<ValueId> {
        match self {
            Instr::DotScalar { inputs, .. }
            | Instr::Sum { inputs, .. }
            | Instr::DotPlain { inputs, .. } => inputs.clone(),
            Instr::Square { input, .. }
            | Instr::SquareLazy { input, .. }
            | Instr::RelinRescale { input, .. }
            | Instr::AddScalar { input, .. }
            | Instr::MulPlain { input, .. }
            | Instr::AddPlain { input, .. }
            | Instr::RotateMany { input, .. }
            | Instr::RotateSum { input, .. }
            | Instr::DropLevel { input, .. } => vec![*input],
        }
    }

    /// The values this instruction writes.
    pub fn outputs(&self) -> Vec<ValueId> {
        match self {
            Instr::RotateMany { outs, .. } => outs.clone(),
            Instr::DotScalar { out, .. }
            | Instr::Sum { out, .. }
            | Instr::DotPlain { out, .. }
            | Instr::Square { out, .. }
            | Instr::SquareLazy { out, .. }
            | Instr::RelinRescale { out, .. }
            | Instr::AddScalar { out, .. }
            | Instr::MulPlain { out, .. }
            | Instr::AddPlain { out, .. }
            | Instr::RotateSum { out, .. }
            | Instr::DropLevel { out, .. } => vec![*out],
        }
    }

    /// The plaintexts this instruction reads.
    pub fn plains(&self) -> Vec<PlainId> {
        match self {
            Instr::DotPlain { plains, .. } => plains.clone(),
            Instr::MulPlain { plain, .. } | Instr::AddPlain { plain, .. } => vec![*plain],
            _ => Vec::new(),
        }
    }

    /// Rescales performed (levels consumed).
    pub fn levels_used(&self) -> u32 {
        match self {
            Instr::DotScalar { .. }
            | Instr::Square { .. }
            | Instr::RelinRescale { .. }
            | Instr::DotPlain { .. }
            | Instr::MulPlain { .. } => 1,
            _ => 0,
        }
    }

    /// Record this instruction's operations (input at `level`) the way
    /// [`crate::he::Counted`] counts them; `slots` decides which rotation
    /// steps are identities.
    pub fn count_into(&self, c: &mut OpCounts, level: Level, slots: usize) {
        let below = Level(level.0.saturating_sub(1));
        match self {
            Instr::DotScalar {
                inputs, bias: b, ..
            } => {
                let n = inputs.len() as u64;
                c.record(OpKind::CtScalarMul, level, n);
                c.record(OpKind::CtCtAdd, level, n.saturating_sub(1));
                c.record(OpKind::Rescale, level, 1);
                c.record(OpKind::CtPtAdd, below, u64::from(*b != 0.0));
            }
            Instr::Sum { inputs, bias, .. } => {
                c.record(
                    OpKind::CtCtAdd,
                    level,
                    inputs.len().saturating_sub(1) as u64,
                );
                c.record(OpKind::CtPtAdd, level, u64::from(*bias != 0.0));
            }
            Instr::Square { .. } => {
                c.record(OpKind::CtCtMul, level, 1);
                c.record(OpKind::Relinearize, level, 1);
                c.record(OpKind::Rescale, level, 1);
            }
            Instr::SquareLazy { .. } => c.record(OpKind::CtCtMul, level, 1),
            Instr::RelinRescale { .. } => {
                c.record(OpKind::Relinearize, level, 1);
                c.record(OpKind::Rescale, level, 1);
            }
            Instr::AddScalar { .. } | Instr::AddPlain { .. } => {
                c.record(OpKind::CtPtAdd, level, 1);
            }
            Instr::DotPlain { inputs, .. } => {
                let n = inputs.len() as u64;
                c.record(OpKind::CtPtMul, level, n);
                c.record(OpKind::CtCtAdd, level, n.saturating_sub(1));
                c.record(OpKind::Rescale, level, 1);
            }
            Instr::MulPlain { .. } => {
                c.record(OpKind::CtPtMul, level, 1);
                c.record(OpKind::Rescale, level, 1);
            }
            Instr::RotateMany { steps, .. } => {
                let n = steps
                    .iter()
                    .filter(|&&s| Rotation(s).normalized(slots) != 0)
                    .count() as u64;
                c.record(OpKind::Rotation, level, n);
            }
            Instr::RotateSum { stride, count, .. } => {
                let mut k = 0u64;
                let mut r = 0u64;
                let mut step = 1i64;
                while (step as u64) < u64::from(*count) {
                    k += 1;
                    r += u64::from(Rotation(stride * step).normalized(slots) != 0);
                    step *= 2;
                }
                c.record(OpKind::Rotation, level, r);
                c.record(OpKind::CtCtAdd, level, k);
            }
            Instr::DropLevel { .. } => c.record(OpKind::LevelDrop, level, 1),
        }
    }
}

/// An instruction with the network layer it implements (for per-layer reports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Index of the network layer.
    pub layer: u32,
    /// The instruction.
    pub instr: Instr,
}

/// A group of instructions that do not depend on each other (run in
/// parallel), and the values whose last use is in it (freed after it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    /// One past the index of the wave's last instruction.
    pub end: u32,
    /// Values to free once the wave is done.
    pub frees: Vec<ValueId>,
    /// Input values first read by this wave (a streamed run fetches them
    /// just before it).
    pub loads: Vec<ValueId>,
}

/// How a plaintext constant is used (decides its encoding scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlainUse {
    /// Multiplied (encoded at the dropped prime so the scale survives the rescale).
    Mul,
    /// Added (encoded at the ciphertext's scale).
    Add,
}

/// A plaintext constant: slot values (the rest zero; repeated every
/// [`Plan::period`] slots when the layout is replicated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plain {
    /// The slot values.
    pub values: Vec<f64>,
    /// How it is used.
    pub usage: PlainUse,
}

/// Where the client puts input elements: per input ciphertext, the
/// `(slot, element)` pairs (element = index into the flattened sample).
/// Sample `s` of a batch goes to `slot + s`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputLayout {
    /// Per input ciphertext, its `(slot, element)` pairs.
    pub cts: Vec<Vec<(u32, u32)>>,
}

/// Where an output element is found after decryption.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum OutputElem {
    /// A constant (the unit was culled or its weights were all zero).
    Const(f64),
    /// `alpha * slot_value + beta` of output ciphertext `ct`, sample `s` at `slot + s`.
    Slot {
        /// Index into the plan's output ciphertexts.
        ct: u32,
        /// Slot of sample 0.
        slot: u32,
        /// Factor applied by the client (a pending folded scale).
        alpha: f64,
        /// Offset applied by the client.
        beta: f64,
    },
}

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

/// Collects instructions while a packing lowers a folded network; tracks
/// levels (as rescales consumed since the input) and the keys needed.
#[derive(Debug, Default)]
pub struct Builder {
    consumed: Vec<u32>,
    steps: Vec<Step>,
    plains: Vec<Plain>,
    keys: KeyRequirements,
    layer: u32,
    n_inputs: u32,
    input: Option<InputLayout>,
    outputs: Vec<ValueId>,
    output_map: Vec<OutputElem>,
    samples: Option<usize>,
    period: Option<usize>,
}

impl Builder {
    /// An empty builder.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Declare the input layout; returns one value per input ciphertext.
    /// Call once, before any instruction.
    pub fn inputs(&mut self, layout: InputLayout) -> Vec<ValueId> {
        let n = layout.cts.len();
        let ids = (0..n).map(|_| self.value(0)).collect();
        self.n_inputs = n as u32;
        self.input = Some(layout);
        ids
    }

    /// Samples per inference (`None`: one per slot, as batch packing does).
    pub fn set_samples(&mut self, samples: Option<usize>) {
        self.samples = samples;
    }

    /// The layout repeats every `period` slots (the client and server
    /// replicate inputs and plaintexts); `None`: not replicated.
    pub fn set_period(&mut self, period: Option<usize>) {
        self.period = period;
    }

    /// The layer instructions emitted from now on belong to.
    pub fn set_layer(&mut self, layer: usize) {
        self.layer = layer as u32;
    }

    /// Declare the outputs: the ciphertexts returned, and where each output
    /// element is read.
    pub fn set_outputs(&mut self, cts: Vec<ValueId>, map: Vec<OutputElem>) {
        self.outputs = cts;
        self.output_map = map;
    }

    /// Rescales consumed by a value since the input.
    pub fn consumed(&self, v: ValueId) -> u32 {
        self.consumed.get(v as usize).copied().unwrap_or(0)
    }

    fn value(&mut self, consumed: u32) -> ValueId {
        self.consumed.push(consumed);
        (self.consumed.len() - 1) as ValueId
    }

    fn push(&mut self, instr: Instr) {
        self.steps.push(Step {
            layer: self.layer,
            instr,
        });
    }

    /// Bring values to a common level (drop the fresher ones).
    fn align(&mut self, inputs: &[ValueId]) -> Vec<ValueId> {
        let target = inputs.iter().map(|&v| self.consumed(v)).max().unwrap_or(0);
        inputs
            .iter()
            .map(|&v| {
                if self.consumed(v) == target {
                    v
                } else {
                    let out = self.value(target);
                    self.push(Instr::DropLevel { out, input: v });
                    out
                }
            })
            .collect()
    }

    /// A plaintext constant.
    pub fn plain(&mut self, mut values: Vec<f64>, usage: PlainUse) -> PlainId {
        while values.last() == Some(&0.0) {
            values.pop();
        }
        self.plains.push(Plain { values, usage });
        (self.plains.len() - 1) as PlainId
    }

    /// See [`Instr::DotScalar`].
    pub fn dot_scalar(&mut self, inputs: &[ValueId], weights: Vec<f64>, bias: f64) -> ValueId {
        let inputs = self.align(inputs);
        let out = self.value(self.consumed(inputs[0]) + 1);
        self.push(Instr::DotScalar {
            out,
            inputs,
            weights,
            bias,
        });
        out
    }

    /// See [`Instr::Sum`]; a single term without bias is the term itself.
    pub fn sum(&mut self, inputs: &[ValueId], bias: f64) -> ValueId {
        if inputs.len() == 1 && bias == 0.0 {
            return inputs[0];
        }
        let inputs = self.align(inputs);
        let out = self.value(self.consumed(inputs[0]));
        self.push(Instr::Sum { out, inputs, bias });
        out
    }

    /// See [`Instr::Square`].
    pub fn square(&mut self, input: ValueId) -> ValueId {
        self.keys = std::mem::take(&mut self.keys).with_relinearization();
        let out = self.value(self.consumed(input) + 1);
        self.push(Instr::Square { out, input });
        out
    }

    /// See [`Instr::AddScalar`].
    pub fn add_scalar(&mut self, input: ValueId, value: f64) -> ValueId {
        let out = self.value(self.consumed(input));
        self.push(Instr::AddScalar { out, input, value });
        out
    }

    /// See [`Instr::DotPlain`].
    pub fn dot_plain(&mut self, inputs: &[ValueId], plains: Vec<PlainId>) -> ValueId {
        let inputs = self.align(inputs);
        let out = self.value(self.consumed(inputs[0]) + 1);
        self.push(Instr::DotPlain {
            out,
            inputs,
            plains,
        });
        out
    }

    /// See [`Instr::MulPlain`].
    pub fn mul_plain(&mut self, input: ValueId, plain: PlainId) -> ValueId {
        let out = self.value(self.consumed(input) + 1);
        self.push(Instr::MulPlain { out, input, plain });
        out
    }

    /// See [`Instr::AddPlain`].
    pub fn add_plain(&mut self, input: ValueId, plain: PlainId) -> ValueId {
        let out = self.value(self.consumed(input));
        self.push(Instr::AddPlain { out, input, plain });
        out
    }

    /// See [`Instr::RotateMany`]; registers the rotation keys.
    pub fn rotate_many(&mut self, input: ValueId, steps: &[i64]) -> Vec<ValueId> {
        let c = self.consumed(input);
        let outs: Vec<ValueId> = steps.iter().map(|_| self.value(c)).collect();
        for &s in steps {
            self.keys.add_rotation(Rotation(s));
        }
        self.push(Instr::RotateMany {
            outs: outs.clone(),
            input,
            steps: steps.to_vec(),
        });
        outs
    }

    /// See [`Instr::RotateSum`]; registers the rotation keys. `count <= 1` is
    /// the input itself.
    pub fn rotate_sum(&mut self, input: ValueId, stride: i64, count: u32) -> ValueId {
        if count <= 1 {
            return input;
        }
        let mut step = 1i64;
        while (step as u64) < u64::from(count) {
            self.keys.add_rotation(Rotation(stride * step));
            step *= 2;
        }
        let out = self.value(self.consumed(input));
        self.push(Instr::RotateSum {
            out,
            input,
            stride,
            count,
        });
        out
    }

    /// Lazy relinearisation: a [`Instr::Sum`] of at least two squares that
    /// nothing else reads becomes lazy squares ([`Instr::SquareLazy`]), the
    /// sum of the size-3 products, and one [`Instr::RelinRescale`]. Same
    /// levels and result up to rounding; `k` squares then cost one key
    /// switch and one rescale instead of `k`.
    fn defer_relinearization(&mut self) {
        let n = self.consumed.len();
        let mut uses = vec![0u32; n];
        for s in &self.steps {
            for v in s.instr.inputs() {
                uses[v as usize] += 1;
            }
        }
        for &o in &self.outputs {
            uses[o as usize] += 1;
        }
        let mut square_step = vec![usize::MAX; n];
        for (i, s) in self.steps.iter().enumerate() {
            if let Instr::Square { out, .. } = s.instr {
                square_step[out as usize] = i;
            }
        }
        let lazy = |inputs: &[ValueId]| {
            inputs.len() >= 2
                && inputs
                    .iter()
                    .all(|&v| square_step[v as usize] != usize::MAX && uses[v as usize] == 1)
        };
        let sums: Vec<usize> = (0..self.steps.len())
            .filter(|&i| matches!(&self.steps[i].instr, Instr::Sum { inputs, .. } if lazy(inputs)))
            .collect();
        if sums.is_empty() {
            return;
        }
        let mut finish_after: Vec<Option<Step>> = vec![None; self.steps.len()];
        for i in sums {
            let Instr::Sum { out, inputs, .. } = &self.steps[i].instr else {
                continue;
            };
            let (out, inputs) = (*out, inputs.clone());
            let mut layer = self.steps[i].layer;
            for &v in &inputs {
                let j = square_step[v as usize];
                if let Instr::Square { out, input } = self.steps[j].instr {
                    self.steps[j].instr = Instr::SquareLazy { out, input };
                    self.consumed[out as usize] -= 1;
                    layer = self.steps[j].layer;
                }
            }
            let temp = self.value(self.consumed[out as usize] - 1);
            if let Instr::Sum { out: o, .. } = &mut self.steps[i].instr {
                *o = temp;
            }
            finish_after[i] = Some(Step {
                layer,
                instr: Instr::RelinRescale { out, input: temp },
            });
        }
        let steps = std::mem::take(&mut self.steps);
        for (s, f) in steps.into_iter().zip(finish_after) {
            self.steps.push(s);
            self.steps.extend(f);
        }
    }

    fn finish(
        mut self,
        layer_kinds: Vec<String>,
        packing: PackingKind,
        folded: &Folded,
        opts: &CompileOptions,
        integer: Option<IntegerPlan>,
    ) -> Result<Plan> {
        self.defer_relinearization();
        let input = self.input.take().ok_or(Error::Internal {
            invariant: "a packing declares its input",
        })?;
        let n_values = self.consumed.len();
        let scheduled = schedule::schedule(
            &self.steps,
            n_values,
            self.n_inputs,
            &self.outputs,
            opts.wave_width.max(1),
        );
        let depth = self.consumed.iter().copied().max().unwrap_or(0);
        let levels: Vec<u32> = self.consumed.iter().map(|c| depth - c).collect();
        let layout_slots = self.period.unwrap_or(1).max(self.samples.unwrap_or(1));
        let params = choose_params(depth, layout_slots.max(opts.min_slots), &opts.params)?;
        let mut plan = Plan {
            packing,
            input_shape: folded.input_shape.clone(),
            output_shape: folded.output_shape.clone(),
            input,
            samples: self.samples,
            period: self.period,
            levels,
            steps: scheduled.steps,
            waves: scheduled.waves,
            plains: self.plains,
            outputs: self.outputs,
            output_map: self.output_map,
            depth,
            keys: self.keys,
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
    b.finish(kinds, packing.kind(), &folded, opts, None)
}

/// A compiled network: HE instructions (zero blocks gone), levels, keys,
/// parameters and cost. Serialisable ([`Plan::to_bytes`] / [`Plan::from_bytes`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    packing: PackingKind,
    input_shape: Vec<usize>,
    output_shape: Vec<usize>,
    input: InputLayout,
    samples: Option<usize>,
    period: Option<usize>,
    levels: Vec<u32>,
    steps: Vec<Step>,
    waves: Vec<Wave>,
    plains: Vec<Plain>,
    outputs: Vec<ValueId>,
    output_map: Vec<OutputElem>,
    depth: u32,
    keys: KeyRequirements,
    params: CkksChoice,
    counts: OpCounts,
    peak_live: usize,
    peak_live_streamed: usize,
    layer_kinds: Vec<String>,
    integer: Option<IntegerPlan>,
}

/// Magic bytes of a serialised plan.
const PLAN_MAGIC: &[u8; 8] = b"MOFHPLAN";
/// Format version of a serialised plan.
const PLAN_VERSION: u32 = 3;
/// Largest serialised plan accepted (1 GiB).
pub const PLAN_BYTES_LIMIT: usize = 1 << 30;

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
    /// For a plan compiled from a quantised network ([`compile_quantized`]):
    /// input quantisation, output scales and the accumulator bounds an
    /// integer scheme's plaintext modulus must hold; `None` for a real-valued
    /// plan.
    pub fn integer(&self) -> Option<&IntegerPlan> {
        self.integer.as_ref()
    }

    /// Op counts of one run for a backend with `slots` slots (only rotation
    /// steps that are multiples of the slot count differ).
    pub fn count_ops(&self, slots: usize) -> OpCounts {
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

    /// Serialise: magic, version, then the bincode payload.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = PLAN_MAGIC.to_vec();
        out.extend_from_slice(&PLAN_VERSION.to_le_bytes());
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|_| Error::Encode { what: "plan" })?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Read a serialised plan: checks the size limit, magic, version, that the
    /// payload decodes completely, and that the plan is internally consistent
    /// (every id in range, every value defined before use). Garbage gives
    /// [`Error::Decode`], never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Plan> {
        let err = |reason| Error::Decode {
            what: "plan",
            reason,
        };
        if bytes.len() > PLAN_BYTES_LIMIT {
            return Err(err(DecodeError::TooLarge {
                len: bytes.len() as u64,
                limit: PLAN_BYTES_LIMIT as u64,
            }));
        }
        if bytes.len() < 12 || &bytes[..8] != PLAN_MAGIC {
            return Err(err(DecodeError::BadMagic));
        }
        let mut v = [0u8; 4];
        v.copy_from_slice(&bytes[8..12]);
        let version = u32::from_le_bytes(v);
        if version != PLAN_VERSION {
            return Err(err(DecodeError::Version {
                found: version,
                supported: PLAN_VERSION,
            }));
        }
        let config = bincode::config::standard().with_limit::<PLAN_BYTES_LIMIT>();
        let (plan, used): (Plan, usize) =
            bincode::serde::decode_from_slice(&bytes[12..], config)
                .map_err(|_| err(DecodeError::Malformed { offset: 12 }))?;
        if used != bytes.len() - 12 {
            return Err(err(DecodeError::TrailingBytes {
                count: (bytes.len() - 12 - used) as u64,
            }));
        }
        plan.validate()?;
        Ok(plan)
    }

    /// Internal consistency: ids in range, values defined before use and not
    /// used after being freed, levels consistent with the instructions, waves
    /// covering every step.
    pub fn validate(&self) -> Result<()> {
        let bad = |what| Error::Decode {
            what: "plan",
            reason: DecodeError::NotConforming { what },
        };
        self.validate_fields()?;
        let n = self.levels.len();
        let n_in = self.input.cts.len();
        if n_in > n || self.levels.iter().take(n_in).any(|&l| l != self.depth) {
            return Err(bad("input values"));
        }
        if self.levels.iter().any(|&l| l > self.depth) {
            return Err(bad("value level above the depth"));
        }
        // 0 = undefined, 1 = live, 2 = freed.
        let mut state = vec![0u8; n];
        state.iter_mut().take(n_in).for_each(|s| *s = 1);
        let mut start = 0usize;
        let mut loaded = vec![false; n_in];
        for w in &self.waves {
            for &l in &w.loads {
                match loaded.get_mut(l as usize) {
                    Some(x) if !*x => *x = true,
                    _ => return Err(bad("wave loads")),
                }
            }
            let end = w.end as usize;
            if end < start || end > self.steps.len() {
                return Err(bad("wave bounds"));
            }
            let wave = &self.steps[start..end];
            for s in wave {
                let ins = s.instr.inputs();
                if ins.is_empty() {
                    return Err(bad("instruction without inputs"));
                }
                if ins.iter().any(|&v| state.get(v as usize) != Some(&1)) {
                    return Err(bad("value used before definition or after free"));
                }
                if ins
                    .iter()
                    .any(|&v| (v as usize) < n_in && !loaded[v as usize])
                {
                    return Err(bad("input read before its load"));
                }
                let lvl = self.levels[ins[0] as usize];
                if ins.iter().any(|&v| self.levels[v as usize] != lvl) {
                    return Err(bad("operands at different levels"));
                }
                if s.instr
                    .plains()
                    .iter()
                    .any(|&p| p as usize >= self.plains.len())
                {
                    return Err(bad("plaintext id"));
                }
                let used = s.instr.levels_used();
                if lvl < used {
                    return Err(bad("level exhausted"));
                }
                match &s.instr {
                    Instr::DotScalar {
                        inputs, weights, ..
                    } if inputs.len() != weights.len() => {
                        return Err(bad("dot terms"));
                    }
                    Instr::DotPlain { inputs, plains, .. } if inputs.len() != plains.len() => {
                        return Err(bad("dot terms"));
                    }
                    Instr::RotateMany { outs, steps, .. } if outs.len() != steps.len() => {
                        return Err(bad("rotation outputs"));
                    }
                    Instr::RotateSum { count, stride, .. }
                        if !count.is_power_of_two()
                            || stride.checked_mul(i64::from(*count)).is_none() =>
                    {
                        return Err(bad("rotate-sum count"));
                    }
                    _ => {}
                }
                for o in s.instr.outputs() {
                    let Some(st) = state.get(o as usize) else {
                        return Err(bad("value id"));
                    };
                    let want = match &s.instr {
                        Instr::DropLevel { .. } => self.levels[o as usize] <= lvl,
                        _ => self.levels[o as usize] == lvl - used,
                    };
                    if *st != 0 || !want {
                        return Err(bad("output redefined or at the wrong level"));
                    }
                }
            }
            for s in wave {
                for o in s.instr.outputs() {
                    state[o as usize] = 1;
                }
            }
            for &f in &w.frees {
                match state.get_mut(f as usize) {
                    Some(s) if *s == 1 => *s = 2,
                    _ => return Err(bad("free of a dead value")),
                }
            }
            start = end;
        }
        if start != self.steps.len() {
            return Err(bad("waves do not cover every step"));
        }
        // The stored op counts (cost reports) must be those of the steps.
        if self.counts != self.count_ops(self.params.slots()) {
            return Err(bad("op counts"));
        }
        if self
            .outputs
            .iter()
            .any(|&o| state.get(o as usize) != Some(&1))
        {
            return Err(bad("output value"));
        }
        for e in &self.output_map {
            if let OutputElem::Slot { ct, .. } = e
                && *ct as usize >= self.outputs.len()
            {
                return Err(bad("output map"));
            }
        }
        let out_len =
            crate::model::checked_product(&self.output_shape).ok_or(bad("output shape"))?;
        let in_len = crate::model::checked_product(&self.input_shape).ok_or(bad("input shape"))?;
        if self.output_map.len() != out_len {
            return Err(bad("output map length"));
        }
        if self
            .input
            .cts
            .iter()
            .flatten()
            .any(|&(_, e)| e as usize >= in_len)
        {
            return Err(bad("input layout element"));
        }
        if self
            .integer
            .as_ref()
            .is_some_and(|q| !q.is_consistent(out_len))
        {
            return Err(bad("integer plan"));
        }
        let period = self.period.unwrap_or(usize::MAX);
        if self.period == Some(0)
            || self
                .input
                .cts
                .iter()
                .flatten()
                .any(|&(s, _)| s as usize >= period)
            || self.plains.iter().any(|p| p.values.len() > period)
        {
            return Err(bad("slot beyond the period"));
        }
        Ok(())
    }

    /// The checks of [`Plan::validate`] on single fields (no cross
    /// references): a sample count of at least one, secure and consistent
    /// CKKS parameters, finite constants, and stored plaintexts with at
    /// least one non-zero value (the compiler never emits an all-zero
    /// plaintext: a zero diagonal, tile or bias emits nothing, and trailing
    /// zeros are trimmed, so an empty or zero plaintext is a tampered plan
    /// that would silently compute zeros).
    fn validate_fields(&self) -> Result<()> {
        let bad = |what| Error::Decode {
            what: "plan",
            reason: DecodeError::NotConforming { what },
        };
        if self.samples == Some(0) {
            return Err(bad("samples (at least one)"));
        }
        let p = &self.params;
        let log_qp = p
            .moduli_bits
            .iter()
            .chain(&p.special_bits)
            .try_fold(0u32, |acc, &b| acc.checked_add(b));
        let secure = match log_qp {
            Some(q) => crate::he::security::check_128_bit(p.log_n, q).is_ok(),
            None => false,
        };
        if !(1..=16).contains(&p.log_n)
            || !secure
            || p.special_bits.is_empty()
            || p.scale_bits == 0
            || u64::try_from(p.moduli_bits.len()).ok() != Some(u64::from(self.depth) + 1)
        {
            return Err(bad("parameters"));
        }
        let finite = |v: f64| v.is_finite();
        let instr_finite = |i: &Instr| match i {
            Instr::DotScalar { weights, bias, .. } => {
                weights.iter().all(|&w| finite(w)) && finite(*bias)
            }
            Instr::Sum { bias, .. } => finite(*bias),
            Instr::AddScalar { value, .. } => finite(*value),
            _ => true,
        };
        if !self.steps.iter().all(|s| instr_finite(&s.instr)) {
            return Err(bad("non-finite constant in an instruction"));
        }
        if !self.output_map.iter().all(|o| match *o {
            OutputElem::Const(v) => finite(v),
            OutputElem::Slot { alpha, beta, .. } => finite(alpha) && finite(beta),
        }) {
            return Err(bad("non-finite output map constant"));
        }
        for p in &self.plains {
            if !p.values.iter().all(|&v| finite(v)) {
                return Err(bad("non-finite plaintext value"));
            }
            if p.values.last().is_none_or(|&v| v == 0.0) {
                return Err(bad("plaintext without a non-zero value (or untrimmed)"));
            }
        }
        Ok(())
    }

    /// Rotation steps the plan uses (for reports).
    pub fn rotation_steps(&self) -> BTreeSet<i64> {
        self.keys.rotations().map(|r| r.0).collect()
    }
}

impl std::fmt::Display for Plan {
    /// A human-readable summary: packing, depth, parameters, keys, counts,
    /// live set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.params;
        writeln!(f, "plan: {:?} packing", self.packing)?;
        writeln!(
            f,
            "  input {:?} -> output {:?}, {} input ciphertexts, {} output ciphertexts",
            self.input_shape,
            self.output_shape,
            self.input.cts.len(),
            self.outputs.len()
        )?;
        writeln!(
            f,
            "  depth {}; CKKS N = 2^{}, moduli {:?} + special {:?} ({} bits), scale 2^{}",
            self.depth,
            p.log_n,
            p.moduli_bits,
            p.special_bits,
            p.log_qp(),
            p.scale_bits
        )?;
        if let Some(q) = &self.integer {
            let max = q.layer_bounds().iter().copied().max().unwrap_or(0);
            writeln!(
                f,
                "  integer plan: accumulators up to {} ({:.1} bits), plaintext modulus needed t > {}",
                max,
                (max.max(1) as f64).log2(),
                max.saturating_mul(2)
            )?;
        }
        writeln!(
            f,
            "  keys: relinearization {}, {} rotation steps",
            self.keys.relinearization(),
            self.keys.rotations().count()
        )?;
        writeln!(
            f,
            "  {} instructions in {} waves, {} stored plaintexts, peak {} live ciphertexts ({} streamed)",
            self.steps.len(),
            self.waves.len(),
            self.plains.len(),
            self.peak_live,
            self.peak_live_streamed
        )?;
        write!(f, "  ops:")?;
        for (k, n) in &self.counts.total {
            write!(
                f,
                " {}={}",
                serde_json::to_string(k)
                    .unwrap_or_default()
                    .trim_matches('"'),
                n
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

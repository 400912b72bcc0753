//! The instruction set: [`Instr`], the values and plaintexts it names,
//! [`Step`] (an instruction with its layer) and [`Wave`] (a group run in
//! parallel), and the op counts of each instruction.

use serde::{Deserialize, Serialize};

use crate::he::doubling::doubling_steps;
use crate::he::{Level, OpCounts, OpKind, Rotation};

/// Identifier of a ciphertext value in a plan.
pub type ValueId = u32;
/// Identifier of a plaintext constant in a plan.
pub type PlainId = u32;

/// One HE instruction. Every instruction allocates its outputs; inputs are
/// never mutated (each output is a new ciphertext; the evaluator drops a
/// value after the wave of its last use, [`Wave::frees`]).
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
                for step in doubling_steps(*stride, u64::from(*count)) {
                    k += 1;
                    r += u64::from(step.normalized(slots) != 0);
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

//! [`Builder`]: what a packing emits instructions through. It hands out
//! value and plaintext ids, tracks each value's level (as rescales
//! consumed since the input), aligns operands to a common level, registers
//! the evaluation keys the instructions need, and finally defers
//! relinearisation where a sum of squares allows it.

use crate::error::{Error, PlanError, Result};
use crate::he::doubling::doubling_steps;
use crate::he::{KeyRequirements, Rotation};
use crate::plan::{InputLayout, Instr, OutputElem, Plain, PlainId, PlainUse, Step, ValueId};

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
        for step in doubling_steps(stride, u64::from(count)) {
            self.keys.add_rotation(step);
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

    /// The lowered program: lazy relinearisation applied, inputs declared
    /// ([`Error::InvalidPlan`] with [`PlanError::MissingInputs`] if the
    /// packing declared none). The compiler schedules it into a plan.
    pub(crate) fn finish(mut self) -> Result<Lowered> {
        self.defer_relinearization();
        let input = self.input.take().ok_or(Error::InvalidPlan {
            reason: PlanError::MissingInputs,
        })?;
        Ok(Lowered {
            consumed: self.consumed,
            steps: self.steps,
            plains: self.plains,
            keys: self.keys,
            n_inputs: self.n_inputs,
            input,
            outputs: self.outputs,
            output_map: self.output_map,
            samples: self.samples,
            period: self.period,
        })
    }
}

/// What a packing emitted, ready for scheduling: the instructions in
/// emission order and everything a plan records besides.
#[derive(Debug)]
pub(crate) struct Lowered {
    /// Rescales consumed by each value since the input.
    pub consumed: Vec<u32>,
    /// The instructions, in emission order.
    pub steps: Vec<Step>,
    /// The plaintext constants.
    pub plains: Vec<Plain>,
    /// The evaluation keys needed.
    pub keys: KeyRequirements,
    /// Number of input ciphertexts (values `0..n_inputs`).
    pub n_inputs: u32,
    /// Where the client puts input elements.
    pub input: InputLayout,
    /// The ciphertexts returned.
    pub outputs: Vec<ValueId>,
    /// Where each output element is read.
    pub output_map: Vec<OutputElem>,
    /// Samples per inference (`None`: one per slot).
    pub samples: Option<usize>,
    /// The slot period of a replicated layout.
    pub period: Option<usize>,
}

//! Batch packing (MOFHEI): one ciphertext per activation scalar, one sample
//! per slot, so one inference serves N/2 samples; no rotations.
//!
//! A neuron's weighted sum is one `dot_scalar` (ct x scalar
//! multiply-accumulate: no plaintext is encoded) and one rescale; a zero
//! weight is simply not a term; a unit whose weights are all zero is a
//! constant the next layer absorbs (no ciphertext, no activation, no share
//! of the next layer). Pools are plain sums; activations one squaring.

use super::{BlockShape, Packing, counts_of};
use crate::error::Result;
use crate::he::{OpCounts, OpKind};
use crate::lower::{Builder, Elem, Folded, Stage};
use crate::model::{Layer, Network};
use crate::plan::{InputLayout, OutputElem, PackingKind, ValueId};

/// MOFHEI's batch packing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch;

impl Packing for Batch {
    fn name(&self) -> &'static str {
        "batch packing"
    }

    fn kind(&self) -> PackingKind {
        PackingKind::Batch
    }

    fn block_shape(&self, net: &Network, layer: usize) -> Option<BlockShape> {
        matches!(
            net.layers.get(layer),
            Some(Layer::Dense(_) | Layer::Conv2d(_))
        )
        .then_some(BlockShape::Weight)
    }

    /// One ct x scalar mult and one ct + ct add.
    fn zero_block_saves(&self) -> OpCounts {
        counts_of(&[(OpKind::CtScalarMul, 1), (OpKind::CtCtAdd, 1)])
    }

    fn lower(&self, folded: &Folded, b: &mut Builder) -> Result<()> {
        let layout = InputLayout {
            cts: (0..folded.input_dim as u32).map(|e| vec![(0, e)]).collect(),
        };
        let mut cur: Vec<Option<ValueId>> = b.inputs(layout).into_iter().map(Some).collect();
        b.set_samples(None);
        b.set_period(None);
        for stage in &folded.stages {
            b.set_layer(stage.layer());
            cur = match stage {
                Stage::Linear { rows, pure_sum, .. } => rows
                    .iter()
                    .map(|r| {
                        if r.terms.is_empty() {
                            return None;
                        }
                        let ins: Vec<ValueId> = r
                            .terms
                            .iter()
                            .filter_map(|&(j, _)| cur.get(j as usize).copied().flatten())
                            .collect();
                        if ins.is_empty() {
                            return None;
                        }
                        Some(if *pure_sum {
                            b.sum(&ins, r.bias)
                        } else {
                            let w = r.terms.iter().map(|t| t.1).collect();
                            b.dot_scalar(&ins, w, r.bias)
                        })
                    })
                    .collect(),
                Stage::Square { live, .. } => cur
                    .iter()
                    .zip(live)
                    .map(|(v, &l)| if l { v.map(|v| b.square(v)) } else { None })
                    .collect(),
                Stage::AddConst { values, live, .. } => cur
                    .iter()
                    .zip(values.iter().zip(live))
                    .map(|(v, (&c, &l))| match v {
                        Some(v) if l && c != 0.0 => Some(b.add_scalar(*v, c)),
                        other => *other,
                    })
                    .collect(),
            };
        }
        let mut cts: Vec<ValueId> = Vec::new();
        let map = folded
            .outputs
            .iter()
            .map(|e| match *e {
                Elem::Const(v) => OutputElem::Const(v),
                Elem::Var { src, alpha, beta } => match cur.get(src as usize).copied().flatten() {
                    None => OutputElem::Const(beta),
                    Some(v) => {
                        let ct = cts.iter().position(|&c| c == v).unwrap_or_else(|| {
                            cts.push(v);
                            cts.len() - 1
                        });
                        OutputElem::Slot {
                            ct: ct as u32,
                            slot: 0,
                            alpha,
                            beta,
                        }
                    }
                },
            })
            .collect();
        b.set_outputs(cts, map);
        Ok(())
    }
}

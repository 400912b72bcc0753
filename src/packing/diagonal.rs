//! Diagonal packing (Halevi-Shoup with baby-step giant-step and hoisted
//! rotations).
//!
//! The whole activation vector of one sample sits in one ciphertext,
//! replicated with period `d` (a power of two at least as large as every
//! layer). A layer `W` padded to `d x d` is the sum over its generalised
//! diagonals `diag_k[i] = W[i, (i + k) mod d]` of `diag_k * rot_k(v)`. With
//! `k = g * j + b` (`g` baby steps), `y = sum_j rot_{gj}(sum_b
//! rot_{-gj}(diag_k) * rot_b(v))`: the baby rotations of `v` are computed
//! once, hoisted (`rotate_many`), and each giant group needs one rotation.
//!
//! A zero diagonal emits nothing: no ct x pt mult, no add, no stored
//! plaintext, and its baby rotation (or its giant rotation) when no other
//! non-zero diagonal needs it.

use std::collections::{BTreeMap, BTreeSet};

use super::{BlockShape, Packing, masked_product_saves};
use crate::error::Result;
use crate::he::OpCounts;
use crate::lower::{Builder, Elem, Folded, Stage};
use crate::model::{Layer, Network};
use crate::plan::{InputLayout, OutputElem, PackingKind, PlainUse, ValueId};

/// The diagonal (Halevi-Shoup, BSGS) packing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Diagonal;

impl Diagonal {
    /// The padded size `d` for a folded network.
    fn size(folded: &Folded) -> usize {
        folded
            .stages
            .iter()
            .map(Stage::out_dim)
            .chain([folded.input_dim, 1])
            .max()
            .unwrap_or(1)
            .next_power_of_two()
    }

    /// Baby steps for size `d`: `2^ceil(log2(d) / 2)`.
    fn baby(d: usize) -> usize {
        1usize << d.trailing_zeros().div_ceil(2)
    }
}

impl Packing for Diagonal {
    fn name(&self) -> &'static str {
        "diagonal packing"
    }

    fn kind(&self) -> PackingKind {
        PackingKind::Diagonal
    }

    fn block_shape(&self, net: &Network, layer: usize) -> Option<BlockShape> {
        if !matches!(net.layers.get(layer), Some(Layer::Dense(_))) {
            return None;
        }
        let folded = Folded::new(net).ok()?.compose_linear();
        Some(BlockShape::Diagonal {
            size: Diagonal::size(&folded),
        })
    }

    /// One ct x pt mult, one ct + ct add and one stored plaintext (counted as
    /// one [`OpKind::Encode`](crate::he::OpKind::Encode)); one rotation more when it was the only
    /// non-zero diagonal of its baby step or giant group.
    fn zero_block_saves(&self) -> OpCounts {
        masked_product_saves()
    }

    fn lower(&self, folded: &Folded, b: &mut Builder) -> Result<()> {
        let folded = folded.compose_linear();
        let d = Diagonal::size(&folded);
        let g = Diagonal::baby(d);
        let layout = InputLayout {
            cts: vec![(0..folded.input_dim as u32).map(|e| (e, e)).collect()],
        };
        b.set_samples(Some(1));
        b.set_period(Some(d));
        let mut cur: Option<ValueId> = b.inputs(layout).first().copied();
        for stage in &folded.stages {
            b.set_layer(stage.layer());
            let Some(v) = cur else { break };
            cur = match stage {
                Stage::Linear { rows, .. } => {
                    let mut diags: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
                    for (i, r) in rows.iter().enumerate() {
                        for &(j, c) in &r.terms {
                            let k = (j as usize + d - i) % d;
                            diags.entry(k).or_insert_with(|| vec![0.0; d])[i] = c;
                        }
                    }
                    if diags.is_empty() {
                        None
                    } else {
                        let babies: BTreeSet<usize> =
                            diags.keys().map(|k| k % g).filter(|&x| x != 0).collect();
                        let steps: Vec<i64> = babies.iter().map(|&x| x as i64).collect();
                        let rotated = b.rotate_many(v, &steps);
                        let rot_of = |x: usize| -> ValueId {
                            if x == 0 {
                                v
                            } else {
                                babies
                                    .iter()
                                    .position(|&y| y == x)
                                    .and_then(|p| rotated.get(p).copied())
                                    .unwrap_or(v)
                            }
                        };
                        let mut giants: BTreeMap<usize, Vec<(usize, Vec<f64>)>> = BTreeMap::new();
                        for (k, diag) in diags {
                            giants.entry(k / g).or_default().push((k % g, diag));
                        }
                        let mut parts = Vec::with_capacity(giants.len());
                        for (j, terms) in giants {
                            let shift = j * g;
                            let mut ins = Vec::with_capacity(terms.len());
                            let mut pts = Vec::with_capacity(terms.len());
                            for (bb, diag) in terms {
                                let pt: Vec<f64> =
                                    (0..d).map(|s| diag[(s + d - shift % d) % d]).collect();
                                ins.push(rot_of(bb));
                                pts.push(b.plain(pt, PlainUse::Mul));
                            }
                            let acc = b.dot_plain(&ins, pts);
                            parts.push(if shift == 0 {
                                acc
                            } else {
                                b.rotate_many(acc, &[shift as i64])[0]
                            });
                        }
                        let acc = b.sum(&parts, 0.0);
                        let bias: Vec<f64> = rows.iter().map(|r| r.bias).collect();
                        Some(if bias.iter().any(|&x| x != 0.0) {
                            let p = b.plain(bias, PlainUse::Add);
                            b.add_plain(acc, p)
                        } else {
                            acc
                        })
                    }
                }
                Stage::Square { .. } => Some(b.square(v)),
                Stage::AddConst { values, .. } => {
                    if values.iter().any(|&x| x != 0.0) {
                        let p = b.plain(values.clone(), PlainUse::Add);
                        Some(b.add_plain(v, p))
                    } else {
                        Some(v)
                    }
                }
            };
        }
        let mut cts: Vec<ValueId> = Vec::new();
        if let Some(v) = cur {
            cts.push(v);
        }
        let map = folded
            .outputs
            .iter()
            .map(|e| match (*e, cur) {
                (Elem::Const(c), _) => OutputElem::Const(c),
                (Elem::Var { beta, .. }, None) => OutputElem::Const(beta),
                (Elem::Var { src, alpha, beta }, Some(_)) => OutputElem::Slot {
                    ct: 0,
                    slot: src,
                    alpha,
                    beta,
                },
            })
            .collect();
        b.set_outputs(cts, map);
        Ok(())
    }
}

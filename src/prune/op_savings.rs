//! Cost-aware scoring (beyond MOFHEI and HE-PEx): what zeroing a block saves
//! under HE, so blocks can be ranked by importance per unit of cost saved.
//!
//! Both papers rank blocks by magnitude alone. Under HE, blocks of equal
//! magnitude do not save equal work: a convolution weight is applied at every
//! output position, a culled unit also removes its activation and its share
//! of the next layer, and the last non-zero tile of a tile row also frees the
//! row's rotate-and-sum (`log2(cols)` rotations). [`savings`] prices every
//! block with a local model of the packing (documented per shape below and in
//! `docs/pruning.md`) and per-op prices ([`OpPrices`]); cost-aware selection
//! then prunes the blocks with the lowest `score / saving` first.

use serde::{Deserialize, Serialize};

use super::blocks::{BlockGrid, BlockShape, matrix_dims};
use crate::error::Result;
use crate::model::{Layer, Network};

/// Relative price of one HE operation (any unit; only ratios matter).
///
/// The defaults follow the compiler's per-op cost model at a few limbs:
/// a ct x scalar/plaintext mult = 1, an add = 0.8, a stored plaintext (its
/// encoding) = 10, a ct x ct mult with relinearisation and rescale = 20, a
/// rotation (key switch) = 25.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OpPrices {
    /// A ct x scalar or ct x plaintext multiplication.
    pub mult: f64,
    /// A ct + ct addition.
    pub add: f64,
    /// A ct x ct multiplication (activation), relinearised and rescaled.
    pub ct_mult: f64,
    /// A rotation.
    pub rotation: f64,
    /// A stored (encoded) plaintext.
    pub plaintext: f64,
}

impl Default for OpPrices {
    fn default() -> Self {
        OpPrices {
            mult: 1.0,
            add: 0.8,
            ct_mult: 20.0,
            rotation: 25.0,
            plaintext: 10.0,
        }
    }
}

/// What zeroing each block of one layer saves.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSavings {
    /// Saving of each block on its own.
    pub base: Vec<f64>,
    /// Blocks that share a group whose last block, once zeroed, saves
    /// `group_bonus` more (the tile rows of a tile grid), as
    /// `group_of[block]`; empty when the shape has no such groups.
    pub group_of: Vec<usize>,
    /// Extra saving when every block of a group is zero.
    pub group_bonus: f64,
}

/// Number of output positions a weight of layer `i` is applied at (1 for
/// dense layers, `H_out * W_out` for convolutions).
pub fn positions(net: &Network, shapes: &[Vec<usize>], i: usize) -> usize {
    match net.layers.get(i) {
        Some(Layer::Conv2d(_)) => shapes
            .get(i)
            .map(|s| s.iter().skip(1).product())
            .unwrap_or(1),
        _ => 1,
    }
}

/// Per-unit costs that disappear with a culled unit of layer `i`: its
/// activations (ct x ct mults for every polynomial activation element up to
/// the next weighted layer) and its share of the next weighted layer (every
/// weight that reads it, at every position).
fn unit_downstream(net: &Network, shapes: &[Vec<usize>], i: usize, prices: &OpPrices) -> f64 {
    let mut cost = 0.0;
    let mut per_unit_features = 1usize;
    for j in i + 1..net.layers.len() {
        match &net.layers[j] {
            Layer::Activation(a) if a.is_polynomial() => {
                let elems: usize = shapes
                    .get(j)
                    .map(|s| s.iter().skip(1).product())
                    .unwrap_or(1);
                cost += elems as f64 * prices.ct_mult;
            }
            Layer::Flatten => {
                per_unit_features = shapes
                    .get(j.saturating_sub(1))
                    .map(|s| s.iter().skip(1).product())
                    .unwrap_or(1);
            }
            Layer::Dense(_) => {
                let out = matrix_dims(&net.layers[j]).map(|d| d.0).unwrap_or(0);
                cost += (out * per_unit_features) as f64 * (prices.mult + prices.add);
                break;
            }
            Layer::Conv2d(c) => {
                let ws = c.weight.shape();
                let taps = ws.get(2).copied().unwrap_or(1) * ws.get(3).copied().unwrap_or(1);
                let out = ws.first().copied().unwrap_or(0);
                cost +=
                    (out * taps * positions(net, shapes, j)) as f64 * (prices.mult + prices.add);
                break;
            }
            _ => {}
        }
    }
    cost
}

/// The local cost model: what zeroing each block of layer `i` saves.
///
/// - [`BlockShape::Weight`] (batch): `positions x (mult + add)`.
/// - [`BlockShape::Column`] (batch, culled unit): its weights at every
///   position, plus its activations and its share of the next weighted layer.
/// - [`BlockShape::Tile`] (tile tensors): one ct x pt mult, one add and one
///   stored plaintext per tile; the last tile of a tile row also frees the
///   row's `log2(cols)` rotations (the group bonus).
/// - [`BlockShape::Diagonal`]: one rotation, one mult, one add, one plaintext.
pub fn savings(
    net: &Network,
    i: usize,
    grid: &BlockGrid,
    prices: &OpPrices,
) -> Result<BlockSavings> {
    let shapes = net.shapes()?;
    let pos = positions(net, &shapes, i) as f64;
    let sizes = grid.sizes();
    let n = grid.count();
    let mut group_of = Vec::new();
    let mut group_bonus = 0.0;
    let base = match grid.shape() {
        BlockShape::Weight => vec![pos * (prices.mult + prices.add); n],
        BlockShape::Column => {
            let down = unit_downstream(net, &shapes, i, prices);
            sizes
                .iter()
                .map(|&s| s as f64 * pos * (prices.mult + prices.add) + down)
                .collect()
        }
        BlockShape::Tile { cols, .. } => {
            let (_, per_row) = grid.dims();
            group_of = (0..n).map(|b| b / per_row.max(1)).collect();
            group_bonus = f64::from(usize::BITS - cols.saturating_sub(1).leading_zeros())
                * prices.rotation
                * pos;
            vec![pos * (prices.mult + prices.add + prices.plaintext); n]
        }
        BlockShape::Diagonal { .. } => {
            vec![pos * (prices.rotation + prices.mult + prices.add + prices.plaintext); n]
        }
    };
    Ok(BlockSavings {
        base,
        group_of,
        group_bonus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dense, Tensor};

    fn dense(out: usize, inp: usize) -> Layer {
        Layer::Dense(Dense {
            weight: Tensor::zeros(vec![out, inp]),
            bias: vec![0.0; out],
        })
    }

    #[test]
    fn tile_rows_carry_rotation_bonus() {
        let net = Network::new(vec![16], vec![dense(8, 16)]).unwrap();
        let g = BlockShape::Tile { rows: 4, cols: 8 }.grid(8, 16);
        let s = savings(&net, 0, &g, &OpPrices::default()).unwrap();
        assert_eq!(s.base.len(), 4);
        assert_eq!(s.group_of, vec![0, 0, 1, 1]);
        assert!((s.group_bonus - 3.0 * 25.0).abs() < 1e-12);
    }

    #[test]
    fn culled_unit_saves_its_share_of_the_next_layer() {
        let net = Network::new(
            vec![4],
            vec![
                dense(3, 4),
                Layer::Activation(crate::model::Activation::Square),
                dense(5, 3),
            ],
        )
        .unwrap();
        let p = OpPrices::default();
        let g = BlockShape::Column.grid(3, 4);
        let s = savings(&net, 0, &g, &p).unwrap();
        // 4 weights + 1 activation + 5 outgoing weights.
        let expected = 4.0 * (p.mult + p.add) + p.ct_mult + 5.0 * (p.mult + p.add);
        assert!((s.base[0] - expected).abs() < 1e-9, "{:?}", s.base);
    }
}

//! Packings: how a network's tensors map to ciphertext slots, what a pruning
//! block is under each layout, and what a zero block saves.
//!
//! Three layouts sit behind the one [`Packing`] trait (design notes in
//! `docs/packing.md`):
//!
//! | packing | layout | [`BlockShape`] | a zero block removes |
//! |---|---|---|---|
//! | [`Batch`] (MOFHEI) | one ciphertext per activation, one sample per slot | one weight ([`BlockShape::Weight`]); a neuron/filter when culled ([`BlockShape::Column`]) | a ct x scalar mult + a ct + ct add |
//! | [`Tile`] (HElayers, HE-PEx) | tile tensors of `t1 x t2 (x batch)` slots | a `t1 x t2` weight tile ([`BlockShape::Tile`]) | a ct x pt mult, a ct + ct add, a stored plaintext; an all-zero tile row also its rotations |
//! | [`Tile::with_interleaved_conv`] | images as interleaved tiles, then the chain | a convolution kernel `(o, c)` (`BlockShape::Tile { rows: 1, cols: kh kw }`) | `kh kw` ct x scalar mults and adds per output tile of its filter ([`Tile::kernel_saves`]); rotations no other kernel reads |
//! | [`Diagonal`] (Halevi-Shoup, BSGS) | generalised diagonals against a rotated vector | one diagonal ([`BlockShape::Diagonal`]) | a ct x pt mult, a ct + ct add, a stored plaintext; its baby/giant rotation when no other diagonal uses it |
//!
//! A packing lowers the folded network into plan instructions through the
//! interface of [`crate::lower`] (implement [`Packing`] to add one); zero
//! blocks never produce an instruction.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::he::{OpCounts, OpKind};
use crate::lower::{Builder, Folded};
use crate::model::{Layer, Network};
use crate::plan::PackingKind;

mod batch;
mod diagonal;
pub mod tile;

pub use batch::Batch;
pub use diagonal::Diagonal;
pub use tile::Tile;

/// The unit in which a packing prunes: zeroing every weight of one block
/// removes that block's HE work.
///
/// Blocks are stated on a layer's weight viewed as a matrix `W [out, in]`:
/// dense weights as they are, convolutions as the im2col matrix
/// `[out_channels, in_channels * kh * kw]` (MOFHEI's view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlockShape {
    /// One weight (batch packing): saves one ct x scalar mult and one add.
    Weight,
    /// One output column of the im2col matrix: a whole neuron or filter
    /// (batch packing, culling); removes its ciphertexts, its activation and
    /// its share of the next layer.
    Column,
    /// A `rows x cols` tile of `W [out, in]` (tile packing). `rows` counts
    /// outputs, `cols` inputs; which tile dimension holds which depends on the
    /// layer's orientation in the alternating chain. For a convolution on
    /// interleaved tiles ([`Tile::with_interleaved_conv`]) it is
    /// `1 x (kh kw)` of the im2col view: one kernel `(o, c)`.
    Tile {
        /// Outputs per tile.
        rows: usize,
        /// Inputs per tile.
        cols: usize,
    },
    /// One generalised diagonal `{(i, (i + k) mod size)}` of `W` padded to
    /// `size x size` (diagonal packing).
    Diagonal {
        /// The padded matrix size (a power of two).
        size: usize,
    },
}

impl BlockShape {
    /// The blocks of an `out x inp` matrix under this shape, each as the list
    /// of `(row, col)` weight positions it covers (positions outside the
    /// matrix are left out; empty blocks are not listed).
    pub fn blocks(&self, out: usize, inp: usize) -> Vec<Vec<(usize, usize)>> {
        match *self {
            BlockShape::Weight => (0..out)
                .flat_map(|r| (0..inp).map(move |c| vec![(r, c)]))
                .collect(),
            BlockShape::Column => (0..out)
                .map(|r| (0..inp).map(|c| (r, c)).collect())
                .collect(),
            BlockShape::Tile { rows, cols } => {
                let (rows, cols) = (rows.max(1), cols.max(1));
                let mut v = Vec::new();
                for r0 in (0..out).step_by(rows) {
                    for c0 in (0..inp).step_by(cols) {
                        v.push(
                            (r0..(r0 + rows).min(out))
                                .flat_map(|r| (c0..(c0 + cols).min(inp)).map(move |c| (r, c)))
                                .collect(),
                        );
                    }
                }
                v
            }
            BlockShape::Diagonal { size } => {
                let size = size.max(out).max(inp).max(1);
                (0..size)
                    .map(|k| {
                        (0..out)
                            .map(|r| (r, (r + k) % size))
                            .filter(|&(_, c)| c < inp)
                            .collect::<Vec<_>>()
                    })
                    .filter(|b| !b.is_empty())
                    .collect()
            }
        }
    }
}

/// A way of mapping tensors to slots. Implemented by [`Batch`], [`Tile`] and
/// [`Diagonal`].
pub trait Packing: Send + Sync {
    /// The packing's name (reports, errors).
    fn name(&self) -> &'static str;

    /// What the plan records about this packing.
    fn kind(&self) -> PackingKind;

    /// The pruning block for layer `layer` of `net` (a dense or convolution
    /// layer), or `None` if the packing does not prune that layer in blocks.
    fn block_shape(&self, net: &Network, layer: usize) -> Option<BlockShape>;

    /// What one zero block saves when its row (output unit, tile row, giant
    /// step) keeps other non-zero blocks: op counts by kind (level 0 used as
    /// the bucket). Plaintexts that are no longer stored are counted as
    /// [`OpKind::Encode`] (the server encodes each stored plaintext once).
    fn zero_block_saves(&self) -> OpCounts;

    /// Lower the folded network into plan instructions.
    fn lower(&self, folded: &Folded, builder: &mut Builder) -> Result<()>;

    /// The layer kinds this packing accepts after folding; the compiler
    /// refuses others with [`crate::Error::UnsupportedLayer`].
    fn supports(&self, layer: &Layer) -> bool {
        matches!(
            layer,
            Layer::Dense(_)
                | Layer::Conv2d(_)
                | Layer::AvgPool2d(_)
                | Layer::BatchNorm(_)
                | Layer::Flatten
                | Layer::Dropout { .. }
        ) || matches!(layer, Layer::Activation(a) if a.is_polynomial())
    }
}

/// Op counts from `(kind, n)` pairs (level 0 bucket).
pub(crate) fn counts_of(items: &[(OpKind, u64)]) -> OpCounts {
    let mut c = OpCounts::default();
    for &(k, n) in items {
        c.record(k, crate::he::Level(0), n);
    }
    c
}

/// What a zero block saves in a packing that multiplies each block by a
/// stored plaintext: one ct x pt multiply, one ct + ct add and the stored
/// plaintext (counted as one [`OpKind::Encode`]).
pub(crate) fn masked_product_saves() -> OpCounts {
    counts_of(&[
        (OpKind::CtPtMul, 1),
        (OpKind::CtCtAdd, 1),
        (OpKind::Encode, 1),
    ])
}

/// Index of the linear stage (dense/conv group between activations) that
/// layer `layer` belongs to, counting from 0; `None` if it is not a linear
/// layer. Pools merge into the group of the linear layer that follows or
/// precedes them without an activation between.
pub(crate) fn linear_group(net: &Network, layer: usize) -> Option<usize> {
    if !matches!(
        net.layers.get(layer),
        Some(Layer::Dense(_) | Layer::Conv2d(_))
    ) {
        return None;
    }
    let mut group = 0usize;
    let mut in_linear = false;
    for (i, l) in net.layers.iter().enumerate() {
        match l {
            Layer::Dense(_) | Layer::Conv2d(_) | Layer::AvgPool2d(_) => in_linear = true,
            Layer::Activation(_) => {
                if in_linear {
                    group += 1;
                }
                in_linear = false;
            }
            _ => {}
        }
        if i == layer {
            return Some(group);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_matrix_once() {
        for shape in [
            BlockShape::Weight,
            BlockShape::Column,
            BlockShape::Tile { rows: 2, cols: 3 },
            BlockShape::Diagonal { size: 8 },
        ] {
            let blocks = shape.blocks(5, 7);
            let mut seen = [0u32; 35];
            for b in &blocks {
                for &(r, c) in b {
                    seen[r * 7 + c] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{shape:?}");
        }
        assert_eq!(BlockShape::Tile { rows: 2, cols: 3 }.blocks(5, 7).len(), 9);
        assert_eq!(BlockShape::Diagonal { size: 8 }.blocks(5, 7).len(), 8);
    }
}

//! Block views of a layer's weights.
//!
//! Every prunable layer (dense or convolution) is seen as a matrix
//! `W [out, in]`: dense weights as they are, a convolution as its im2col
//! matrix `[out_channels, in_channels * kh * kw]` (MOFHEI's view, transposed:
//! MOFHEI writes it `(k*k*C_in) x C_out`, so its "column" is our row). The
//! OIHW layout is already that matrix row-major, so the view is free.
//!
//! A [`BlockShape`] cuts that matrix into blocks; a [`BlockGrid`] numbers
//! them and maps weights to blocks without listing positions.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Layer, Network};

pub(crate) use crate::packing::BlockShape;

/// Block grids (defined here, on the packing's block shape).
impl BlockShape {
    /// The grid of blocks this shape cuts an `out x inp` matrix into.
    pub fn grid(&self, out: usize, inp: usize) -> BlockGrid {
        let shape = match *self {
            BlockShape::Tile { rows, cols } => BlockShape::Tile {
                rows: rows.max(1),
                cols: cols.max(1),
            },
            BlockShape::Diagonal { size } => BlockShape::Diagonal {
                size: size.max(out).max(inp).max(1),
            },
            s => s,
        };
        BlockGrid { shape, out, inp }
    }
}

/// The blocks of one `out x inp` matrix under a [`BlockShape`], numbered
/// `0..count()`.
///
/// Tiles are numbered row-major over the tile grid (`tile_row *
/// tiles_per_row + tile_col`); diagonals by their offset `k = (c - r) mod
/// size`; columns by their row; weights by `r * inp + c`. Edge tiles may be
/// partial and some diagonals of a padded matrix may be empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockGrid {
    shape: BlockShape,
    out: usize,
    inp: usize,
}

impl BlockGrid {
    /// The (normalised) shape.
    pub fn shape(&self) -> BlockShape {
        self.shape
    }

    /// Rows (outputs) of the matrix.
    pub fn out(&self) -> usize {
        self.out
    }

    /// Columns (inputs) of the matrix.
    pub fn inp(&self) -> usize {
        self.inp
    }

    /// Tile grid dimensions `(tile rows, tile cols)`; for other shapes the
    /// blocks laid out as `(count, 1)`.
    pub fn dims(&self) -> (usize, usize) {
        match self.shape {
            BlockShape::Tile { rows, cols } => (self.out.div_ceil(rows), self.inp.div_ceil(cols)),
            _ => (self.count(), 1),
        }
    }

    /// Number of blocks.
    pub fn count(&self) -> usize {
        match self.shape {
            BlockShape::Weight => self.out * self.inp,
            BlockShape::Column => self.out,
            BlockShape::Tile { rows, cols } => self.out.div_ceil(rows) * self.inp.div_ceil(cols),
            BlockShape::Diagonal { size } => size,
        }
    }

    /// The block holding weight `(r, c)`.
    pub fn block_of(&self, r: usize, c: usize) -> usize {
        match self.shape {
            BlockShape::Weight => r * self.inp + c,
            BlockShape::Column => r,
            BlockShape::Tile { rows, cols } => (r / rows) * self.inp.div_ceil(cols) + c / cols,
            BlockShape::Diagonal { size } => (c + size - r % size) % size,
        }
    }

    /// The block of every weight, in row-major order of `W`.
    pub fn assignment(&self) -> Vec<usize> {
        let mut v = Vec::with_capacity(self.out * self.inp);
        for r in 0..self.out {
            for c in 0..self.inp {
                v.push(self.block_of(r, c));
            }
        }
        v
    }

    /// Number of weights in each block.
    pub fn sizes(&self) -> Vec<usize> {
        let mut n = vec![0usize; self.count()];
        for b in self.assignment() {
            n[b] += 1;
        }
        n
    }

    /// The `(row, col)` positions of block `b` (empty if out of range).
    pub fn positions(&self, b: usize) -> Vec<(usize, usize)> {
        if b >= self.count() {
            return Vec::new();
        }
        match self.shape {
            BlockShape::Weight => vec![(b / self.inp, b % self.inp)],
            BlockShape::Column => (0..self.inp).map(|c| (b, c)).collect(),
            BlockShape::Tile { rows, cols } => {
                let per_row = self.inp.div_ceil(cols);
                let (r0, c0) = ((b / per_row) * rows, (b % per_row) * cols);
                (r0..(r0 + rows).min(self.out))
                    .flat_map(|r| (c0..(c0 + cols).min(self.inp)).map(move |c| (r, c)))
                    .collect()
            }
            BlockShape::Diagonal { size } => (0..self.out)
                .map(|r| (r, (r + b) % size))
                .filter(|&(_, c)| c < self.inp)
                .collect(),
        }
    }
}

/// The `[out, in]` matrix dimensions of a dense or convolution layer (im2col
/// view for convolutions), `None` for other layers.
pub fn matrix_dims(layer: &Layer) -> Option<(usize, usize)> {
    let w = match layer {
        Layer::Dense(d) => &d.weight,
        Layer::Conv2d(c) => &c.weight,
        _ => return None,
    };
    let out = w.shape().first().copied().unwrap_or(0);
    let inp = w.len().checked_div(out).unwrap_or(0);
    Some((out, inp))
}

/// The weights of a dense or convolution layer as a row-major `[out, in]`
/// matrix (im2col view), `None` for other layers.
pub fn matrix(layer: &Layer) -> Option<&[f32]> {
    match layer {
        Layer::Dense(d) => Some(d.weight.data()),
        Layer::Conv2d(c) => Some(c.weight.data()),
        _ => None,
    }
}

/// Mutable [`matrix`].
pub fn matrix_mut(layer: &mut Layer) -> Option<&mut [f32]> {
    match layer {
        Layer::Dense(d) => Some(d.weight.data_mut()),
        Layer::Conv2d(c) => Some(c.weight.data_mut()),
        _ => None,
    }
}

/// Indices of the dense and convolution layers of `net`, first to last.
pub fn weighted_layers(net: &Network) -> Vec<usize> {
    net.layers
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l, Layer::Dense(_) | Layer::Conv2d(_)))
        .map(|(i, _)| i)
        .collect()
}

/// Which block shape each layer of a network is pruned in (`None`: not
/// pruned, e.g. an activation or an exempt layer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlocks {
    shapes: Vec<Option<BlockShape>>,
}

impl LayerBlocks {
    /// The same shape for every dense and convolution layer of `net`.
    pub fn uniform(net: &Network, shape: BlockShape) -> LayerBlocks {
        LayerBlocks {
            shapes: net
                .layers
                .iter()
                .map(|l| matrix_dims(l).map(|_| shape))
                .collect(),
        }
    }

    /// The packing's block shape for each dense/convolution layer of `net`
    /// (`None` where the packing does not prune a layer in blocks).
    pub fn from_packing(net: &Network, packing: &dyn crate::packing::Packing) -> LayerBlocks {
        LayerBlocks {
            shapes: (0..net.layers.len())
                .map(|i| matrix_dims(&net.layers[i]).and_then(|_| packing.block_shape(net, i)))
                .collect(),
        }
    }

    /// One entry per layer of `net`; errors if the length differs or a
    /// shape is given for a layer without weights.
    pub fn per_layer(net: &Network, shapes: Vec<Option<BlockShape>>) -> Result<LayerBlocks> {
        if shapes.len() != net.layers.len() {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: vec![net.layers.len()],
                found: vec![shapes.len()],
            });
        }
        for (i, (s, l)) in shapes.iter().zip(&net.layers).enumerate() {
            if s.is_some() && matrix_dims(l).is_none() {
                return Err(Error::UnsupportedLayer {
                    layer: i,
                    kind: l.kind(),
                    by: "block pruning",
                });
            }
        }
        Ok(LayerBlocks { shapes })
    }

    /// The shape of layer `i`, if it is pruned.
    pub fn get(&self, i: usize) -> Option<BlockShape> {
        self.shapes.get(i).copied().flatten()
    }

    /// Stop pruning layer `i`.
    pub fn exempt_assign(&mut self, i: usize) {
        if let Some(s) = self.shapes.get_mut(i) {
            *s = None;
        }
    }

    /// The grid of layer `i` of `net`, if it is pruned.
    pub fn grid(&self, net: &Network, i: usize) -> Option<BlockGrid> {
        let shape = self.get(i)?;
        let (out, inp) = matrix_dims(net.layers.get(i)?)?;
        Some(shape.grid(out, inp))
    }

    /// Number of layers described.
    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    /// Whether no layer is described.
    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_weight_in_exactly_one_listed_block() {
        for shape in [
            BlockShape::Weight,
            BlockShape::Column,
            BlockShape::Tile { rows: 2, cols: 3 },
            BlockShape::Diagonal { size: 8 },
            BlockShape::Diagonal { size: 2 },
        ] {
            let g = shape.grid(5, 7);
            let mut seen = [0u32; 35];
            for b in 0..g.count() {
                for (r, c) in g.positions(b) {
                    assert_eq!(g.block_of(r, c), b, "{shape:?}");
                    seen[r * 7 + c] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{shape:?}");
            assert_eq!(g.sizes().iter().sum::<usize>(), 35);
        }
        assert_eq!(BlockShape::Tile { rows: 2, cols: 3 }.grid(5, 7).count(), 9);
        assert_eq!(
            BlockShape::Tile { rows: 2, cols: 3 }.grid(5, 7).dims(),
            (3, 3)
        );
        assert_eq!(BlockShape::Diagonal { size: 2 }.grid(5, 7).count(), 7);
        assert_eq!(BlockShape::Column.grid(5, 7).positions(1)[6], (1, 6));
    }

    #[test]
    fn conv_im2col_view() {
        let l = crate::model::Layer::Conv2d(crate::model::Conv2d {
            weight: crate::model::Tensor::zeros(vec![4, 3, 5, 5]),
            bias: vec![0.0; 4],
            stride: (1, 1),
            padding: (0, 0),
        });
        assert_eq!(matrix_dims(&l), Some((4, 75)));
        assert_eq!(matrix_dims(&crate::model::Layer::Flatten), None);
    }
}

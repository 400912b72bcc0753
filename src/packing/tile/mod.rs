//! Tile-tensor packing (HElayers, as used by HE-PEx).
//!
//! Vectors live in `t1 x t2 (x batch)` tiles, along one tile dimension and
//! duplicated along the other ([`shape`] has the notation). A dense layer
//! multiplies each input tile by a weight tile element-wise (ct x pt), adds
//! the products of one tile row, and sums inside the tile over the input
//! dimension (rotate-and-sum). Orientations alternate, so no layer needs a
//! transpose:
//!
//! - input `[n/t1, */t2]` times weight tiles of `W^T`, summed over dim 0
//!   (cyclic: the result comes out duplicated) gives `[*/t1, m/t2]`;
//! - input `[*/t1, n/t2]` times weight tiles of `W`, summed over dim 1, gives
//!   `[m/t1, 1?/t2]` (column 0 valid); before the next layer the unknowns
//!   are cleared by a mask (one level) and the column duplicated
//!   (rotate-and-sum towards higher slots): back to `[m/t1, */t2]`.
//!
//! A zero weight tile emits no ct x pt mult, no add and no stored plaintext;
//! a tile row with no non-zero tile also drops its rotate-and-sum and bias.
//! Convolutions and pools are lowered as their (sparse) matrices, composed
//! with the neighbouring linear layers, so every zero tile of the composed
//! matrix is skipped the same way; or, with
//! [`Tile::with_interleaved_conv`], on interleaved image tiles
//! ([`interleaved`]: ct x scalar convolutions with hoisted rotations,
//! rotation-free pools, then a transition into the chain). The optional batch dimension puts
//! `batch` samples in every tile position (innermost), so one inference
//! serves `batch` samples.

use std::collections::BTreeMap;

use super::{BlockShape, Packing, counts_of, linear_group, masked_product_saves};
use crate::error::Result;
use crate::he::OpCounts;
use crate::lower::{Builder, Elem, Folded, Row, Stage};
use crate::model::Network;
use crate::plan::{InputLayout, OutputElem, PackingKind, PlainId, PlainUse, TileShape, ValueId};

pub mod interleaved;
pub mod shape;

pub use interleaved::Transition;
pub use shape::{DimKind, TileDim, TileTensorShape};

/// The tile-tensor packing with a given tile shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    shape: TileShape,
    input: TileInput,
    transition: Transition,
}

/// How the tile packing lays out the network's input: one mode at a time,
/// so client patches and interleaved convolutions cannot be combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TileInput {
    /// The flattened input vector in tiles (the default).
    #[default]
    Vector,
    /// The client expands the first linear layer's inputs (im2col for a
    /// convolution), see [`Tile::with_client_patches`].
    ClientPatches,
    /// Images are laid out as interleaved tiles and convolutions and pools
    /// run on them, see [`Tile::with_interleaved_conv`].
    Interleaved,
}

impl Tile {
    /// Tile packing with `rows x cols` tiles and `batch` samples per tile.
    pub fn new(rows: usize, cols: usize, batch: usize) -> Result<Tile> {
        Ok(Tile {
            shape: TileShape::new(rows, cols, batch)?,
            input: TileInput::Vector,
            transition: Transition::Gather,
        })
    }

    /// The tile shape.
    pub fn shape(&self) -> TileShape {
        self.shape
    }

    /// How the input is laid out.
    pub fn input(&self) -> TileInput {
        self.input
    }

    /// How an interleaved image enters the matrix-vector chain.
    pub fn transition(&self) -> Transition {
        self.transition
    }

    /// The client lays out the first linear layer's input patches (im2col,
    /// as TenSEAL does for its convolution): input ciphertext `k` of output
    /// tile `i` holds, at the row of each output unit, the input element of
    /// that unit's `k`-th weight, duplicated along the columns. The first
    /// layer is then `sum_k ct_k * pt_k` (ct x pt, one level, no rotation)
    /// and comes out as `[m/t1, */t2]`, ready for the next layer: a
    /// network of three linear layers needs no mask. It costs one input
    /// ciphertext per weight of the densest row (49 for a 7x7 convolution)
    /// per output tile, so it suits convolutions, not dense first layers.
    /// A weight position that is zero in every row of an output tile is
    /// skipped (no ciphertext work, no plaintext). Replaces
    /// [`Tile::with_interleaved_conv`] (one input mode at a time,
    /// [`TileInput`]).
    pub fn with_client_patches(mut self) -> Tile {
        self.input = TileInput::ClientPatches;
        self
    }

    /// Convolutions and average pools run on interleaved image tiles
    /// (HElayers): the client packs channel `c`, pixel `(y, x)` into tile
    /// `(c, y mod ky, x mod kx)` at slot `(y / ky, x / kx)`; a convolution is
    /// a sum of rotated input tiles times scalar weights (ct x scalar, no
    /// plaintext, rotations hoisted per input tile), a pool whose stride
    /// divides the interleaving is a sum of tiles with no rotation, and the
    /// first dense layer gathers the image into the matrix-vector chain. See
    /// [`interleaved`] and `docs/packing.md`. Replaces
    /// [`Tile::with_client_patches`] (one input mode at a time,
    /// [`TileInput`]).
    pub fn with_interleaved_conv(mut self) -> Tile {
        self.input = TileInput::Interleaved;
        self
    }

    /// How an interleaved image enters the matrix-vector chain
    /// ([`Transition::Gather`] by default: fewest plaintexts;
    /// [`Transition::Products`]: fewer operations for a first dense layer or
    /// a convolution with a 1 x 1 output, one plaintext per output and input
    /// tile). Only used with [`Tile::with_interleaved_conv`].
    pub fn with_transition(mut self, transition: Transition) -> Tile {
        self.transition = transition;
        self
    }
}

/// Where a vector lies in its tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Orient {
    /// `[n/t1, */t2]`.
    Col,
    /// `[*/t1, n/t2]`.
    Row,
    /// `[n/t1, 1?/t2]`: column 0 valid.
    ColUnknown,
}

/// A vector as tile tensor: one value per tile (None: a tile with no
/// ciphertext, all its elements constant).
struct TileVector {
    tiles: Vec<Option<ValueId>>,
    orient: Orient,
    len: usize,
}

/// `sum_i tiles[i] * p_i` (ct x pt) over the `(i, p_i)` blocks whose tile
/// has a ciphertext, each `p_i` stored as a multiplication plaintext.
fn dot_tiles(
    b: &mut Builder,
    tiles: &[Option<ValueId>],
    blocks: impl IntoIterator<Item = (usize, Vec<f64>)>,
) -> ValueId {
    let (ins, pts): (Vec<ValueId>, Vec<PlainId>) = blocks
        .into_iter()
        .filter_map(|(i, p)| {
            let x = tiles.get(i).copied().flatten()?;
            Some((x, b.plain(p, PlainUse::Mul)))
        })
        .unzip();
    b.dot_plain(&ins, pts)
}

impl Tile {
    fn tensor_shape(&self, v: &TileVector) -> TileTensorShape {
        let t = self.shape;
        let dim = |size, tile, kind| TileDim { size, tile, kind };
        let batch = dim(t.batch, t.batch, DimKind::Plain);
        let dims = match v.orient {
            Orient::Col => vec![
                dim(v.len, t.rows, DimKind::Plain),
                dim(1, t.cols, DimKind::Duplicated),
                batch,
            ],
            Orient::Row => vec![
                dim(1, t.rows, DimKind::Duplicated),
                dim(v.len, t.cols, DimKind::Plain),
                batch,
            ],
            Orient::ColUnknown => vec![
                dim(v.len, t.rows, DimKind::Plain),
                dim(1, t.cols, DimKind::Unknown),
                batch,
            ],
        };
        TileTensorShape { dims }
    }

    /// Tile index and slot (sample 0, row 0 / col 0 of a duplicated dim) of element `e`.
    fn locate(&self, orient: Orient, e: usize) -> (usize, usize) {
        let t = self.shape;
        match orient {
            Orient::Col | Orient::ColUnknown => (e / t.rows, t.slot(e % t.rows, 0, 0)),
            Orient::Row => (e / t.cols, t.slot(0, e % t.cols, 0)),
        }
    }

    /// `acc` plus the bias of the elements of tile `tile` in the layout of
    /// `orient` (one ct + pt add; nothing when that part of the bias is 0).
    fn add_bias(
        &self,
        b: &mut Builder,
        acc: ValueId,
        orient: Orient,
        tile: usize,
        bias: &[f64],
    ) -> ValueId {
        let bp = self.layout_plain(orient, tile, bias);
        if bp.iter().any(|&x| x != 0.0) {
            let p = b.plain(bp, PlainUse::Add);
            b.add_plain(acc, p)
        } else {
            acc
        }
    }

    /// A plaintext in the layout of `orient` holding `values[e]` for the
    /// elements of tile `tile` (duplicated where the layout duplicates).
    fn layout_plain(&self, orient: Orient, tile: usize, values: &[f64]) -> Vec<f64> {
        let t = self.shape;
        let mut p = vec![0.0; t.slots()];
        for a in 0..t.rows {
            for c in 0..t.cols {
                let e = match orient {
                    Orient::Col => tile * t.rows + a,
                    Orient::Row => tile * t.cols + c,
                    Orient::ColUnknown if c == 0 => tile * t.rows + a,
                    Orient::ColUnknown => continue,
                };
                if let Some(&v) = values.get(e) {
                    for s in 0..t.batch {
                        p[t.slot(a, c, s)] = v;
                    }
                }
            }
        }
        p
    }

    /// Clear the unknown columns and duplicate column 0: `[n/t1, 1?/t2]` to `[n/t1, */t2]`.
    fn clear_and_duplicate(&self, b: &mut Builder, v: TileVector) -> TileVector {
        let t = self.shape;
        let mut mask = vec![0.0; t.slots()];
        for a in 0..t.rows {
            for s in 0..t.batch {
                mask[t.slot(a, 0, s)] = 1.0;
            }
        }
        let mask = b.plain(mask, PlainUse::Mul);
        let tiles = v
            .tiles
            .iter()
            .map(|x| {
                x.map(|x| {
                    let m = b.mul_plain(x, mask);
                    b.rotate_sum(m, -(t.batch as i64), t.cols as u32)
                })
            })
            .collect();
        TileVector {
            tiles,
            orient: Orient::Col,
            len: v.len,
        }
    }

    /// A linear stage as tile matrix-vector products.
    fn linear(&self, b: &mut Builder, v: TileVector, rows: &[Row]) -> TileVector {
        let v = if v.orient == Orient::ColUnknown {
            self.clear_and_duplicate(b, v)
        } else {
            v
        };
        let t = self.shape;
        let m = rows.len();
        // Input along dim 0 (Col) -> output along dim 1 (Row), and vice versa.
        let (out_tile, in_tile, out_orient) = match v.orient {
            Orient::Col => (t.cols, t.rows, Orient::Row),
            _ => (t.rows, t.cols, Orient::ColUnknown),
        };
        let n_out = m.div_ceil(out_tile);
        let mut tiles = Vec::with_capacity(n_out);
        for jo in 0..n_out {
            // Weight tiles of this tile row, by input tile.
            let mut blocks: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
            for (o, row) in rows.iter().enumerate().skip(jo * out_tile).take(out_tile) {
                let oo = o % out_tile;
                for &(src, c) in &row.terms {
                    let (it, ii) = (src as usize / in_tile, src as usize % in_tile);
                    if v.tiles.get(it).copied().flatten().is_none() {
                        continue;
                    }
                    let p = blocks.entry(it).or_insert_with(|| vec![0.0; t.slots()]);
                    let (a, c2) = match v.orient {
                        Orient::Col => (ii, oo),
                        _ => (oo, ii),
                    };
                    for s in 0..t.batch {
                        p[t.slot(a, c2, s)] = c;
                    }
                }
            }
            if blocks.is_empty() {
                tiles.push(None);
                continue;
            }
            let acc = dot_tiles(b, &v.tiles, blocks);
            let acc = match v.orient {
                Orient::Col => b.rotate_sum(acc, (t.cols * t.batch) as i64, t.rows as u32),
                _ => b.rotate_sum(acc, t.batch as i64, t.cols as u32),
            };
            let bias: Vec<f64> = rows.iter().map(|r| r.bias).collect();
            tiles.push(Some(self.add_bias(b, acc, out_orient, jo, &bias)));
        }
        TileVector {
            tiles,
            orient: out_orient,
            len: m,
        }
    }
}

impl Packing for Tile {
    fn name(&self) -> &'static str {
        "tile packing"
    }

    fn kind(&self) -> PackingKind {
        PackingKind::Tile(self.shape)
    }

    /// Tiles of `W [out, in]`: `t2 x t1` (outputs x inputs) for layers in an
    /// even linear group (input along the tile rows), `t1 x t2` for odd ones.
    /// For a convolution the block is a tile of its (Toeplitz) matrix, not of
    /// the im2col view, so `None` is returned for convolutions.
    ///
    /// With [`Tile::with_interleaved_conv`] a convolution's block is one
    /// kernel `(o, c)`: a `1 x (kh kw)` tile of the im2col view (what it
    /// saves: [`Tile::kernel_saves`]), and the chain's orientations count
    /// from the first dense layer (from the second when
    /// [`Transition::Products`] lowers the first one: its block is then one
    /// channel's plane, `1 x (H W)`, the part of a row one input tile
    /// holds, when the image reaches it as one tile per channel, else
    /// `None`).
    fn block_shape(&self, net: &Network, layer: usize) -> Option<BlockShape> {
        if self.input == TileInput::Interleaved
            && let Some(crate::model::Layer::Conv2d(c)) = net.layers.get(layer)
        {
            let ws = c.weight.shape();
            return Some(BlockShape::Tile {
                rows: 1,
                cols: ws.get(2)? * ws.get(3)?,
            });
        }
        if !matches!(net.layers.get(layer), Some(crate::model::Layer::Dense(_))) {
            return None;
        }
        let mut g = linear_group(net, layer)?;
        if self.input == TileInput::Interleaved {
            let (first, products_block) = self.first_chain_dense(net)?;
            if layer == first
                && let Some(block) = products_block
            {
                return block;
            }
            let base = linear_group(net, first)? + usize::from(products_block.is_some());
            g -= base.min(g);
        }
        Some(if g % 2 == 0 {
            BlockShape::Tile {
                rows: self.shape.cols,
                cols: self.shape.rows,
            }
        } else {
            BlockShape::Tile {
                rows: self.shape.rows,
                cols: self.shape.cols,
            }
        })
    }

    /// One ct x pt mult, one ct + ct add and one stored plaintext (counted
    /// as the one [`OpKind::Encode`](crate::he::OpKind::Encode) the server no longer does).
    fn zero_block_saves(&self) -> OpCounts {
        masked_product_saves()
    }

    fn lower(&self, folded: &Folded, b: &mut Builder) -> Result<()> {
        let t = self.shape;
        b.set_samples(Some(t.batch));
        b.set_period(Some(t.slots()));
        if self.input == TileInput::Interleaved {
            return self.lower_interleaved(folded, b);
        }
        let folded = folded.compose_linear();
        let mut stages: &[Stage] = &folded.stages;
        let v = match (self.input, folded.stages.first()) {
            (TileInput::ClientPatches, Some(Stage::Linear { layer, rows, .. })) => {
                stages = &folded.stages[1..];
                self.patches(b, *layer, rows)
            }
            _ => self.plain_input(b, folded.input_dim),
        };
        let v = self.chain(b, v, stages);
        self.chain_outputs(b, &folded, &v);
        Ok(())
    }
}

impl Tile {
    /// Run folded stages on a vector in the matrix-vector chain layout.
    fn chain(&self, b: &mut Builder, mut v: TileVector, stages: &[Stage]) -> TileVector {
        for stage in stages {
            b.set_layer(stage.layer());
            v = match stage {
                Stage::Linear { rows, .. } => self.linear(b, v, rows),
                Stage::Square { .. } => TileVector {
                    tiles: v.tiles.iter().map(|x| x.map(|x| b.square(x))).collect(),
                    ..v
                },
                Stage::AddConst { values, .. } => {
                    let tiles = v
                        .tiles
                        .iter()
                        .enumerate()
                        .map(|(i, x)| {
                            x.map(|x| {
                                let p: Vec<f64> = self.layout_plain(v.orient, i, values);
                                if p.iter().all(|&z| z == 0.0) {
                                    x
                                } else {
                                    let p: PlainId = b.plain(p, PlainUse::Add);
                                    b.add_plain(x, p)
                                }
                            })
                        })
                        .collect();
                    TileVector { tiles, ..v }
                }
            };
        }
        v
    }

    /// Declare the outputs of a network whose last vector is `v` (chain layout).
    fn chain_outputs(&self, b: &mut Builder, folded: &Folded, v: &TileVector) {
        declare_outputs(b, folded, |src| {
            let (tile, slot) = self.locate(v.orient, src);
            v.tiles.get(tile).copied().flatten().map(|x| (x, slot))
        });
    }
}

/// Declares the outputs of `folded`, element `src` of its last value being
/// at `at(src)` (ciphertext and slot; `None`: a dead tile, the output is its
/// constant `beta`). Each output ciphertext is listed once, in first-use
/// order.
fn declare_outputs(
    b: &mut Builder,
    folded: &Folded,
    at: impl Fn(usize) -> Option<(ValueId, usize)>,
) {
    let mut cts: Vec<ValueId> = Vec::new();
    let map = folded
        .outputs
        .iter()
        .map(|e| match *e {
            Elem::Const(c) => OutputElem::Const(c),
            Elem::Var { src, alpha, beta } => match at(src as usize) {
                None => OutputElem::Const(beta),
                Some((x, slot)) => {
                    let ct = cts.iter().position(|&c| c == x).unwrap_or_else(|| {
                        cts.push(x);
                        cts.len() - 1
                    });
                    OutputElem::Slot {
                        ct: ct as u32,
                        slot: slot as u32,
                        alpha,
                        beta,
                    }
                }
            },
        })
        .collect();
    b.set_outputs(cts, map);
}

impl Tile {
    /// The input vector laid out as `[n/t1, */t2]`.
    fn plain_input(&self, b: &mut Builder, n: usize) -> TileVector {
        let t = self.shape;
        let n_tiles = n.div_ceil(t.rows);
        let layout = InputLayout {
            cts: (0..n_tiles)
                .map(|it| {
                    let mut entries = Vec::new();
                    for a in 0..t.rows {
                        let e = it * t.rows + a;
                        if e >= n {
                            break;
                        }
                        for c in 0..t.cols {
                            entries.push((t.slot(a, c, 0) as u32, e as u32));
                        }
                    }
                    entries
                })
                .collect(),
        };
        TileVector {
            tiles: b.inputs(layout).into_iter().map(Some).collect(),
            orient: Orient::Col,
            len: n,
        }
    }

    /// The first linear stage from client-laid-out patches (see
    /// [`Tile::with_client_patches`]); output `[m/t1, */t2]`.
    fn patches(&self, b: &mut Builder, layer: usize, rows: &[Row]) -> TileVector {
        let t = self.shape;
        let m = rows.len();
        let n_out = m.div_ceil(t.rows);
        let width = rows.iter().map(|r| r.terms.len()).max().unwrap_or(0);
        // Per output tile, per weight position k: the input ciphertext's
        // entries and the weight plaintext (None when all-zero).
        let mut cts = Vec::new();
        let mut plains: Vec<Vec<(usize, Vec<f64>)>> = Vec::new();
        for it in 0..n_out {
            let mut per_tile = Vec::new();
            for k in 0..width {
                let mut entries = Vec::new();
                let mut p = vec![0.0; t.slots()];
                let mut any = false;
                for a in 0..t.rows {
                    let Some(row) = rows.get(it * t.rows + a) else {
                        break;
                    };
                    if let Some(&(src, c)) = row.terms.get(k) {
                        any = true;
                        for col in 0..t.cols {
                            entries.push((t.slot(a, col, 0) as u32, src));
                            for s in 0..t.batch {
                                p[t.slot(a, col, s)] = c;
                            }
                        }
                    }
                }
                if any {
                    per_tile.push((cts.len(), p));
                    cts.push(entries);
                }
            }
            plains.push(per_tile);
        }
        let ids = b.inputs(InputLayout { cts });
        b.set_layer(layer);
        let bias: Vec<f64> = rows.iter().map(|r| r.bias).collect();
        let tiles = plains
            .into_iter()
            .enumerate()
            .map(|(it, terms)| {
                if terms.is_empty() {
                    return None;
                }
                let mut ins = Vec::with_capacity(terms.len());
                let mut pts = Vec::with_capacity(terms.len());
                for (ct, p) in terms {
                    ins.push(ids[ct]);
                    pts.push(b.plain(p, PlainUse::Mul));
                }
                let acc = b.dot_plain(&ins, pts);
                Some(self.add_bias(b, acc, Orient::Col, it, &bias))
            })
            .collect();
        TileVector {
            tiles,
            orient: Orient::Col,
            len: m,
        }
    }

    /// The tile-tensor shape of the input vector of a network with `n`
    /// features under this packing (e.g. `[784/64, */128, 1/1]`).
    pub fn input_shape(&self, n: usize) -> TileTensorShape {
        self.tensor_shape(&TileVector {
            tiles: Vec::new(),
            orient: Orient::Col,
            len: n,
        })
    }
}

//! Convolution on interleaved image tiles (HElayers), the
//! [`Tile::with_interleaved_conv`] mode of the tile packing.
//!
//! **Layout.** An image `[C, H, W]` is cut into `C ky kx` tiles of
//! `t1 x t2 (x batch)` slots: channel `c`, pixel `(y, x)` goes to tile
//! `(c, y mod ky, x mod kx)`, slot `(y / ky, x / kx)`. The interleaving
//! factors are `ky = ceil(H / t1)` rounded up to a multiple of the product
//! `Sy` of every convolution and pool stride (`kx` likewise), so that each
//! strided layer divides them exactly; rows past `H` are zero. In the
//! [`TileTensorShape`] notation the input is `[C/1, ~(ky t1)/t1,
//! ~(kx t2)/t2, b/b]` (the interleaved size is the zero-padded extent
//! `ky t1`, so that `~n/t` has `n / t = ky` tiles), e.g. MOFHEI's LeNet with
//! 8 x 8 tiles: `[1/1, ~32/8, ~32/8, 1/1]`, 16 ciphertexts.
//!
//! **Convolution** (stride `s` dividing `ky`, no padding): the output keeps
//! the layout with `ky' = ky / s`; output tile `(o, a, b)` is
//! `sum_{c, dy, dx} w[o, c, dy, dx] * rot(tile(c, (s a + dy) mod ky,
//! (s b + dx) mod kx), ((s a + dy) div ky, (s b + dx) div kx))`, a shift of
//! whole tile rows and columns. Each term is a ct x scalar multiply (one
//! [`crate::plan::Instr::DotScalar`] per output tile: no plaintext
//! stored), the rotations of an input tile are one hoisted `rotate_many`.
//! A valid output pixel only reads valid input pixels with no wrap-around
//! (`y = s Y + dy < H <= ky t1`), so valid slots are exact; the others hold
//! wrapped values and are *unknown* (`?`): they never reach a valid slot
//! through later convolutions or pools, and the gather below clears them
//! with the zeros of its mask. A zero weight emits no multiply, a rotation
//! that no non-zero weight reads is not emitted, a zero filter has no
//! output tiles.
//!
//! **Average pooling** is the same operation with unit weights and a sum
//! instead of a multiply (the `1/k^2` is folded into the next layer): when
//! the window equals the stride (and the stride divides `ky`), every shift
//! is zero, so pooled tile `(a', b')` is the sum of the input tiles
//! `(s a' + i, s b' + j)` — no rotation, no level. Other windows rotate as
//! a convolution does.
//!
//! **Transition** to the matrix-vector chain (the first dense layer, or
//! before the element-wise stages that precede it when the chain has fewer
//! tiles): element `e` of the flattened image moves from its slot to row
//! `e mod t1`, column 0 of chain tile `e / t1` (one rotation per distinct
//! (source tile, shift), hoisted), the pieces of one chain tile are summed
//! as a ct x pt product with 0/1 masks (one level, clears the unknowns),
//! and column 0 is duplicated (`log2 t2` rotations): `[n/t1, */t2]`, the
//! chain's input orientation.
//!
//! Padding, a stride that does not divide the interleaving, folded weights
//! that are not a convolution any more, and networks that do not start with
//! a convolution or pool on a `[C, H, W]` input are refused with
//! [`Error::UnsupportedLayer`] at compile time.

mod transition;
mod window;

use super::{DimKind, TileDim, TileTensorShape};
use super::{Tile, TileInput, declare_outputs};
use crate::error::{Error, Result};
use crate::he::{OpCounts, OpKind};
use crate::lower::{Builder, Folded, Row, Stage, Window};
use crate::model::{Layer, Network};
use crate::packing::BlockShape;
use crate::plan::TileShape;
use crate::plan::{InputLayout, PlainUse, ValueId};

/// How an interleaved image enters the tile packing's matrix-vector chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transition {
    /// Move every element to its chain slot (rotations hoisted per source
    /// tile), clear the unknowns with 0/1 masks (ct x pt, one level),
    /// duplicate column 0; then the chain's first layer as usual. Stores one
    /// mask per (chain tile, source tile, shift).
    #[default]
    Gather,
    /// The chain's first linear layer (a dense layer, or a convolution with a
    /// 1 x 1 output) straight from the image tiles: output `j` is
    /// `sum_tiles tile * P_{j, tile}` (ct x pt; the plaintext holds the
    /// weights at the valid slots and zeros at the unknown ones, so it
    /// clears them), summed over the whole tile (`log2(t1 t2)` rotations,
    /// the result is duplicated in every slot), then masked into row
    /// `j mod t1` of chain tile `j / t1` (ct x pt, one level):
    /// `[m/t1, */t2]`. Stores one plaintext per (output, input tile).
    Products,
}

/// An image as interleaved tiles: tile `(c, i, j)` at index
/// `(c ky + i) kx + j` (`None`: a dead channel, no ciphertext).
struct Image {
    tiles: Vec<Option<ValueId>>,
    ch: usize,
    h: usize,
    w: usize,
    ky: usize,
    kx: usize,
}

impl Image {
    fn index(&self, c: usize, i: usize, j: usize) -> usize {
        (c * self.ky + i) * self.kx + j
    }

    /// Tile index, slot row and slot column of element `e = (c H + y) W + x`.
    fn locate(&self, e: usize) -> (usize, usize, usize) {
        let (c, y, x) = (e / (self.h * self.w), (e / self.w) % self.h, e % self.w);
        (
            self.index(c, y % self.ky, x % self.kx),
            y / self.ky,
            x / self.kx,
        )
    }

    fn live(&self) -> usize {
        self.tiles.iter().flatten().count()
    }
}

/// `(ky, kx)` for an input of `h x w` pixels, tile `t`, and the products of
/// the strides of every window layer.
fn factors(t: TileShape, h: usize, w: usize, strides: (usize, usize)) -> (usize, usize) {
    let up = |n: usize, tile: usize, s: usize| n.div_ceil(tile).max(1).div_ceil(s) * s;
    (up(h, t.rows, strides.0), up(w, t.cols, strides.1))
}

fn stride_product<'a>(windows: impl Iterator<Item = &'a Window>) -> (usize, usize) {
    windows.fold((1, 1), |(a, b), w| {
        (a * w.stride.0.max(1), b * w.stride.1.max(1))
    })
}

fn refuse(layer: usize, kind: &'static str, by: &'static str) -> Error {
    Error::UnsupportedLayer { layer, kind, by }
}

impl Tile {
    /// The tile-tensor shape of an image input `[C, H, W]` under
    /// [`Tile::with_interleaved_conv`] for `net` (e.g. `[1/1, ~32/8, ~32/8,
    /// 1/1]` for LeNet with 8 x 8 tiles); `None` if the input is not 3-D.
    pub fn interleaved_input_shape(&self, net: &Network) -> Option<TileTensorShape> {
        let [c, h, w] = *net.input_shape.as_slice() else {
            return None;
        };
        let shapes = net.shapes().ok()?;
        let windows: Vec<Window> = net
            .layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let inp = if i == 0 {
                    net.input_shape.as_slice()
                } else {
                    shapes[i - 1].as_slice()
                };
                Window::of(l, inp, &shapes[i])
            })
            .collect();
        let t = self.shape;
        let (ky, kx) = factors(t, h, w, stride_product(windows.iter()));
        let dim = |size, tile, kind| TileDim { size, tile, kind };
        Some(TileTensorShape {
            dims: vec![
                dim(c, 1, DimKind::Plain),
                dim(ky * t.rows, t.rows, DimKind::Interleaved),
                dim(kx * t.cols, t.cols, DimKind::Interleaved),
                dim(t.batch, t.batch, DimKind::Plain),
            ],
        })
    }

    /// What zeroing one kernel `(o, c)` of convolution `layer` saves under
    /// [`Tile::with_interleaved_conv`], when filter `o` keeps another
    /// non-zero kernel and every rotation it read is still read by another
    /// kernel: its `kh kw` ct x scalar multiplies and as many ct + ct adds in
    /// each of the filter's computed output tiles (`min(ky', OH)
    /// min(kx', OW)`: tiles without a valid pixel are not computed). No
    /// plaintext is stored for convolution weights, so nothing else. `None`
    /// if `layer` is not a convolution of `net` or the mode is off.
    pub fn kernel_saves(&self, net: &Network, layer: usize) -> Option<OpCounts> {
        if self.input != TileInput::Interleaved {
            return None;
        }
        let Some(Layer::Conv2d(conv)) = net.layers.get(layer) else {
            return None;
        };
        let [_, h, w] = *net.input_shape.as_slice() else {
            return None;
        };
        let shapes = net.shapes().ok()?;
        let window_of = |i: usize| {
            let inp = if i == 0 {
                net.input_shape.as_slice()
            } else {
                shapes[i - 1].as_slice()
            };
            Window::of(&net.layers[i], inp, &shapes[i])
        };
        let all: Vec<Window> = (0..net.layers.len()).filter_map(window_of).collect();
        let (ky, kx) = factors(self.shape, h, w, stride_product(all.iter()));
        let before: Vec<Window> = (0..=layer).filter_map(window_of).collect();
        let (sy, sx) = stride_product(before.iter());
        let ws = conv.weight.shape();
        let per_tile = (ws.get(2)? * ws.get(3)?) as u64;
        let (oh, ow) = (*shapes[layer].get(1)?, *shapes[layer].get(2)?);
        let n = ((ky / sy).min(oh) * (kx / sx).min(ow)) as u64 * per_tile;
        Some(super::counts_of(&[
            (OpKind::CtScalarMul, n),
            (OpKind::CtCtAdd, n),
        ]))
    }

    /// The first dense layer of `net`, and, when [`Transition::Products`]
    /// lowers it straight from the image (no convolution with a 1 x 1
    /// output before it), its block: one channel's plane (`1 x (H W)`) if
    /// the image reaches it as one tile per channel, else `None`.
    pub(super) fn first_chain_dense(
        &self,
        net: &Network,
    ) -> Option<(usize, Option<Option<BlockShape>>)> {
        let first = net
            .layers
            .iter()
            .position(|l| matches!(l, Layer::Dense(_)))?;
        let shapes = net.shapes().ok()?;
        let conv_1x1 = net.layers[..first]
            .iter()
            .zip(&shapes)
            .any(|(l, s)| matches!(l, Layer::Conv2d(_)) && s.get(1..) == Some(&[1, 1][..]));
        if self.transition != Transition::Products || conv_1x1 {
            return Some((first, None));
        }
        let [_, h, w] = *net.input_shape.as_slice() else {
            return Some((first, Some(None)));
        };
        let windows: Vec<Window> = (0..first)
            .filter_map(|i| {
                let inp = if i == 0 {
                    net.input_shape.as_slice()
                } else {
                    shapes[i - 1].as_slice()
                };
                Window::of(&net.layers[i], inp, &shapes[i])
            })
            .collect();
        let all = stride_product(windows.iter());
        let (ky, kx) = factors(self.shape, h, w, all);
        let plane = match windows.last() {
            Some(win) if ky == all.0 && kx == all.1 => Some(BlockShape::Tile {
                rows: 1,
                cols: win.out_shape[1] * win.out_shape[2],
            }),
            _ => None,
        };
        Some((first, Some(plane)))
    }

    /// Lower a folded network with its leading convolution/pool stack on
    /// interleaved tiles and the rest as the matrix-vector chain.
    pub(super) fn lower_interleaved(&self, folded: &Folded, b: &mut Builder) -> Result<()> {
        let t = self.shape;
        let first = folded.stages.iter().find_map(|s| match s {
            Stage::Linear { layer, .. } => Some(*layer),
            _ => None,
        });
        let [ch, h, w] = *folded.input_shape.as_slice() else {
            return Err(refuse(
                first.unwrap_or(0),
                "input",
                "tile packing with interleaved convolution (input not [C, H, W])",
            ));
        };
        let window = |layer: usize| folded.windows.get(layer).copied().flatten();
        match first {
            Some(l) if window(l).is_some() => {}
            _ => {
                return Err(refuse(
                    first.unwrap_or(0),
                    "dense",
                    "tile packing with interleaved convolution (the network must start with a convolution or pool)",
                ));
            }
        }
        for (i, win) in folded.windows.iter().enumerate() {
            if let Some(win) = win
                && win.padding != (0, 0)
            {
                return Err(refuse(
                    i,
                    win.kind,
                    "tile packing with interleaved convolution (padding)",
                ));
            }
        }
        let (ky, kx) = factors(t, h, w, stride_product(folded.windows.iter().flatten()));
        // Input channels the first stage reads (a channel no kernel of a
        // first convolution reads is not sent at all).
        let read: Vec<bool> = match folded.stages.first() {
            Some(Stage::Linear { rows, .. }) => {
                let mut r = vec![false; ch];
                for row in rows {
                    for &(s, _) in &row.terms {
                        if let Some(x) = r.get_mut(s as usize / (h * w).max(1)) {
                            *x = true;
                        }
                    }
                }
                r
            }
            _ => vec![true; ch],
        };
        let mut img = self.image_input(b, &read, h, w, ky, kx);
        let stages = &folded.stages;
        let mut chain_start = stages.len();
        for (i, stage) in stages.iter().enumerate() {
            b.set_layer(stage.layer());
            match stage {
                Stage::Linear {
                    layer,
                    in_dim,
                    rows,
                    pure_sum,
                } => match window(*layer) {
                    Some(win)
                        if !(self.transition == Transition::Products
                            && win.out_shape[1..] == [1, 1]
                            && next_is_dense(folded, i + 1)) =>
                    {
                        img = self.window_op(b, img, *layer, *in_dim, rows, *pure_sum, &win)?;
                    }
                    _ => {
                        chain_start = i;
                        break;
                    }
                },
                Stage::Square { .. } | Stage::AddConst { .. } => {
                    if self.gather_early(folded, &img, i) {
                        chain_start = i;
                        break;
                    }
                    img = self.elementwise(b, img, stage);
                }
            }
        }
        if chain_start == stages.len() {
            self.image_outputs(b, folded, &img);
            return Ok(());
        }
        let used = next_rows(&stages[chain_start..]).map(|rows| {
            let mut u = vec![false; img.ch * img.h * img.w];
            for r in rows {
                for &(src, _) in &r.terms {
                    if let Some(x) = u.get_mut(src as usize) {
                        *x = true;
                    }
                }
            }
            u
        });
        b.set_layer(stages[chain_start].layer());
        let (v, after) = match (&stages[chain_start], self.transition) {
            (Stage::Linear { rows, .. }, Transition::Products) => {
                (self.products(b, &img, rows), chain_start + 1)
            }
            _ => (self.gather(b, &img, used.as_deref()), chain_start),
        };
        let rest = Folded {
            stages: stages[after..].to_vec(),
            ..folded.clone()
        }
        .compose_linear();
        let v = self.chain(b, v, &rest.stages);
        self.chain_outputs(b, &rest, &v);
        Ok(())
    }

    /// The client's interleaved tiles.
    fn image_input(
        &self,
        b: &mut Builder,
        read: &[bool],
        h: usize,
        w: usize,
        ky: usize,
        kx: usize,
    ) -> Image {
        let t = self.shape;
        let ch = read.len();
        let mut cts = vec![Vec::new(); ch * ky * kx];
        for c in (0..ch).filter(|&c| read[c]) {
            for y in 0..h {
                for x in 0..w {
                    let tile = (c * ky + y % ky) * kx + x % kx;
                    let e = (c * h + y) * w + x;
                    cts[tile].push((t.slot(y / ky, x / kx, 0) as u32, e as u32));
                }
            }
        }
        let sent: Vec<usize> = (0..ch * ky * kx).filter(|&i| read[i / (ky * kx)]).collect();
        let layout = InputLayout {
            cts: sent.iter().map(|&i| std::mem::take(&mut cts[i])).collect(),
        };
        let mut tiles = vec![None; ch * ky * kx];
        for (i, v) in sent.into_iter().zip(b.inputs(layout)) {
            tiles[i] = Some(v);
        }
        Image {
            tiles,
            ch,
            h,
            w,
            ky,
            kx,
        }
    }

    /// A plaintext over image tile `tile` holding `value(e)` at the slots of
    /// its valid elements (zero at unknown slots).
    fn image_plain(&self, img: &Image, tile: usize, value: impl Fn(usize) -> f64) -> Vec<f64> {
        let t = self.shape;
        let mut p = vec![0.0; t.slots()];
        let c = tile / (img.ky * img.kx);
        let (i, j) = ((tile / img.kx) % img.ky, tile % img.kx);
        for y in (i..img.h).step_by(img.ky) {
            for x in (j..img.w).step_by(img.kx) {
                let v = value((c * img.h + y) * img.w + x);
                for s in 0..t.batch {
                    p[t.slot(y / img.ky, x / img.kx, s)] = v;
                }
            }
        }
        p
    }

    /// Square or add constants, tile by tile.
    fn elementwise(&self, b: &mut Builder, img: Image, stage: &Stage) -> Image {
        let tiles = match stage {
            Stage::Square { .. } => img.tiles.iter().map(|x| x.map(|x| b.square(x))).collect(),
            Stage::AddConst { values, .. } => img
                .tiles
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x.map(|x| {
                        let p =
                            self.image_plain(&img, i, |e| values.get(e).copied().unwrap_or(0.0));
                        if p.iter().all(|&z| z == 0.0) {
                            x
                        } else {
                            let p = b.plain(p, PlainUse::Add);
                            b.add_plain(x, p)
                        }
                    })
                })
                .collect(),
            Stage::Linear { .. } => img.tiles.clone(),
        };
        Image { tiles, ..img }
    }

    /// Whether to gather into the chain before element-wise stage `i`: the
    /// next linear stage is a dense one and the chain has fewer tiles (the
    /// squares then run on fewer ciphertexts).
    fn gather_early(&self, folded: &Folded, img: &Image, i: usize) -> bool {
        if self.transition == Transition::Products {
            return false;
        }
        let Some(next) = folded.stages[i..].iter().find_map(|s| match s {
            Stage::Linear { layer, .. } => Some(*layer),
            _ => None,
        }) else {
            return false;
        };
        if folded.windows.get(next).copied().flatten().is_some() {
            return false;
        }
        let n = img.ch * img.h * img.w;
        n.div_ceil(self.shape.rows) < img.live()
    }

    /// Outputs read straight from the image tiles.
    fn image_outputs(&self, b: &mut Builder, folded: &Folded, img: &Image) {
        let t = self.shape;
        declare_outputs(b, folded, |src| {
            let (tile, r, c) = img.locate(src);
            img.tiles
                .get(tile)
                .copied()
                .flatten()
                .map(|x| (x, t.slot(r, c, 0)))
        });
    }
}

/// Whether the first linear stage from `from` on is a dense one (not a
/// window operation); `false` if there is none.
fn next_is_dense(folded: &Folded, from: usize) -> bool {
    folded.stages.iter().skip(from).find_map(|s| match s {
        Stage::Linear { layer, .. } => {
            Some(folded.windows.get(*layer).copied().flatten().is_none())
        }
        _ => None,
    }) == Some(true)
}

/// The rows of the first linear stage in `stages`.
fn next_rows(stages: &[Stage]) -> Option<&[Row]> {
    stages.iter().find_map(|s| match s {
        Stage::Linear { rows, .. } => Some(rows.as_slice()),
        _ => None,
    })
}

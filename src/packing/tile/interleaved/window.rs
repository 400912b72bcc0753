//! Convolution and pooling on interleaved tiles: a shift of whole tile rows
//! and columns per kernel offset, one hoisted `rotate_many` per input tile.

use std::collections::{BTreeMap, BTreeSet};

use super::{Image, refuse};
use crate::error::Result;
use crate::lower::{Builder, Row, Window};
use crate::packing::tile::Tile;
use crate::plan::{PlainUse, ValueId};

impl Tile {
    /// A convolution or pool (folded rows checked against its window) on
    /// interleaved tiles.
    #[expect(
        clippy::too_many_arguments,
        reason = "one stage's fields, passed apart"
    )]
    pub(super) fn window_op(
        &self,
        b: &mut Builder,
        img: Image,
        layer: usize,
        in_dim: usize,
        rows: &[Row],
        pure_sum: bool,
        win: &Window,
    ) -> Result<Image> {
        let t = self.shape;
        let [ci, h, w] = win.in_shape;
        let [co, oh, ow] = win.out_shape;
        let (kh, kw) = win.kernel;
        let (sy, sx) = (win.stride.0.max(1), win.stride.1.max(1));
        let not_conv = || {
            refuse(
                layer,
                win.kind,
                "tile packing with interleaved convolution (folded weights are not a convolution)",
            )
        };
        if (img.ch, img.h, img.w) != (ci, h, w)
            || in_dim != ci * h * w
            || rows.len() != co * oh * ow
        {
            return Err(not_conv());
        }
        if !img.ky.is_multiple_of(sy) || !img.kx.is_multiple_of(sx) {
            return Err(refuse(
                layer,
                win.kind,
                "tile packing with interleaved convolution (stride does not divide the interleaving)",
            ));
        }
        // Kernel of every filter from its first output pixel, then checked
        // on every other pixel.
        let src = |c: usize, y: usize, x: usize| (c * h + y) * w + x;
        let mut kernels: Vec<Vec<(usize, usize, usize, f64)>> = Vec::with_capacity(co);
        for o in 0..co {
            let mut k = Vec::new();
            for &(s, coeff) in &rows[o * oh * ow].terms {
                let s = s as usize;
                let (c, y, x) = (s / (h * w), (s / w) % h, s % w);
                if y >= kh || x >= kw {
                    return Err(not_conv());
                }
                k.push((c, y, x, coeff));
            }
            for yy in 0..oh {
                for xx in 0..ow {
                    let r = &rows[(o * oh + yy) * ow + xx];
                    let off = yy * sy * w + xx * sx;
                    if r.terms.len() != k.len()
                        || r.terms
                            .iter()
                            .zip(&k)
                            .any(|(&(s, coeff), &(c, dy, dx, kc))| {
                                s as usize != src(c, dy, dx) + off || coeff != kc
                            })
                    {
                        return Err(not_conv());
                    }
                }
            }
            kernels.push(k);
        }
        let (ky2, kx2) = (img.ky / sy, img.kx / sx);
        let out = Image {
            tiles: Vec::new(),
            ch: co,
            h: oh,
            w: ow,
            ky: ky2,
            kx: kx2,
        };
        // Input tile and rotation step of kernel term (dy, dx) for output tile (a, bb).
        let step = |dr: usize, dc: usize| ((dr * t.cols + dc) * t.batch) as i64;
        let source = |c: usize, a: usize, bb: usize, dy: usize, dx: usize| {
            let (qy, qx) = (sy * a + dy, sx * bb + dx);
            (
                img.index(c, qy % img.ky, qx % img.kx),
                step(qy / img.ky, qx / img.kx),
            )
        };
        let mut needed: BTreeMap<usize, BTreeSet<i64>> = BTreeMap::new();
        for k in &kernels {
            for &(c, dy, dx, _) in k {
                for a in 0..ky2.min(oh) {
                    for bb in 0..kx2.min(ow) {
                        let (tile, st) = source(c, a, bb, dy, dx);
                        if st != 0 && img.tiles.get(tile).copied().flatten().is_some() {
                            needed.entry(tile).or_default().insert(st);
                        }
                    }
                }
            }
        }
        let mut rotated: BTreeMap<(usize, i64), ValueId> = BTreeMap::new();
        for (tile, steps) in needed {
            let Some(x) = img.tiles.get(tile).copied().flatten() else {
                continue;
            };
            let steps: Vec<i64> = steps.into_iter().collect();
            for (st, v) in steps.iter().zip(b.rotate_many(x, &steps)) {
                rotated.insert((tile, *st), v);
            }
        }
        let mut tiles = Vec::with_capacity(co * ky2 * kx2);
        for (o, k) in kernels.iter().enumerate() {
            for a in 0..ky2 {
                for bb in 0..kx2 {
                    // A tile with no valid pixel (the interleaving was
                    // rounded up past the image) is not computed.
                    if a >= oh || bb >= ow {
                        tiles.push(None);
                        continue;
                    }
                    let mut ins = Vec::with_capacity(k.len());
                    let mut ws = Vec::with_capacity(k.len());
                    for &(c, dy, dx, coeff) in k {
                        let (tile, st) = source(c, a, bb, dy, dx);
                        let v = if st == 0 {
                            img.tiles.get(tile).copied().flatten()
                        } else {
                            rotated.get(&(tile, st)).copied()
                        };
                        if let Some(v) = v {
                            ins.push(v);
                            ws.push(coeff);
                        }
                    }
                    if ins.is_empty() {
                        tiles.push(None);
                        continue;
                    }
                    // The bias over this tile's valid pixels: one scalar if
                    // uniform, else a plaintext.
                    let tile_index = out.index(o, a, bb);
                    let bias_of = |e: usize| rows.get(e).map(|r| r.bias).unwrap_or(0.0);
                    let mut biases = (a..oh)
                        .step_by(ky2)
                        .flat_map(|y| (bb..ow).step_by(kx2).map(move |x| (o * oh + y) * ow + x))
                        .map(bias_of);
                    let first = biases.next().unwrap_or(0.0);
                    let uniform = biases.all(|x| x == first);
                    let scalar = if uniform { first } else { 0.0 };
                    let acc = if pure_sum {
                        b.sum(&ins, scalar)
                    } else {
                        b.dot_scalar(&ins, ws, scalar)
                    };
                    let acc = if uniform {
                        acc
                    } else {
                        let p = self.image_plain(&out, tile_index, bias_of);
                        let p = b.plain(p, PlainUse::Add);
                        b.add_plain(acc, p)
                    };
                    tiles.push(Some(acc));
                }
            }
        }
        Ok(Image { tiles, ..out })
    }
}

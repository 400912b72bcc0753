//! The transition from interleaved image tiles to the matrix-vector chain
//! (see [`Transition`](super::Transition)): gathering the image into the
//! chain's column orientation, or the chain's first linear layer computed
//! straight from the image tiles.

use std::collections::{BTreeMap, BTreeSet};

use super::Image;
use crate::lower::{Builder, Row};
use crate::packing::tile::{Orient, Tile, TileVector, dot_tiles};
use crate::plan::{PlainUse, ValueId};

impl Tile {
    /// Gather the image into the chain's `[n/t1, */t2]` (elements not in
    /// `used` are left out).
    pub(super) fn gather(&self, b: &mut Builder, img: &Image, used: Option<&[bool]>) -> TileVector {
        let t = self.shape;
        let n = img.ch * img.h * img.w;
        let n_tiles = n.div_ceil(t.rows);
        // Per chain tile: (source tile, step) -> target rows.
        let mut groups: Vec<BTreeMap<(usize, i64), Vec<usize>>> = vec![BTreeMap::new(); n_tiles];
        let mut steps: BTreeMap<usize, BTreeSet<i64>> = BTreeMap::new();
        for e in 0..n {
            if used.is_some_and(|u| !u.get(e).copied().unwrap_or(false)) {
                continue;
            }
            let (tile, r, c) = img.locate(e);
            if img.tiles.get(tile).copied().flatten().is_none() {
                continue;
            }
            let row = e % t.rows;
            let st = t.slot(r, c, 0) as i64 - t.slot(row, 0, 0) as i64;
            groups[e / t.rows].entry((tile, st)).or_default().push(row);
            if st != 0 {
                steps.entry(tile).or_default().insert(st);
            }
        }
        let mut rotated: BTreeMap<(usize, i64), ValueId> = BTreeMap::new();
        for (tile, st) in steps {
            let Some(x) = img.tiles.get(tile).copied().flatten() else {
                continue;
            };
            let st: Vec<i64> = st.into_iter().collect();
            for (s, v) in st.iter().zip(b.rotate_many(x, &st)) {
                rotated.insert((tile, *s), v);
            }
        }
        let tiles = groups
            .into_iter()
            .map(|g| {
                if g.is_empty() {
                    return None;
                }
                let mut ins = Vec::with_capacity(g.len());
                let mut masks = Vec::with_capacity(g.len());
                for ((tile, st), rows) in g {
                    let v = if st == 0 {
                        img.tiles.get(tile).copied().flatten()
                    } else {
                        rotated.get(&(tile, st)).copied()
                    };
                    let Some(v) = v else { continue };
                    let mut m = vec![0.0; t.slots()];
                    for r in rows {
                        for s in 0..t.batch {
                            m[t.slot(r, 0, s)] = 1.0;
                        }
                    }
                    ins.push(v);
                    masks.push(b.plain(m, PlainUse::Mul));
                }
                if ins.is_empty() {
                    return None;
                }
                let acc = b.dot_plain(&ins, masks);
                Some(b.rotate_sum(acc, -(t.batch as i64), t.cols as u32))
            })
            .collect();
        TileVector {
            tiles,
            orient: Orient::Col,
            len: n,
        }
    }

    /// The chain's first linear layer straight from the image tiles (see
    /// [`Transition::Products`]); output `[m/t1, */t2]`.
    pub(super) fn products(&self, b: &mut Builder, img: &Image, rows: &[Row]) -> TileVector {
        let t = self.shape;
        let m = rows.len();
        let outs: Vec<Option<ValueId>> = rows
            .iter()
            .map(|row| {
                let mut per_tile: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
                for &(src, coeff) in &row.terms {
                    let (tile, r, c) = img.locate(src as usize);
                    if img.tiles.get(tile).copied().flatten().is_none() {
                        continue;
                    }
                    let p = per_tile.entry(tile).or_insert_with(|| vec![0.0; t.slots()]);
                    for s in 0..t.batch {
                        p[t.slot(r, c, s)] = coeff;
                    }
                }
                if per_tile.is_empty() {
                    return None;
                }
                let acc = dot_tiles(b, &img.tiles, per_tile);
                Some(b.rotate_sum(acc, t.batch as i64, (t.rows * t.cols) as u32))
            })
            .collect();
        let bias: Vec<f64> = rows.iter().map(|r| r.bias).collect();
        let tiles = (0..m.div_ceil(t.rows))
            .map(|k| {
                let mut ins = Vec::new();
                let mut masks = Vec::new();
                for r in 0..t.rows {
                    let Some(Some(v)) = outs.get(k * t.rows + r) else {
                        continue;
                    };
                    let mut mask = vec![0.0; t.slots()];
                    for c in 0..t.cols {
                        for s in 0..t.batch {
                            mask[t.slot(r, c, s)] = 1.0;
                        }
                    }
                    ins.push(*v);
                    masks.push(b.plain(mask, PlainUse::Mul));
                }
                if ins.is_empty() {
                    return None;
                }
                let acc = b.dot_plain(&ins, masks);
                Some(self.add_bias(b, acc, Orient::Col, k, &bias))
            })
            .collect();
        TileVector {
            tiles,
            orient: Orient::Col,
            len: m,
        }
    }
}

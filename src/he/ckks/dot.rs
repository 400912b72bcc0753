//! The CKKS side of dot products: checking and reducing the terms of a
//! scalar dot product, the blocked scalar products of many rows, and the
//! lazily accumulated ciphertext x plaintext products (the SIMD multiply-accumulate kernels are in `kernels_mac`).

use super::kernels_mac::{BlockRow, blocked_mac, mac_plain_limb};
use super::noise::Noise;
use super::ops::scaled_integer;
use super::poly::for_limbs;
use super::{Ckks, CkksCiphertext, CkksPlaintext};
use crate::he::error::Result;
use crate::he::{HeScheme, KeyId, Level, OpKind, Scale, check_terms};

impl Ckks {
    /// Checks the terms of a scalar dot product and reduces each weight,
    /// `round(w * scale)`, modulo every prime of the level: `(level, output
    /// scale, per-term limb weights, noise of the sum)`.
    pub(super) fn scalar_terms(
        &self,
        cts: &[&CkksCiphertext],
        scalars: &[f64],
        scale: Scale,
    ) -> Result<(Level, Scale, Vec<Vec<u64>>, Noise)> {
        check_terms(OpKind::CtScalarMul, cts.len(), scalars.len())?;
        let (level, out_scale) = (cts[0].level, cts[0].scale * scale);
        let mut ws = Vec::with_capacity(cts.len());
        let mut noise: Option<Noise> = None;
        for (i, (c, &x)) in cts.iter().zip(scalars).enumerate() {
            self.check_fp(c.fp, OpKind::CtScalarMul)?;
            self.check_key(OpKind::CtCtAdd, cts[0].key, c.key)?;
            let k = scaled_integer(OpKind::CtScalarMul, x, scale)?;
            let term = c.noise.mul_plain(k * k);
            noise = Some(noise.map_or(term, |n| n.add(term)));
            let s = c.scale * scale;
            self.check_scale_room(OpKind::CtScalarMul, c.level, s)?;
            if i > 0 {
                let acc = CkksCiphertext {
                    polys: Vec::new(),
                    level,
                    scale: out_scale,
                    fp: self.fp,
                    key: c.key,
                    noise: c.noise,
                };
                self.check_same(OpKind::CtCtAdd, &acc, c.level, s, c.fp)?;
            }
            ws.push(
                (0..=level.0 as usize)
                    .map(|j| self.ring.moduli[j].reduce_f64_integer(k))
                    .collect::<Vec<u64>>(),
            );
        }
        let noise = noise.unwrap_or(Noise { var: 0.0, msg: 0.0 });
        Ok((level, out_scale, ws, noise))
    }

    /// The products of a ciphertext x plaintext dot product, accumulated
    /// lazily: `cts[i]` times the NTT-form polynomial `pts[i]`.
    pub(super) fn mac(&self, cts: &[&CkksCiphertext], pts: &[&[u64]]) -> Vec<Vec<u64>> {
        let n = self.n();
        let l = cts[0].level.0 as usize;
        let size = cts.iter().map(|c| c.size()).max().unwrap_or(2);
        (0..size)
            .map(|c| {
                let terms: Vec<(usize, &[u64])> = cts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, ct)| ct.polys.get(c).map(|p| (i, p.as_slice())))
                    .collect();
                let mut out = vec![0u64; (l + 1) * n];
                for_limbs(&mut out, n, |j, o| {
                    let m = &self.ring.moduli[j];
                    let range = j * n..(j + 1) * n;
                    let ps: Vec<(&[u64], &[u64])> = terms
                        .iter()
                        .map(|&(i, p)| (&p[range.clone()], &pts[i][range.clone()]))
                        .collect();
                    mac_plain_limb(m, &ps, o);
                });
                out
            })
            .collect()
    }

    /// [`HeScheme::dot_plain`]: checks every term, then one lazily reduced
    /// multiply-accumulate over the limbs.
    pub(super) fn dot_plain_lazy(
        &self,
        cts: &[&CkksCiphertext],
        pts: &[&CkksPlaintext],
    ) -> Result<CkksCiphertext> {
        check_terms(OpKind::CtPtMul, cts.len(), pts.len())?;
        let (level, scale) = (cts[0].level, cts[0].scale * pts[0].scale);
        let mut noise = cts[0].noise.mul_plain(pts[0].norm_sq);
        for (i, (c, p)) in cts.iter().zip(pts).enumerate() {
            self.check_fp(c.fp, OpKind::CtPtMul)?;
            self.check_fp(p.fp, OpKind::CtPtMul)?;
            self.check_key(OpKind::CtCtAdd, cts[0].key, c.key)?;
            crate::he::checks::same_level(OpKind::CtPtMul, c.level, p.level)?;
            let s = c.scale * p.scale;
            self.check_scale_room(OpKind::CtPtMul, c.level, s)?;
            if i > 0 {
                let acc = CkksCiphertext {
                    polys: Vec::new(),
                    level,
                    scale,
                    fp: self.fp,
                    key: c.key,
                    noise,
                };
                self.check_same(OpKind::CtCtAdd, &acc, c.level, s, c.fp)?;
                noise = noise.add(c.noise.mul_plain(p.norm_sq));
            }
        }
        let polys = self.mac(
            cts,
            &pts.iter().map(|p| p.poly.as_slice()).collect::<Vec<_>>(),
        );
        Ok(CkksCiphertext {
            polys,
            level,
            scale,
            fp: self.fp,
            key: cts[0].key,
            noise,
        })
    }

    /// [`HeScheme::dot_scalar_many`]: checks every row, then one blocked
    /// multiply-accumulate for all rows at a common level (rows at
    /// different levels go one at a time).
    pub(super) fn dot_scalar_blocked(
        &self,
        cts: &[&CkksCiphertext],
        rows: &[Vec<(usize, f64)>],
        scale: Scale,
    ) -> Result<Vec<CkksCiphertext>> {
        let mut checked = Vec::with_capacity(rows.len());
        for row in rows {
            let (terms, ws) = crate::he::checks::row_terms(cts, row)?;
            let (level, out_scale, ws, noise) = self.scalar_terms(&terms, &ws, scale)?;
            let size = terms.iter().map(|c| c.size()).max().unwrap_or(2);
            let key = terms.first().map(|c| c.key);
            checked.push((level, out_scale, size, ws, noise, key));
        }
        let Some(&(level, ..)) = checked.first() else {
            return Ok(Vec::new());
        };
        if checked.iter().any(|c| c.0 != level) {
            // Rows at different levels share no limbs: one at a time.
            return rows
                .iter()
                .map(|row| {
                    let (terms, ws) = crate::he::checks::row_terms(cts, row)?;
                    self.dot_scalar(&terms, &ws, scale)
                })
                .collect();
        }
        let jobs: Vec<BlockRow<'_>> = rows
            .iter()
            .zip(&checked)
            .flat_map(|(row, (_, _, size, ws, _, _))| {
                (0..*size).map(move |c| BlockRow {
                    terms: row
                        .iter()
                        .zip(ws)
                        .filter_map(|(&(i, _), w)| {
                            cts[i].polys.get(c).map(|p| (p.as_slice(), w.as_slice()))
                        })
                        .collect(),
                })
            })
            .collect();
        let polys = blocked_mac(&self.ring, level.0 as usize + 1, &jobs);
        let mut polys = polys.into_iter();
        Ok(checked
            .into_iter()
            .map(|(level, scale, size, _, noise, key)| CkksCiphertext {
                polys: polys.by_ref().take(size).collect(),
                level,
                scale,
                fp: self.fp,
                key: key.unwrap_or(KeyId::from_bytes([0; 16])),
                noise,
            })
            .collect())
    }
}

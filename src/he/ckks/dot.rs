//! The CKKS side of dot products: checking and reducing the terms of a
//! scalar dot product, and the lazily accumulated ciphertext x plaintext
//! products (the SIMD multiply-accumulate kernels are in `kernels_mac`).

use super::kernels_mac::mac_plain_limb;
use super::noise::Noise;
use super::ops::scaled_integer;
use super::poly::for_limbs;
use super::{Ckks, CkksCiphertext};
use crate::he::error::Result;
use crate::he::{Level, OpKind, Scale, check_terms};

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
}

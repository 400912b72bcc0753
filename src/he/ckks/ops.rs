//! [`HeScheme`] for [`Ckks`]: keys, encoding, encryption and the
//! homomorphic operations, with the simulator's error behaviour.

use rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use super::kernels::{add_assign_limb, sub_assign_limb};
use super::keys::{self, CkksEvalKeys, CkksPublicKey, CkksSecretKey, GaloisKey};
use super::modulus::{Modulus, Shoup};
use super::noise::{self, Noise};
use super::ntt::permute;
use super::rns::{
    Ring, join, parallel, recycle, sample_error, sample_ternary, take_copy, take_scratch,
    take_zeroed,
};
use super::{Ckks, CkksCiphertext, CkksParams, CkksPlaintext};
use crate::he::OpKind;
use crate::he::error::{Error, Result};
use crate::he::{
    EvaluationKeys, HeScheme, KeyId, KeyRequirements, Level, Rotation, Scale, check_terms,
};

/// Runs `f(limb_index, limb)` over the limbs of `a`, in parallel when large.
fn for_limbs<F>(a: &mut [u64], n: usize, f: F)
where
    F: Fn(usize, &mut [u64]) + Send + Sync,
{
    if parallel(a.len()) {
        a.par_chunks_mut(n).enumerate().for_each(|(j, l)| f(j, l));
    } else {
        a.chunks_mut(n).enumerate().for_each(|(j, l)| f(j, l));
    }
}

/// `a = a * b` pointwise over limbs `0..`, using a scratch buffer per limb.
fn mul_assign_poly(ring: &Ring, a: &mut [u64], b: &[u64]) {
    let n = ring.n;
    for_limbs(a, n, |j, limb| {
        let mut acc = take_zeroed(n);
        ring.mul_acc(j, &mut acc, limb, &b[j * n..(j + 1) * n]);
        limb.copy_from_slice(&acc);
        recycle(acc);
    });
}

/// `a * b` pointwise into a new polynomial.
fn mul_poly(ring: &Ring, a: &[u64], b: &[u64]) -> Vec<u64> {
    let n = ring.n;
    let mut out = vec![0u64; a.len()];
    for_limbs(&mut out, n, |j, o| {
        ring.mul_acc(j, o, &a[j * n..(j + 1) * n], &b[j * n..(j + 1) * n]);
    });
    out
}

fn add_assign_poly(ring: &Ring, a: &mut [u64], b: &[u64]) {
    let n = ring.n;
    for_limbs(a, n, |j, limb| {
        add_assign_limb(&ring.moduli[j], limb, &b[j * n..(j + 1) * n]);
    });
}

fn sub_assign_poly(ring: &Ring, a: &mut [u64], b: &[u64]) {
    let n = ring.n;
    for_limbs(a, n, |j, limb| {
        sub_assign_limb(&ring.moduli[j], limb, &b[j * n..(j + 1) * n]);
    });
}

/// Galois element of the left rotation by `k` slots: `5^k mod 2N`.
pub(crate) fn rotation_element(n: usize, k: usize) -> u64 {
    let two_n = 2 * n as u64;
    let mut g = 1u64;
    for _ in 0..k {
        g = (g * 5) % two_n;
    }
    g
}

/// The integer `round(c * scale)` as an exact integral `f64`.
fn scaled_integer(op: OpKind, c: f64, scale: Scale) -> Result<f64> {
    let k = (c * scale.value()).round();
    if !c.is_finite() || !k.is_finite() {
        return Err(Error::ValueOutOfRange { op, value: c });
    }
    Ok(k)
}

impl Ckks {
    fn check_same(
        &self,
        op: OpKind,
        a: &CkksCiphertext,
        level: Level,
        scale: Scale,
        fp: u64,
    ) -> Result<()> {
        self.check_fp(a.fp, op)?;
        self.check_fp(fp, op)?;
        crate::he::checks::same_level_scale(op, (a.level, a.scale), (level, scale))
    }

    /// Divides one polynomial at level `l >= 1` by `q_l`, rounding to nearest.
    pub(super) fn rescale_poly(&self, poly: &mut Vec<u64>, l: usize) {
        let ring = &*self.ring;
        let n = ring.n;
        let mut last = take_copy(&poly[l * n..(l + 1) * n]);
        ring.inverse(l, &mut last);
        let ql = ring.moduli[l].value();
        let half = ql / 2;
        poly.truncate(l * n);
        let inv = &self.rescale_inv[l];
        let last_ref = &last;
        let arch = super::simd::arch();
        for_limbs(poly, n, |j, limb| {
            let m = &ring.moduli[j];
            let mut t = take_scratch(n); // both branches write every word
            if m.value() < 1 << 32 && ql < 1 << 32 {
                let k = Rescale32::new(m, ql, inv[j].w);
                arch.dispatch(RescaleStep {
                    k: &k,
                    first: true,
                    a: &mut t,
                    b: last_ref,
                });
                ring.forward(j, &mut t);
                arch.dispatch(RescaleStep {
                    k: &k,
                    first: false,
                    a: limb,
                    b: &t,
                });
            } else {
                // Centred last limb modulo q_j, without data-dependent
                // branches: r > q_l / 2 stands for r - q_l. When q_l < 2 q_j
                // (primes of similar size), r mod q_j is one conditional
                // subtraction instead of a Barrett reduction.
                let ql_j = m.reduce(ql);
                let q = m.value();
                if ql <= 2 * q {
                    arch.dispatch(|| {
                        for (o, &r) in t.iter_mut().zip(last_ref.iter()) {
                            let rj = r - (q & 0u64.wrapping_sub(u64::from(r >= q)));
                            let shift = ql_j & 0u64.wrapping_sub(u64::from(r > half));
                            *o = rj
                                .wrapping_sub(shift)
                                .wrapping_add(q & 0u64.wrapping_sub(u64::from(rj < shift)));
                        }
                    });
                } else {
                    for (o, &r) in t.iter_mut().zip(last_ref.iter()) {
                        let shift = ql_j & 0u64.wrapping_sub(u64::from(r > half));
                        *o = m.sub(m.reduce(r), shift);
                    }
                }
                ring.forward(j, &mut t);
                let w = inv[j];
                for (x, &y) in limb.iter_mut().zip(&t) {
                    *x = m.mul_shoup(m.sub(*x, y), w);
                }
            }
            recycle(t);
        });
        recycle(last);
    }

    /// Hoisted rotations: one decomposition of `c1`, then per step an inner
    /// product and a mod-down with that step's key (which switches from `s`
    /// to `sigma^-1(s)`), giving `(e0, e1)` with `e0 + e1 sigma^-1(s) ~ c1 s`;
    /// applying `sigma` (an NTT-domain permutation) to `c0 + e0` and `e1`
    /// gives the rotation `(sigma(c0) + sigma(e0), sigma(e1))` under `s`.
    fn rotate_hoisted(
        &self,
        a: &CkksCiphertext,
        keys: &[Option<&GaloisKey>],
    ) -> Vec<CkksCiphertext> {
        let l = a.level.0 as usize;
        let n = self.n();
        let dec = if keys.iter().any(Option::is_some) {
            Some(self.decompose(&a.polys[1], l))
        } else {
            None
        };
        keys.iter()
            .map(|key| match (key, &dec) {
                (Some(gk), Some(dec)) => {
                    let [e0, e1] = self.switch(dec, &gk.key, [Some(&a.polys[0]), None]);
                    // permute writes every word
                    let mut d0 = take_scratch(e0.len());
                    let mut d1 = take_scratch(e1.len());
                    for_limbs(&mut d0, n, |j, limb| {
                        permute(limb, &e0[j * n..(j + 1) * n], &gk.perm);
                    });
                    for_limbs(&mut d1, n, |j, limb| {
                        permute(limb, &e1[j * n..(j + 1) * n], &gk.perm);
                    });
                    recycle(e0);
                    recycle(e1);
                    CkksCiphertext {
                        polys: vec![d0, d1],
                        level: a.level,
                        scale: a.scale,
                        fp: self.fp,
                        key: a.key,
                        noise: a.noise.key_switch(self.ks_var),
                    }
                }
                _ => a.clone(),
            })
            .collect()
    }

    fn rotation_checks<'k>(
        &self,
        a: &CkksCiphertext,
        step: Rotation,
        keys: &'k CkksEvalKeys,
    ) -> Result<Option<&'k GaloisKey>> {
        self.check_fp(a.fp, OpKind::Rotation)?;
        self.check_fp(keys.fp, OpKind::Rotation)?;
        self.check_key(OpKind::Rotation, keys.key, a.key)?;
        if a.size() != 2 {
            return Err(Error::CiphertextSize {
                op: OpKind::Rotation,
                size: a.size(),
                expected: 2,
            });
        }
        if !keys.supports_rotation(step) {
            return Err(Error::MissingRotationKey { step });
        }
        let k = step.normalized(self.slot_count());
        Ok(keys.rotations.get(&k))
    }

    fn galois_key<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        g: u64,
        rng: &mut R,
    ) -> GaloisKey {
        let ring = &*self.ring;
        let n = ring.n;
        // The key switches from s to sigma^-1(s): the rotation key-switches
        // c_1 itself and applies sigma once to the results (see rotate_hoisted).
        let two_n = 2 * n as u64;
        let mut g_inv = 1u64;
        for _ in 0..n - 1 {
            g_inv = (g_inv * g) % two_n;
        }
        let perm_inv = ring.galois.permutation(g_inv);
        let mut s_inv = vec![0u64; sk.ntt.len()];
        for (o, i) in s_inv.chunks_mut(n).zip(sk.ntt.chunks(n)) {
            permute(o, i, &perm_inv);
        }
        let key = keys::switching_key(ring, &sk.ntt, &s_inv, &self.p_inv, rng);
        zeroize::Zeroize::zeroize(&mut s_inv);
        GaloisKey {
            key,
            perm: ring.galois.permutation(g),
        }
    }

    /// Checks the terms of a scalar dot product and reduces each weight,
    /// `round(w * scale)`, modulo every prime of the level: `(level, output
    /// scale, per-term limb weights, noise of the sum)`.
    fn scalar_terms(
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
    fn mac(&self, cts: &[&CkksCiphertext], pts: &[&[u64]]) -> Vec<Vec<u64>> {
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

/// Constants of a rescale step modulo `q_j < 2^32` when the dropped prime
/// `q_l < 2^32` too: every product then fits in 64 bits, so the loops use
/// plain 64-bit lanes (Shoup's method with 32-bit companions) and vectorise.
struct Rescale32 {
    q: u64,
    /// `floor(2^32 / q)`, to reduce values below `2^32`.
    one_s: u64,
    /// `q_l mod q`.
    ql_j: u64,
    /// `floor(q_l / 2)`.
    half: u64,
    /// `q_l^-1 mod q` and `floor(inv * 2^32 / q)`.
    inv: u64,
    inv_s: u64,
}

impl Rescale32 {
    fn new(m: &Modulus, ql: u64, inv: u64) -> Rescale32 {
        let q = m.value();
        Rescale32 {
            q,
            one_s: (1u64 << 32) / q,
            ql_j: m.reduce(ql),
            half: ql / 2,
            inv,
            inv_s: (inv << 32) / q,
        }
    }

    /// `a * w mod q` for `a, w < 2^32`, `ws = floor(w * 2^32 / q)`.
    #[inline(always)]
    fn mul(&self, a: u64, w: u64, ws: u64) -> u64 {
        let qh = (a * ws) >> 32;
        let r = (a * w).wrapping_sub(qh * self.q);
        r - (self.q & 0u64.wrapping_sub(u64::from(r >= self.q)))
    }

    /// `a - b mod q` for `a, b < q`.
    #[inline(always)]
    fn sub(&self, a: u64, b: u64) -> u64 {
        a.wrapping_sub(b)
            .wrapping_add(self.q & 0u64.wrapping_sub(u64::from(a < b)))
    }
}

/// One loop of a rescale step as a `pulp` operation (see [`MacBlock`]):
/// `first`: `a = centred(b) mod q` from the dropped limb `b`;
/// otherwise `a = (a - b) * q_l^-1 mod q`.
struct RescaleStep<'r> {
    k: &'r Rescale32,
    first: bool,
    a: &'r mut [u64],
    b: &'r [u64],
}

impl pulp::WithSimd for RescaleStep<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let k = self.k;
        if self.first {
            for (o, &r) in self.a.iter_mut().zip(self.b) {
                let rj = k.mul(r, 1, k.one_s);
                let shift = k.ql_j & 0u64.wrapping_sub(u64::from(r > k.half));
                *o = k.sub(rj, shift);
            }
        } else {
            for (x, &y) in self.a.iter_mut().zip(self.b) {
                *x = k.mul(k.sub(*x, y), k.inv, k.inv_s);
            }
        }
    }
}

/// One output polynomial of [`blocked_mac`]: `(input polynomial, its
/// multiplier reduced modulo every prime)` per term.
struct BlockRow<'a> {
    terms: Vec<(&'a [u64], &'a [u64])>,
}

/// Coefficients per block of [`blocked_mac`]: a block of every input of a
/// convolution window stays in L1/L2 while all its outputs read it.
const MAC_BLOCK: usize = 512;

/// `out[r] = sum_t terms[r][t].0 * terms[r][t].1[limb]` over the first
/// `limbs` limbs, block by block: every output's terms are read for one
/// block of coefficients before moving on, so an input shared by many
/// outputs is fetched from memory once, not once per output. Blocks run in
/// parallel; each output coefficient is reduced once per
/// [`Modulus::MAX_LAZY_TERMS`] terms (products summed in 128 bits).
fn blocked_mac(ring: &Ring, limbs: usize, rows: &[BlockRow<'_>]) -> Vec<Vec<u64>> {
    let n = ring.n;
    let block = MAC_BLOCK.min(n);
    let mut outs: Vec<Vec<u64>> = rows.iter().map(|_| vec![0u64; limbs * n]).collect();
    let blocks = limbs * n / block;
    let mut per_block: Vec<Vec<&mut [u64]>> = (0..blocks)
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    for out in &mut outs {
        for (b, chunk) in out.chunks_mut(block).enumerate() {
            per_block[b].push(chunk);
        }
    }
    let arch = super::simd::arch();
    let work = |(b, chunks): (usize, Vec<&mut [u64]>)| {
        let start = b * block;
        let j = start / n;
        let m = &ring.moduli[j];
        let kernel = if m.value() < 1 << 32 {
            MacKernel::Split32
        } else if m.value() < 1 << 50 && rows.iter().all(|r| r.terms.len() <= MAC48_MAX_TERMS) {
            MacKernel::Split50
        } else {
            MacKernel::Wide
        };
        arch.dispatch(MacBlock {
            kernel,
            m,
            j,
            start,
            block,
            rows,
            chunks,
        });
    };
    if parallel(limbs * n * rows.len()) {
        per_block.into_par_iter().enumerate().for_each(work);
    } else {
        per_block.into_iter().enumerate().for_each(work);
    }
    outs
}

/// Which multiply-accumulate kernel a block's prime allows.
#[derive(Clone, Copy)]
enum MacKernel {
    /// `q < 2^32`: [`mac_block_32`].
    Split32,
    /// `q < 2^50`: [`mac_block_48`].
    Split50,
    /// Any `q < 2^61`: [`mac_block_wide`].
    Wide,
}

/// One block of [`blocked_mac`]: limb `j`, coefficients `start..start +
/// block` of every row, written to `chunks`. A `pulp` operation: its
/// `with_simd` is inlined into a function compiled for the detected
/// instruction set, and the kernels are `#[inline(always)]`, so their loops
/// vectorise with AVX2 / AVX-512 (a closure would not be inlined and would
/// stay at the baseline's 128-bit vectors).
struct MacBlock<'r, 'a> {
    kernel: MacKernel,
    m: &'r Modulus,
    j: usize,
    start: usize,
    block: usize,
    rows: &'r [BlockRow<'a>],
    chunks: Vec<&'r mut [u64]>,
}

impl pulp::WithSimd for MacBlock<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        match self.kernel {
            MacKernel::Split32 => mac_block_32(self),
            MacKernel::Split50 => mac_block_48(self),
            MacKernel::Wide => mac_block_wide(self),
        }
    }
}

/// One block of [`blocked_mac`] for `q < 2^32`: products of two values
/// below `2^32` fit in 64 bits; their low and high halves are summed in two
/// `u64` accumulators (no overflow below `2^32` terms) and combined once.
/// Plain 64-bit lanes, so the compiler vectorises it (inlined into
/// `pulp`'s dispatch, with AVX2 / AVX-512 where the CPU has them).
#[inline(always)]
fn mac_block_32(b: MacBlock<'_, '_>) {
    let MacBlock {
        m,
        j,
        start,
        block,
        rows,
        chunks,
        ..
    } = b;
    const LOW: u64 = 0xffff_ffff;
    let mut lo = [0u64; MAC_BLOCK];
    let mut hi = [0u64; MAC_BLOCK];
    let (lo, hi) = (&mut lo[..block], &mut hi[..block]);
    let two32 = m.reduce(1 << 32);
    for (row, out) in rows.iter().zip(chunks) {
        lo.fill(0);
        hi.fill(0);
        // Four terms per pass: the accumulators are loaded and stored once
        // per four products (each half of a product is below 2^32).
        let mut quads = row.terms.chunks_exact(4);
        for q in quads.by_ref() {
            let [(x0, w0), (x1, w1), (x2, w2), (x3, w3)] = [q[0], q[1], q[2], q[3]];
            let (w0, w1, w2, w3) = (w0[j] & LOW, w1[j] & LOW, w2[j] & LOW, w3[j] & LOW);
            let r = start..start + block;
            let (x0, x1, x2, x3) = (&x0[r.clone()], &x1[r.clone()], &x2[r.clone()], &x3[r]);
            for k in 0..block {
                let p0 = (x0[k] & LOW) * w0;
                let p1 = (x1[k] & LOW) * w1;
                let p2 = (x2[k] & LOW) * w2;
                let p3 = (x3[k] & LOW) * w3;
                lo[k] += (p0 & LOW) + (p1 & LOW) + (p2 & LOW) + (p3 & LOW);
                hi[k] += (p0 >> 32) + (p1 >> 32) + (p2 >> 32) + (p3 >> 32);
            }
        }
        for &(x, w) in quads.remainder() {
            let w = w[j] & LOW;
            let x = &x[start..start + block];
            for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(x) {
                let p = (v & LOW) * w;
                *l += p & LOW;
                *h += p >> 32;
            }
        }
        for ((o, &l), &h) in out.iter_mut().zip(lo.iter()).zip(hi.iter()) {
            *o = m.add(m.mul(m.reduce(h), two32), m.reduce(l));
        }
    }
}

/// Most terms per output [`mac_block_48`] can sum: its middle accumulator
/// gains less than `2^51` per term and must stay below `2^64`.
const MAC48_MAX_TERMS: usize = 1 << 12;

/// One block of [`blocked_mac`] for `2^32 <= q < 2^50` (e.g. the 48-bit
/// base prime): with `x = xh 2^32 + xl` and `w = wh 2^32 + wl` (halves below
/// `2^32`, high halves below `2^18`), `x w = xh wh 2^64 + (xh wl + xl wh)
/// 2^32 + xl wl`; each partial product fits in 64 bits and goes to its own
/// 64-bit accumulator (`xl wl` split in halves), so the loop vectorises
/// like [`mac_block_32`] at four multiplies per term instead of one.
#[inline(always)]
fn mac_block_48(b: MacBlock<'_, '_>) {
    let MacBlock {
        m,
        j,
        start,
        block,
        rows,
        chunks,
        ..
    } = b;
    const LOW: u64 = 0xffff_ffff;
    let mut lo = [0u64; MAC_BLOCK];
    let mut mid = [0u64; MAC_BLOCK];
    let mut hi = [0u64; MAC_BLOCK];
    let (lo, mid, hi) = (&mut lo[..block], &mut mid[..block], &mut hi[..block]);
    let two32 = m.reduce(1 << 32);
    let two64 = m.mul(two32, two32);
    for (row, out) in rows.iter().zip(chunks) {
        lo.fill(0);
        mid.fill(0);
        hi.fill(0);
        for &(x, w) in &row.terms {
            let (wl, wh) = (w[j] & LOW, w[j] >> 32);
            let x = &x[start..start + block];
            for (((l, md), h), &v) in lo.iter_mut().zip(mid.iter_mut()).zip(hi.iter_mut()).zip(x) {
                let (xl, xh) = (v & LOW, v >> 32);
                let p = xl * wl;
                *l += p & LOW;
                *md += (p >> 32) + xl * wh + xh * wl;
                *h += xh * wh;
            }
        }
        for (((o, &l), &md), &h) in out.iter_mut().zip(lo.iter()).zip(mid.iter()).zip(hi.iter()) {
            let v = m.add(m.mul(m.reduce(h), two64), m.mul(m.reduce(md), two32));
            *o = m.add(v, m.reduce(l));
        }
    }
}

/// One block of [`blocked_mac`] for any `q < 2^61`: products summed in
/// `u128`, reduced every [`Modulus::MAX_LAZY_TERMS`] terms.
#[inline(always)]
fn mac_block_wide(b: MacBlock<'_, '_>) {
    let MacBlock {
        m,
        j,
        start,
        block,
        rows,
        chunks,
        ..
    } = b;
    let mut acc = [0u128; MAC_BLOCK];
    let acc = &mut acc[..block];
    for (row, out) in rows.iter().zip(chunks) {
        acc.fill(0);
        for chunk in row.terms.chunks(Modulus::MAX_LAZY_TERMS) {
            for &(x, w) in chunk {
                let w = u128::from(w[j]);
                for (a, &v) in acc.iter_mut().zip(&x[start..start + block]) {
                    *a += u128::from(v) * w;
                }
            }
            for a in acc.iter_mut() {
                *a = u128::from(m.reduce_u128(*a));
            }
        }
        for (o, &a) in out.iter_mut().zip(acc.iter()) {
            *o = a as u64;
        }
    }
}

fn mac_plain_limb(m: &Modulus, terms: &[(&[u64], &[u64])], out: &mut [u64]) {
    for chunk in terms.chunks(Modulus::MAX_LAZY_TERMS) {
        for (k, o) in out.iter_mut().enumerate() {
            let mut acc = u128::from(*o);
            for &(x, p) in chunk {
                acc += u128::from(x[k]) * u128::from(p[k]);
            }
            *o = m.reduce_u128(acc);
        }
    }
}

impl HeScheme for Ckks {
    type Params = CkksParams;
    type Plaintext = CkksPlaintext;
    type Ciphertext = CkksCiphertext;
    type SecretKey = CkksSecretKey;
    type PublicKey = CkksPublicKey;
    type EvalKeys = CkksEvalKeys;
    type Value = f64;

    const NAME: &'static str = "ckks";

    fn params(&self) -> &CkksParams {
        &self.params
    }
    fn slot_count(&self) -> usize {
        self.params.slots()
    }
    fn max_level(&self) -> Level {
        self.params.max_level()
    }
    fn default_scale(&self) -> Scale {
        self.params.default_scale()
    }
    fn rescale_divisor(&self, level: Level) -> Result<f64> {
        if level.0 == 0 || level > self.max_level() {
            return Err(Error::LevelExhausted {
                op: OpKind::Rescale,
                level,
                needed: Level(1),
            });
        }
        Ok(self.params.moduli()[level.0 as usize] as f64)
    }
    fn level(&self, ct: &CkksCiphertext) -> Level {
        ct.level
    }
    fn scale(&self, ct: &CkksCiphertext) -> Scale {
        ct.scale
    }
    fn plaintext_level(&self, pt: &CkksPlaintext) -> Level {
        pt.level
    }
    fn plaintext_scale(&self, pt: &CkksPlaintext) -> Scale {
        pt.scale
    }

    fn generate_secret_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<CkksSecretKey> {
        let ring = &*self.ring;
        let coeffs = sample_ternary(ring.n, rng);
        let basis: Vec<usize> = (0..ring.num_q + ring.num_p).collect();
        let ntt = ring.small_to_ntt(&coeffs, &basis);
        let key = keys::secret_key_id(self.fp, &coeffs);
        Ok(CkksSecretKey {
            coeffs,
            ntt,
            fp: self.fp,
            key,
        })
    }

    fn generate_public_key<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        rng: &mut R,
    ) -> Result<CkksPublicKey> {
        self.check_fp(sk.fp, OpKind::KeyGen)?;
        Ok(keys::public_key(&self.ring, &sk.ntt, self.fp, sk.key, rng))
    }

    fn generate_eval_keys<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        req: &KeyRequirements,
        rng: &mut R,
    ) -> Result<CkksEvalKeys> {
        self.check_fp(sk.fp, OpKind::KeyGen)?;
        let ring = &*self.ring;
        let n = ring.n;
        let relin = if req.relinearization() {
            let mut s2 = vec![0u64; sk.ntt.len()];
            for (p, (o, s)) in s2.chunks_mut(n).zip(sk.ntt.chunks(n)).enumerate() {
                ring.mul_acc(p, o, s, s);
            }
            let key = keys::switching_key(ring, &s2, &sk.ntt, &self.p_inv, rng);
            zeroize::Zeroize::zeroize(&mut s2);
            Some(key)
        } else {
            None
        };
        let conj = if req.conjugation() {
            Some(self.galois_key(sk, 2 * n as u64 - 1, rng))
        } else {
            None
        };
        let mut rotations = std::collections::BTreeMap::new();
        for k in req.normalized_rotations(self.slot_count()) {
            let g = rotation_element(n, k);
            rotations.insert(k, self.galois_key(sk, g, rng));
        }
        Ok(CkksEvalKeys {
            fp: self.fp,
            key: sk.key,
            slots: self.slot_count(),
            relin,
            conj,
            rotations,
        })
    }

    fn encode(&self, values: &[f64], level: Level, scale: Scale) -> Result<CkksPlaintext> {
        let slots = self.slot_count();
        crate::he::checks::encode_args(values.len(), slots, level, self.max_level())?;
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::ValueOutOfRange {
                op: OpKind::Encode,
                value: *bad,
            });
        }
        let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let log_q = self.params.log_modulus_at(level);
        if scale.log2() + max.max(1.0).log2() + 1.0 >= log_q {
            return Err(Error::ScaleOverflow {
                op: OpKind::Encode,
                scale_log2: scale.log2(),
                modulus_log2: log_q,
                level,
            });
        }
        let coeffs = self.encoder.encode(values, scale.value());
        let norm_sq = coeffs.iter().map(|c| c * c).sum();
        let n = self.n();
        let l = level.0 as usize;
        let mut poly = vec![0u64; (l + 1) * n];
        let ring = &*self.ring;
        let small = coeffs.iter().all(|c| c.abs() < 9.2e18);
        let ints: Vec<i64> = if small {
            coeffs.iter().map(|&c| c as i64).collect()
        } else {
            Vec::new()
        };
        for_limbs(&mut poly, n, |j, limb| {
            let m = &ring.moduli[j];
            if small {
                for (o, &c) in limb.iter_mut().zip(&ints) {
                    *o = m.reduce_i64(c);
                }
            } else {
                for (o, &c) in limb.iter_mut().zip(&coeffs) {
                    *o = m.reduce_f64_integer(c);
                }
            }
            ring.forward(j, limb);
        });
        Ok(CkksPlaintext {
            poly,
            level,
            scale,
            fp: self.fp,
            norm_sq,
        })
    }

    fn decode(&self, pt: &CkksPlaintext) -> Result<Vec<f64>> {
        self.check_fp(pt.fp, OpKind::Encode)?;
        let l = pt.level.0 as usize;
        let mut coeffs = pt.poly.clone();
        let basis: Vec<usize> = (0..=l).collect();
        self.ring.inverse_all(&mut coeffs, &basis);
        let m = self.centred_coeffs(&coeffs, l);
        Ok(self.encoder.decode(&m, pt.scale.value()))
    }

    fn encrypt<R: RngCore + CryptoRng>(
        &self,
        pk: &CkksPublicKey,
        pt: &CkksPlaintext,
        rng: &mut R,
    ) -> Result<CkksCiphertext> {
        self.check_fp(pk.fp, OpKind::Encrypt)?;
        self.check_fp(pt.fp, OpKind::Encrypt)?;
        let ring = &*self.ring;
        let n = ring.n;
        let l = pt.level.0 as usize;
        let basis = ring.extended_basis(l);
        // The randomness (u, e0, e1) decides the noise: whoever holds it and
        // the ciphertext learns the message, so every copy is zeroised
        // before it is freed.
        let mut u_small = sample_ternary(n, rng);
        let mut e0 = sample_error(n, rng);
        let mut e1 = sample_error(n, rng);
        let mut u = ring.small_to_ntt(&u_small, &basis);
        zeroize::Zeroize::zeroize(&mut u_small);
        // Encrypt modulo Q_l * P, then divide by P: the noise u*e + e0 + e1*s
        // shrinks by P, leaving only the rounding error.
        let mut c0 = ring.small_to_ntt(&e0, &basis);
        let mut c1 = ring.small_to_ntt(&e1, &basis);
        zeroize::Zeroize::zeroize(&mut e0);
        zeroize::Zeroize::zeroize(&mut e1);
        for (e, (x0, x1)) in c0.chunks_mut(n).zip(c1.chunks_mut(n)).enumerate() {
            let p = basis[e];
            let ul = &u[e * n..(e + 1) * n];
            ring.mul_acc(p, x0, ul, &pk.b[p * n..(p + 1) * n]);
            ring.mul_acc(p, x1, ul, &pk.a[p * n..(p + 1) * n]);
        }
        zeroize::Zeroize::zeroize(&mut u);
        let words = c0.len();
        let (mut c0, c1) = join(words, || self.mod_down(c0, l), || self.mod_down(c1, l));
        add_assign_poly(ring, &mut c0, &pt.poly);
        Ok(CkksCiphertext {
            polys: vec![c0, c1],
            level: pt.level,
            scale: pt.scale,
            fp: self.fp,
            key: pk.key,
            noise: Noise::fresh_public(ring, pt.norm_sq),
        })
    }

    /// `c1 = a` uniform (expanded from a fresh seed, directly in NTT form),
    /// `c0 = -a s + e + m`: one NTT per limb (for `e`) instead of
    /// public-key encryption's four. See [`Ckks::encrypt_secret_seeded`].
    fn encrypt_secret<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        pt: &CkksPlaintext,
        rng: &mut R,
    ) -> Result<CkksCiphertext> {
        let seeded = self.encrypt_secret_seeded(sk, pt, rng)?;
        self.expand(&seeded)
    }

    fn decrypt(&self, sk: &CkksSecretKey, ct: &CkksCiphertext) -> Result<CkksPlaintext> {
        self.check_fp(sk.fp, OpKind::Decrypt)?;
        self.check_fp(ct.fp, OpKind::Decrypt)?;
        self.check_key(OpKind::Decrypt, sk.key, ct.key)?;
        let ring = &*self.ring;
        let n = ring.n;
        let l = ct.level.0 as usize;
        let mut m = ct.polys[0].clone();
        let s = &sk.ntt[..(l + 1) * n];
        // Horner: c0 + s (c1 + s (c2 + ...)).
        let mut acc: Option<Vec<u64>> = None;
        for c in ct.polys[1..].iter().rev() {
            let mut t = c.clone();
            if let Some(prev) = acc.take() {
                let prod = mul_poly(ring, &prev, s);
                add_assign_poly(ring, &mut t, &prod);
            }
            acc = Some(t);
        }
        if let Some(top) = acc {
            let prod = mul_poly(ring, &top, s);
            add_assign_poly(ring, &mut m, &prod);
        }
        Ok(CkksPlaintext {
            poly: m,
            level: ct.level,
            scale: ct.scale,
            fp: self.fp,
            norm_sq: ct.noise.msg + n as f64 * ct.noise.var,
        })
    }

    /// Exact decryption, then a rounded Gaussian of standard deviation
    /// `2^flooding_bits` times the ciphertext's estimated error
    /// ([`CkksCiphertext::noise_log2`]) added to every coefficient.
    fn decrypt_flooded<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        ct: &CkksCiphertext,
        flooding_bits: u32,
        rng: &mut R,
    ) -> Result<CkksPlaintext> {
        let mut pt = self.decrypt(sk, ct)?;
        let std = noise::flood(
            &self.ring,
            &mut pt.poly,
            ct.level.0 as usize,
            ct.noise.var,
            flooding_bits,
            rng,
        );

        pt.norm_sq += self.n() as f64 * std * std;
        Ok(pt)
    }

    fn secret_key_id(&self, sk: &CkksSecretKey) -> KeyId {
        sk.key
    }

    fn public_key_id(&self, pk: &CkksPublicKey) -> KeyId {
        pk.key
    }

    fn ciphertext_key_id(&self, ct: &CkksCiphertext) -> KeyId {
        ct.key
    }

    fn check_eval_keys(&self, keys: &CkksEvalKeys) -> Result<()> {
        self.check_fp(keys.fp, OpKind::KeyGen)
    }

    fn add_assign(&self, a: &mut CkksCiphertext, b: &CkksCiphertext) -> Result<()> {
        self.check_same(OpKind::CtCtAdd, a, b.level, b.scale, b.fp)?;
        self.check_key(OpKind::CtCtAdd, a.key, b.key)?;
        a.noise = a.noise.add(b.noise);
        for (x, y) in a.polys.iter_mut().zip(&b.polys) {
            add_assign_poly(&self.ring, x, y);
        }
        if b.size() > a.size() {
            a.polys.extend(b.polys[a.size()..].iter().cloned());
        }
        Ok(())
    }

    fn sub_assign(&self, a: &mut CkksCiphertext, b: &CkksCiphertext) -> Result<()> {
        self.check_same(OpKind::CtCtAdd, a, b.level, b.scale, b.fp)?;
        self.check_key(OpKind::CtCtAdd, a.key, b.key)?;
        a.noise = a.noise.add(b.noise);
        for (x, y) in a.polys.iter_mut().zip(&b.polys) {
            sub_assign_poly(&self.ring, x, y);
        }
        for y in b.polys.iter().skip(a.size()) {
            let mut z = vec![0u64; y.len()];
            sub_assign_poly(&self.ring, &mut z, y);
            a.polys.push(z);
        }
        Ok(())
    }

    fn negate_assign(&self, a: &mut CkksCiphertext) -> Result<()> {
        self.check_fp(a.fp, OpKind::CtCtAdd)?;
        let ring = &*self.ring;
        for p in &mut a.polys {
            for_limbs(p, ring.n, |j, limb| {
                let m = &ring.moduli[j];
                limb.iter_mut().for_each(|x| *x = m.neg(*x));
            });
        }
        Ok(())
    }

    fn add_plain_assign(&self, a: &mut CkksCiphertext, p: &CkksPlaintext) -> Result<()> {
        self.check_same(OpKind::CtPtAdd, a, p.level, p.scale, p.fp)?;
        add_assign_poly(&self.ring, &mut a.polys[0], &p.poly);
        a.noise = a.noise.add_plain(p.norm_sq);
        Ok(())
    }

    fn mul_plain_assign(&self, a: &mut CkksCiphertext, p: &CkksPlaintext) -> Result<()> {
        self.check_fp(a.fp, OpKind::CtPtMul)?;
        self.check_fp(p.fp, OpKind::CtPtMul)?;
        crate::he::checks::same_level(OpKind::CtPtMul, a.level, p.level)?;
        let scale = a.scale * p.scale;
        self.check_scale_room(OpKind::CtPtMul, a.level, scale)?;
        for x in &mut a.polys {
            mul_assign_poly(&self.ring, x, &p.poly);
        }
        a.scale = scale;
        a.noise = a.noise.mul_plain(p.norm_sq);
        Ok(())
    }

    fn mul_scalar_assign(&self, a: &mut CkksCiphertext, c: f64, scale: Scale) -> Result<()> {
        self.check_fp(a.fp, OpKind::CtScalarMul)?;
        let k = scaled_integer(OpKind::CtScalarMul, c, scale)?;
        let new_scale = a.scale * scale;
        self.check_scale_room(OpKind::CtScalarMul, a.level, new_scale)?;
        let ring = &*self.ring;
        let ws: Vec<Shoup> = (0..=a.level.0 as usize)
            .map(|j| {
                let m = &ring.moduli[j];
                m.shoup(m.reduce_f64_integer(k))
            })
            .collect();
        for x in &mut a.polys {
            for_limbs(x, ring.n, |j, limb| {
                let m = &ring.moduli[j];
                let w = ws[j];
                limb.iter_mut().for_each(|v| *v = m.mul_shoup(*v, w));
            });
        }
        a.scale = new_scale;
        a.noise = a.noise.mul_plain(k * k);
        Ok(())
    }

    fn add_scalar_assign(&self, a: &mut CkksCiphertext, c: f64) -> Result<()> {
        self.check_fp(a.fp, OpKind::CtPtAdd)?;
        let k = scaled_integer(OpKind::CtPtAdd, c, a.scale)?;
        let log_q = self.params.log_modulus_at(a.level);
        if a.scale.log2() + c.abs().max(1.0).log2() + 1.0 >= log_q {
            return Err(Error::ScaleOverflow {
                op: OpKind::CtPtAdd,
                scale_log2: a.scale.log2(),
                modulus_log2: log_q,
                level: a.level,
            });
        }
        let ring = &*self.ring;
        // The constant polynomial k evaluates to k at every NTT point.
        for_limbs(&mut a.polys[0], ring.n, |j, limb| {
            let m = &ring.moduli[j];
            let w = m.reduce_f64_integer(k);
            limb.iter_mut().for_each(|v| *v = m.add(*v, w));
        });
        a.noise = a.noise.add_plain(k * k);
        Ok(())
    }

    fn mul(&self, a: &CkksCiphertext, b: &CkksCiphertext) -> Result<CkksCiphertext> {
        self.check_fp(a.fp, OpKind::CtCtMul)?;
        self.check_fp(b.fp, OpKind::CtCtMul)?;
        self.check_key(OpKind::CtCtMul, a.key, b.key)?;
        for ct in [a, b] {
            if ct.size() != 2 {
                return Err(Error::CiphertextSize {
                    op: OpKind::CtCtMul,
                    size: ct.size(),
                    expected: 2,
                });
            }
        }
        crate::he::checks::same_level(OpKind::CtCtMul, a.level, b.level)?;
        let scale = a.scale * b.scale;
        self.check_scale_room(OpKind::CtCtMul, a.level, scale)?;
        let ring = &*self.ring;
        let n = ring.n;
        let (a0, a1, b0, b1) = (&a.polys[0], &a.polys[1], &b.polys[0], &b.polys[1]);
        let len = a0.len();
        let mut d0 = take_zeroed(len);
        let mut d1 = take_zeroed(len);
        let mut d2 = take_zeroed(len);
        type Limbs<'a> = (usize, ((&'a mut [u64], &'a mut [u64]), &'a mut [u64]));
        let work = |(j, ((o0, o1), o2)): Limbs<'_>| {
            let r = j * n..(j + 1) * n;
            ring.mul_acc(j, o0, &a0[r.clone()], &b0[r.clone()]);
            ring.mul_acc(j, o1, &a0[r.clone()], &b1[r.clone()]);
            ring.mul_acc(j, o1, &a1[r.clone()], &b0[r.clone()]);
            ring.mul_acc(j, o2, &a1[r.clone()], &b1[r]);
        };
        if parallel(len) {
            d0.par_chunks_mut(n)
                .zip(d1.par_chunks_mut(n))
                .zip(d2.par_chunks_mut(n))
                .enumerate()
                .for_each(work);
        } else {
            d0.chunks_mut(n)
                .zip(d1.chunks_mut(n))
                .zip(d2.chunks_mut(n))
                .enumerate()
                .for_each(work);
        }
        Ok(CkksCiphertext {
            polys: vec![d0, d1, d2],
            level: a.level,
            scale,
            fp: self.fp,
            key: a.key,
            noise: a.noise.mul(b.noise, n),
        })
    }

    fn relinearize_assign(&self, a: &mut CkksCiphertext, keys: &CkksEvalKeys) -> Result<()> {
        self.check_fp(a.fp, OpKind::Relinearize)?;
        self.check_fp(keys.fp, OpKind::Relinearize)?;
        self.check_key(OpKind::Relinearize, keys.key, a.key)?;
        let key = keys
            .relin
            .as_ref()
            .ok_or(Error::MissingRelinearizationKey)?;
        if a.size() != 3 {
            return Err(Error::CiphertextSize {
                op: OpKind::Relinearize,
                size: a.size(),
                expected: 3,
            });
        }
        let l = a.level.0 as usize;
        let c2 = a.polys.pop().unwrap_or_default();
        let dec = self.decompose(&c2, l);
        recycle(c2);
        let [d0, d1] = self.switch(&dec, key, [Some(&a.polys[0]), Some(&a.polys[1])]);
        recycle(std::mem::replace(&mut a.polys[0], d0));
        recycle(std::mem::replace(&mut a.polys[1], d1));
        a.noise = a.noise.key_switch(self.ks_var);
        Ok(())
    }

    fn rescale_assign(&self, a: &mut CkksCiphertext) -> Result<()> {
        self.check_fp(a.fp, OpKind::Rescale)?;
        let q = self.rescale_divisor(a.level)?;
        let l = a.level.0 as usize;
        if parallel(a.polys.len() * a.polys[0].len() / 2) {
            a.polys.par_iter_mut().for_each(|p| self.rescale_poly(p, l));
        } else {
            a.polys.iter_mut().for_each(|p| self.rescale_poly(p, l));
        }
        a.level = Level(a.level.0 - 1);
        a.scale = a.scale / q;
        a.noise = a.noise.rescale(q, self.n());
        Ok(())
    }

    fn drop_level_assign(&self, a: &mut CkksCiphertext, level: Level) -> Result<()> {
        self.check_fp(a.fp, OpKind::LevelDrop)?;
        crate::he::checks::drop_target(a.level, level)?;
        self.check_scale_room(OpKind::LevelDrop, level, a.scale)?;
        let len = (level.0 as usize + 1) * self.n();
        a.polys.iter_mut().for_each(|p| p.truncate(len));
        a.level = level;
        Ok(())
    }

    fn rotate(
        &self,
        a: &CkksCiphertext,
        step: Rotation,
        keys: &CkksEvalKeys,
    ) -> Result<CkksCiphertext> {
        let key = self.rotation_checks(a, step, keys)?;
        Ok(self
            .rotate_hoisted(a, &[key])
            .pop()
            .unwrap_or_else(|| a.clone()))
    }

    fn conjugate(&self, a: &CkksCiphertext, keys: &CkksEvalKeys) -> Result<CkksCiphertext> {
        self.check_fp(a.fp, OpKind::Conjugate)?;
        self.check_fp(keys.fp, OpKind::Conjugate)?;
        self.check_key(OpKind::Conjugate, keys.key, a.key)?;
        let key = keys.conj.as_ref().ok_or(Error::MissingConjugationKey)?;
        if a.size() != 2 {
            return Err(Error::CiphertextSize {
                op: OpKind::Conjugate,
                size: a.size(),
                expected: 2,
            });
        }
        Ok(self
            .rotate_hoisted(a, &[Some(key)])
            .pop()
            .unwrap_or_else(|| a.clone()))
    }

    fn rotate_many(
        &self,
        a: &CkksCiphertext,
        steps: &[Rotation],
        keys: &CkksEvalKeys,
    ) -> Result<Vec<CkksCiphertext>> {
        let ks = steps
            .iter()
            .map(|&s| self.rotation_checks(a, s, keys))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.rotate_hoisted(a, &ks))
    }

    fn dot_plain(&self, cts: &[&CkksCiphertext], pts: &[&CkksPlaintext]) -> Result<CkksCiphertext> {
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

    fn dot_scalar(
        &self,
        cts: &[&CkksCiphertext],
        scalars: &[f64],
        scale: Scale,
    ) -> Result<CkksCiphertext> {
        // One row of the blocked multiply-accumulate: a single scalar path.
        check_terms(OpKind::CtScalarMul, cts.len(), scalars.len())?;
        let row: Vec<(usize, f64)> = scalars.iter().copied().enumerate().collect();
        self.dot_scalar_many(cts, &[row], scale)?
            .pop()
            .ok_or(Error::Internal {
                invariant: "dot_scalar_many returns one output per row",
            })
    }

    fn dot_scalar_many(
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

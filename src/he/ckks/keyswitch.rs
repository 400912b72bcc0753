//! Hybrid key switching (Han-Ki): decompose in digits of K primes, raise
//! each digit to the extended basis `Q_l * P` (fast base conversion + NTT),
//! take the inner product with the key lazily in `u128` (one reduction per
//! output word), then divide by `P` (mod-down).
//!
//! Hoisting: the raised digits of `c` are computed once; a rotation by
//! Galois element `g` permutes them in the NTT domain on the fly (index
//! table) inside the inner product, so `k` rotations cost one decomposition
//! and `k` inner products and mod-downs.

use rayon::prelude::*;

use super::Ckks;
use super::keys::{SwitchingKey, digit_count, digit_primes};
use super::modulus::Modulus;
use super::rns::{BaseConverter, PAR_MIN_WORDS};

/// The digits of a polynomial raised to the extended basis, NTT form.
pub(crate) struct Decomposed {
    pub(crate) level: usize,
    /// One `(level + 1 + K) * N` vector per digit present at this level.
    pub(crate) digits: Vec<Vec<u64>>,
}

impl Ckks {
    /// Raises each digit of `c` (NTT form, `level + 1` limbs) to the extended basis.
    pub(crate) fn decompose(&self, c: &[u64], level: usize) -> Decomposed {
        let ring = &*self.ring;
        let n = ring.n;
        let basis = ring.extended_basis(level);
        let mut coeffs = c.to_vec();
        ring.inverse_all(&mut coeffs, &basis[..=level]);
        let ndig = (0..digit_count(ring))
            .take_while(|&d| digit_primes(ring, d).start <= level)
            .count();
        let digits = (0..ndig)
            .into_par_iter()
            .map(|d| {
                let src: Vec<usize> = digit_primes(ring, d).filter(|&j| j <= level).collect();
                let dst: Vec<usize> = basis.iter().copied().filter(|j| !src.contains(j)).collect();
                let conv = BaseConverter::new(ring, &src, &dst);
                let mut raised = vec![0u64; dst.len() * n];
                conv.convert(
                    ring,
                    &coeffs[src[0] * n..(src[src.len() - 1] + 1) * n],
                    &mut raised,
                );
                ring.forward_all(&mut raised, &dst);
                // Assemble in extended-basis order: digit primes copied from c.
                let mut out = vec![0u64; basis.len() * n];
                let mut next = raised.chunks(n);
                for (e, limb) in out.chunks_mut(n).enumerate() {
                    if src.contains(&basis[e]) {
                        limb.copy_from_slice(&c[e * n..(e + 1) * n]);
                    } else if let Some(r) = next.next() {
                        limb.copy_from_slice(r);
                    }
                }
                out
            })
            .collect();
        Decomposed { level, digits }
    }

    /// `sum_d digit_d(perm) * key_d` over the extended basis: the two
    /// components, still to be divided by P.
    pub(crate) fn inner_product(
        &self,
        dec: &Decomposed,
        key: &SwitchingKey,
        perm: Option<&[u32]>,
    ) -> [Vec<u64>; 2] {
        let ring = &*self.ring;
        let n = ring.n;
        let basis = ring.extended_basis(dec.level);
        let len = basis.len() * n;
        let mut out0 = vec![0u64; len];
        let mut out1 = vec![0u64; len];
        let work = |(e, (o0, o1)): (usize, (&mut [u64], &mut [u64]))| {
            let p = basis[e];
            let m = &ring.moduli[p];
            let range = p * n..(p + 1) * n;
            let ds: Vec<&[u64]> = dec.digits.iter().map(|d| &d[e * n..(e + 1) * n]).collect();
            let kb: Vec<&[u64]> = key.b.iter().map(|k| &k[range.clone()]).collect();
            let ka: Vec<&[u64]> = key.a.iter().map(|k| &k[range.clone()]).collect();
            inner_limb(m, &ds, &kb, &ka, perm, o0, o1);
        };
        if len >= PAR_MIN_WORDS * 2 {
            out0.par_chunks_mut(n)
                .zip(out1.par_chunks_mut(n))
                .enumerate()
                .for_each(work);
        } else {
            out0.chunks_mut(n)
                .zip(out1.chunks_mut(n))
                .enumerate()
                .for_each(work);
        }
        [out0, out1]
    }

    /// Divides an extended-basis polynomial (NTT form) by P, rounding down:
    /// the result has `level + 1` limbs.
    pub(crate) fn mod_down(&self, mut x: Vec<u64>, level: usize) -> Vec<u64> {
        let ring = &*self.ring;
        let n = ring.n;
        let k = ring.num_p;
        let split = (level + 1) * n;
        let specials: Vec<usize> = (0..k).map(|i| ring.special(i)).collect();
        let mut sp = x[split..].to_vec();
        ring.inverse_all(&mut sp, &specials);
        let mut conv = vec![0u64; split];
        self.moddown_conv[level].convert(ring, &sp, &mut conv);
        x.truncate(split);
        let work = |(j, (xl, cl)): (usize, (&mut [u64], &mut [u64]))| {
            ring.forward(j, cl);
            let m = &ring.moduli[j];
            let w = self.p_inv[j];
            for (a, &b) in xl.iter_mut().zip(cl.iter()) {
                *a = m.mul_shoup(m.sub(*a, b), w);
            }
        };
        if split >= PAR_MIN_WORDS * 2 {
            x.par_chunks_mut(n)
                .zip(conv.par_chunks_mut(n))
                .enumerate()
                .for_each(work);
        } else {
            x.chunks_mut(n)
                .zip(conv.chunks_mut(n))
                .enumerate()
                .for_each(work);
        }
        x
    }

    /// Key-switches a decomposed polynomial: `(d0, d1)` at the same level
    /// with `d0 + d1 s ~ c * s_from` (`perm` applies a Galois automorphism first).
    pub(crate) fn switch(
        &self,
        dec: &Decomposed,
        key: &SwitchingKey,
        perm: Option<&[u32]>,
    ) -> [Vec<u64>; 2] {
        let [x0, x1] = self.inner_product(dec, key, perm);
        let (d0, d1) = rayon::join(
            || self.mod_down(x0, dec.level),
            || self.mod_down(x1, dec.level),
        );
        [d0, d1]
    }
}

/// The inner product on one limb, accumulating `u128` and reducing once per
/// output word (every [`Modulus::MAX_LAZY_TERMS`] digits when there are more).
fn inner_limb(
    m: &Modulus,
    ds: &[&[u64]],
    kb: &[&[u64]],
    ka: &[&[u64]],
    perm: Option<&[u32]>,
    o0: &mut [u64],
    o1: &mut [u64],
) {
    let nd = ds.len();
    if nd <= Modulus::MAX_LAZY_TERMS {
        match perm {
            None => {
                for k in 0..o0.len() {
                    let mut s0: u128 = 0;
                    let mut s1: u128 = 0;
                    for d in 0..nd {
                        let x = u128::from(ds[d][k]);
                        s0 += x * u128::from(kb[d][k]);
                        s1 += x * u128::from(ka[d][k]);
                    }
                    o0[k] = m.reduce_u128(s0);
                    o1[k] = m.reduce_u128(s1);
                }
            }
            Some(perm) => {
                for (k, &pk) in perm.iter().enumerate().take(o0.len()) {
                    let pk = pk as usize;
                    let mut s0: u128 = 0;
                    let mut s1: u128 = 0;
                    for d in 0..nd {
                        let x = u128::from(ds[d][pk]);
                        s0 += x * u128::from(kb[d][k]);
                        s1 += x * u128::from(ka[d][k]);
                    }
                    o0[k] = m.reduce_u128(s0);
                    o1[k] = m.reduce_u128(s1);
                }
            }
        }
    } else {
        for k in 0..o0.len() {
            let pk = perm.map_or(k, |p| p[k] as usize);
            let mut s0: u128 = 0;
            let mut s1: u128 = 0;
            for d in 0..nd {
                if d % Modulus::MAX_LAZY_TERMS == 0 && d > 0 {
                    s0 = u128::from(m.reduce_u128(s0));
                    s1 = u128::from(m.reduce_u128(s1));
                }
                let x = u128::from(ds[d][pk]);
                s0 += x * u128::from(kb[d][k]);
                s1 += x * u128::from(ka[d][k]);
            }
            o0[k] = m.reduce_u128(s0);
            o1[k] = m.reduce_u128(s1);
        }
    }
}

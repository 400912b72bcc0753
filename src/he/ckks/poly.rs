//! Polynomial helpers of the CKKS operations: limb-wise loops (in parallel
//! when large), pointwise products and sums in NTT form, and the rescale of
//! one polynomial (division by the last prime, rounded).

use rayon::prelude::*;

use super::Ckks;
use super::kernels::{add_assign_limb, sub_assign_limb};
use super::kernels_rescale::{Rescale32, RescaleStep};
use super::rns::{Ring, parallel, recycle, take_copy, take_scratch, take_zeroed};

/// Runs `f(limb_index, limb)` over the limbs of `a`, in parallel when large.
pub(super) fn for_limbs<F>(a: &mut [u64], n: usize, f: F)
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
pub(super) fn mul_assign_poly(ring: &Ring, a: &mut [u64], b: &[u64]) {
    let n = ring.n;
    for_limbs(a, n, |j, limb| {
        let mut acc = take_zeroed(n);
        ring.mul_acc(j, &mut acc, limb, &b[j * n..(j + 1) * n]);
        limb.copy_from_slice(&acc);
        recycle(acc);
    });
}

/// `a * b` pointwise into a new polynomial.
pub(super) fn mul_poly(ring: &Ring, a: &[u64], b: &[u64]) -> Vec<u64> {
    let n = ring.n;
    let mut out = vec![0u64; a.len()];
    for_limbs(&mut out, n, |j, o| {
        ring.mul_acc(j, o, &a[j * n..(j + 1) * n], &b[j * n..(j + 1) * n]);
    });
    out
}

pub(super) fn add_assign_poly(ring: &Ring, a: &mut [u64], b: &[u64]) {
    let n = ring.n;
    for_limbs(a, n, |j, limb| {
        add_assign_limb(&ring.moduli[j], limb, &b[j * n..(j + 1) * n]);
    });
}

pub(super) fn sub_assign_poly(ring: &Ring, a: &mut [u64], b: &[u64]) {
    let n = ring.n;
    for_limbs(a, n, |j, limb| {
        sub_assign_limb(&ring.moduli[j], limb, &b[j * n..(j + 1) * n]);
    });
}

impl Ckks {
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
}

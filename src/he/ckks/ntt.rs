//! The negacyclic NTT behind a small internal trait, implemented with
//! `tfhe-ntt`'s 64-bit prime plans (AVX-512 / IFMA where available).
//!
//! `tfhe-ntt` leaves the transform in bit-reversed order. We never rely on a
//! particular order: at construction we read off, for every NTT index `j`,
//! the exponent `e_j` such that index `j` holds the evaluation at `psi^e_j`
//! (with `psi` the root at index 0), and build Galois automorphism tables
//! from those exponents ([`GaloisTables`]).

use std::collections::HashMap;

use tfhe_ntt::prime64::Plan;

use super::modulus::Modulus;
use crate::error::{Error, Result};

/// What the ring arithmetic needs from an NTT over one prime.
pub(crate) trait Ntt: Send + Sync {
    /// Coefficients -> evaluations (in the implementation's order).
    fn forward(&self, a: &mut [u64]);
    /// Evaluations -> coefficients, normalised (multiplied by 1/N).
    fn inverse(&self, a: &mut [u64]);
    /// `acc += a * b` pointwise, all inputs and the result in `[0, q)`.
    fn mul_acc(&self, acc: &mut [u64], a: &[u64], b: &[u64]);
}

/// `tfhe-ntt`'s plan for one prime.
pub(crate) struct TfheNtt {
    plan: Plan,
}

impl TfheNtt {
    pub(crate) fn new(n: usize, q: u64) -> Result<TfheNtt> {
        Plan::try_new(n, q)
            .map(|plan| TfheNtt { plan })
            .ok_or(Error::InvalidParameter {
                name: "NTT prime",
                value: q as i64,
                allowed: "a prime = 1 mod 2N",
            })
    }
}

impl Ntt for TfheNtt {
    #[inline]
    fn forward(&self, a: &mut [u64]) {
        self.plan.fwd(a);
    }
    #[inline]
    fn inverse(&self, a: &mut [u64]) {
        self.plan.inv(a);
        self.plan.normalize(a);
    }
    #[inline]
    fn mul_acc(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        self.plan.mul_accumulate(acc, a, b);
    }
}

/// Where each evaluation point sits in the NTT order, for automorphisms
/// `X -> X^g` applied directly to NTT-form polynomials.
#[derive(Debug, Clone)]
pub(crate) struct GaloisTables {
    /// `exps[j]`: index `j` holds the evaluation at `psi^exps[j]` (odd, < 2N).
    exps: Vec<u32>,
    /// `pos[e]`: the index holding `psi^e`, for odd `e` (even entries unused).
    pos: Vec<u32>,
}

impl GaloisTables {
    /// Reads the evaluation order off the NTT of `X` for every prime and
    /// checks that all primes share it.
    pub(crate) fn new(n: usize, ntts: &[&dyn Ntt], moduli: &[Modulus]) -> Result<GaloisTables> {
        let two_n = 2 * n;
        let mismatch = Error::InvalidParameter {
            name: "NTT evaluation order",
            value: n as i64,
            allowed: "the same order for every prime",
        };
        let mut exps: Vec<u32> = Vec::new();
        for (ntt, m) in ntts.iter().zip(moduli) {
            let mut x = vec![0u64; n];
            x[1] = 1;
            ntt.forward(&mut x);
            let psi = x[0];
            let mut powers = Vec::with_capacity(two_n);
            let mut p = 1u64;
            for _ in 0..two_n {
                powers.push(p);
                p = m.mul(p, psi);
            }
            if exps.is_empty() {
                let log: HashMap<u64, u32> = powers
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| (v, k as u32))
                    .collect();
                for &v in &x {
                    exps.push(*log.get(&v).ok_or(Error::InvalidParameter {
                        name: "NTT evaluation order",
                        value: n as i64,
                        allowed: "evaluations at powers of a 2N-th root",
                    })?);
                }
            } else if exps.iter().zip(&x).any(|(&e, &v)| powers[e as usize] != v) {
                return Err(mismatch);
            }
        }
        let mut pos = vec![u32::MAX; two_n];
        for (j, &e) in exps.iter().enumerate() {
            if e % 2 == 0 || pos[e as usize] != u32::MAX {
                return Err(mismatch);
            }
            pos[e as usize] = j as u32;
        }
        Ok(GaloisTables { exps, pos })
    }

    /// The permutation of NTT indices for `X -> X^g` (g odd):
    /// `out[j] = in[perm[j]]`.
    pub(crate) fn permutation(&self, g: u64) -> Vec<u32> {
        let two_n = self.pos.len() as u64;
        self.exps
            .iter()
            .map(|&e| self.pos[((u64::from(e) * g) % two_n) as usize])
            .collect()
    }
}

/// Applies an NTT-domain permutation to one limb.
#[inline]
pub(crate) fn permute(out: &mut [u64], input: &[u64], perm: &[u32]) {
    for (o, &p) in out.iter_mut().zip(perm) {
        *o = input[p as usize];
    }
}

/// `X -> X^g` on coefficients (the reference the NTT-domain tables must match).
#[cfg(test)]
pub(crate) fn automorphism_coeffs(a: &[u64], g: u64, m: &Modulus) -> Vec<u64> {
    let n = a.len() as u64;
    let mut out = vec![0u64; a.len()];
    for (j, &c) in a.iter().enumerate() {
        let k = (j as u64 * g) % (2 * n);
        if k < n {
            out[k as usize] = c;
        } else {
            out[(k - n) as usize] = m.neg(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const Q: u64 = 1_152_921_504_606_748_673;
    const Q2: u64 = 1_099_510_054_913;

    #[test]
    fn round_trip_and_product() {
        let n = 1 << 12;
        let m = Modulus::new(Q);
        let ntt = TfheNtt::new(n, Q).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let a: Vec<u64> = (0..n).map(|_| rng.random_range(0..Q)).collect();
        let mut b = a.clone();
        ntt.forward(&mut b);
        assert_ne!(a, b);
        ntt.inverse(&mut b);
        assert_eq!(a, b);
        // X * X^(n-1) = X^n = -1 (negacyclic)
        let mut x = vec![0u64; n];
        x[1] = 1;
        let mut y = vec![0u64; n];
        y[n - 1] = 1;
        ntt.forward(&mut x);
        ntt.forward(&mut y);
        let mut acc = vec![0u64; n];
        ntt.mul_acc(&mut acc, &x, &y);
        ntt.inverse(&mut acc);
        assert_eq!(acc[0], m.neg(1));
        assert!(acc[1..].iter().all(|&c| c == 0));
    }

    #[test]
    fn automorphism_matches_coefficient_reference() {
        let n = 1 << 12;
        let mods = [Modulus::new(Q), Modulus::new(Q2)];
        let ntts = [TfheNtt::new(n, Q).unwrap(), TfheNtt::new(n, Q2).unwrap()];
        let dyns: Vec<&dyn Ntt> = ntts.iter().map(|t| t as &dyn Ntt).collect();
        let tables = GaloisTables::new(n, &dyns, &mods).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for (ntt, m) in ntts.iter().zip(&mods) {
            for g in [5u64, 25, 2 * n as u64 - 1, 3125] {
                let a: Vec<u64> = (0..n).map(|_| rng.random_range(0..m.value())).collect();
                let reference = automorphism_coeffs(&a, g, m);
                let mut a_ntt = a.clone();
                ntt.forward(&mut a_ntt);
                let perm = tables.permutation(g);
                let mut out = vec![0u64; n];
                permute(&mut out, &a_ntt, &perm);
                ntt.inverse(&mut out);
                assert_eq!(out, reference, "g = {g}");
            }
        }
    }
}

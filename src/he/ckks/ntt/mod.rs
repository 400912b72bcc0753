//! The negacyclic NTT behind a small internal trait ([`Ntt`]), and the
//! Galois tables that apply automorphisms to NTT-form polynomials.
//!
//! The default implementation is our own ([`HarveyNtt`], `harvey.rs` with
//! the butterflies in `lanes.rs` and the AVX2 / AVX-512 lane types in
//! `x86.rs`). With the `tfhe-ntt` cargo feature, `MOFHEI_NTT=tfhe-ntt`
//! selects `tfhe-ntt`'s 64-bit plans instead (`tfhe.rs`), for comparison.
//!
//! We never rely on a particular evaluation order: at construction we read
//! off, for every NTT index `j`, the exponent `e_j` such that index `j`
//! holds the evaluation at `psi^e_j` (with `psi` the root at index 0), and
//! build Galois automorphism tables from those exponents
//! ([`GaloisTables`]). Both implementations leave the evaluations in
//! bit-reversed order.

use std::collections::HashMap;

pub mod bench;
mod harvey;
mod lanes;
#[cfg(feature = "tfhe-ntt")]
mod tfhe;
#[cfg(target_arch = "x86_64")]
mod x86;

pub(crate) use harvey::HarveyNtt;
#[cfg(feature = "tfhe-ntt")]
pub(crate) use tfhe::TfheNtt;

use super::modulus::Modulus;
use super::simd;
use crate::he::error::{Error, Result};

/// What the ring arithmetic needs from an NTT over one prime.
pub(crate) trait Ntt: Send + Sync {
    /// Coefficients -> evaluations (in the implementation's order).
    fn forward(&self, a: &mut [u64]);
    /// Evaluations -> coefficients, normalised (multiplied by 1/N).
    fn inverse(&self, a: &mut [u64]);
    /// `acc += a * b` pointwise, all inputs and the result in `[0, q)`.
    fn mul_acc(&self, acc: &mut [u64], a: &[u64], b: &[u64]);
}

impl Ntt for HarveyNtt {
    #[inline]
    fn forward(&self, a: &mut [u64]) {
        self.forward_at(simd::level(), a);
    }
    #[inline]
    fn inverse(&self, a: &mut [u64]) {
        self.inverse_at(simd::level(), a);
    }
    #[inline]
    fn mul_acc(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        self.mul_acc_at(simd::level(), acc, a, b);
    }
}

/// The NTT of one prime for the ring: ours, or `tfhe-ntt`'s when the
/// feature is on and `MOFHEI_NTT=tfhe-ntt` (read once).
pub(crate) fn new_ntt(n: usize, q: u64) -> Result<Box<dyn Ntt>> {
    #[cfg(feature = "tfhe-ntt")]
    {
        static USE_TFHE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let tfhe = *USE_TFHE.get_or_init(|| {
            std::env::var("MOFHEI_NTT").is_ok_and(|v| v.trim().eq_ignore_ascii_case("tfhe-ntt"))
        });
        if tfhe {
            return Ok(Box::new(TfheNtt::new(n, q)?));
        }
    }
    Ok(Box::new(HarveyNtt::new(n, q)?))
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

    use crate::he::ckks::simd::SimdLevel;
    use crate::he::primes::is_prime;

    /// The largest prime `= 1 mod 2^16` below `2^bits` (NTT-friendly for
    /// every `N <= 2^15`).
    fn ntt_prime(bits: u32) -> u64 {
        let step = 1u64 << 16;
        let mut q = ((1u64 << bits) - 1) / step * step + 1;
        while !is_prime(q) {
            q -= step;
        }
        q
    }

    /// The negacyclic product `a b mod (X^N + 1, q)` by schoolbook, skipping
    /// zero coefficients of `b`.
    fn schoolbook(a: &[u64], b: &[u64], q: u64) -> Vec<u64> {
        let n = a.len();
        let m = Modulus::new(q);
        let mut out = vec![0u64; n];
        for (j, &bj) in b.iter().enumerate() {
            if bj == 0 {
                continue;
            }
            for (i, &ai) in a.iter().enumerate() {
                let p = m.mul(ai, bj);
                let k = i + j;
                if k < n {
                    out[k] = m.add(out[k], p);
                } else {
                    out[k - n] = m.sub(out[k - n], p);
                }
            }
        }
        out
    }

    const BITS: [u32; 9] = [20, 30, 31, 36, 40, 50, 55, 60, 61];

    /// Round trip and products against the schoolbook reference, for every
    /// prime size, several `N`, every lane width that fits the prime and
    /// every SIMD level the CPU has.
    #[test]
    fn harvey_matches_schoolbook_at_every_level() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(19);
        for bits in BITS {
            let q = ntt_prime(bits);
            assert!(q > 1 << (bits - 1) && q < 1 << bits);
            for log_n in [4u32, 5, 6, 8, 10, 13, 15] {
                let n = 1usize << log_n;
                let widths: &[bool] = if q < 1 << 31 {
                    &[true, false]
                } else {
                    &[false]
                };
                for &narrow in widths {
                    let ntt = HarveyNtt::with_width(n, q, narrow).unwrap();
                    let a: Vec<u64> = (0..n).map(|_| rng.random_range(0..q)).collect();
                    // dense b for small N, sparse (8 terms) beyond
                    let mut b = vec![0u64; n];
                    if n <= 1 << 10 {
                        b.iter_mut().for_each(|x| *x = rng.random_range(0..q));
                    } else {
                        for _ in 0..8 {
                            b[rng.random_range(0..n)] = rng.random_range(0..q);
                        }
                    }
                    let c: Vec<u64> = (0..n).map(|_| rng.random_range(0..q)).collect();
                    let mut expect = schoolbook(&a, &b, q);
                    let m = Modulus::new(q);
                    expect
                        .iter_mut()
                        .zip(&c)
                        .for_each(|(e, &x)| *e = m.add(*e, x));
                    let mut reference: Option<Vec<u64>> = None;
                    for level in SimdLevel::available() {
                        let ctx = format!("q {q} ({bits} bits), n {n}, narrow {narrow}, {level:?}");
                        let mut fa = a.clone();
                        ntt.forward_at(level, &mut fa);
                        assert!(fa.iter().all(|&x| x < q), "{ctx}");
                        // every level computes the same evaluations, in the same order
                        match &reference {
                            None => reference = Some(fa.clone()),
                            Some(r) => assert_eq!(&fa, r, "{ctx}"),
                        }
                        let mut back = fa.clone();
                        ntt.inverse_at(level, &mut back);
                        assert_eq!(back, a, "round trip, {ctx}");
                        let mut fb = b.clone();
                        ntt.forward_at(level, &mut fb);
                        let mut acc = c.clone();
                        ntt.forward_at(level, &mut acc);
                        ntt.mul_acc_at(level, &mut acc, &fa, &fb);
                        ntt.inverse_at(level, &mut acc);
                        assert_eq!(acc, expect, "product, {ctx}");
                    }
                }
            }
        }
    }

    /// Extreme inputs (all `q - 1`, all zero but one) survive the lazy
    /// bounds at every level.
    #[test]
    fn harvey_extreme_inputs() {
        for bits in BITS {
            let q = ntt_prime(bits);
            let n = 1 << 6;
            let ntt = HarveyNtt::new(n, q).unwrap();
            let full = vec![q - 1; n];
            let mut one = vec![0u64; n];
            one[n - 1] = q - 1;
            for level in SimdLevel::available() {
                for a in [&full, &one] {
                    let mut f = a.clone();
                    ntt.forward_at(level, &mut f);
                    let mut acc = vec![0u64; n];
                    ntt.mul_acc_at(level, &mut acc, &f, &f);
                    ntt.inverse_at(level, &mut f);
                    assert_eq!(&f, a, "q {q}, {level:?}");
                    ntt.inverse_at(level, &mut acc);
                    assert_eq!(acc, schoolbook(a, a, q), "q {q}, {level:?}");
                }
            }
        }
    }

    #[test]
    fn harvey_rejects_bad_primes() {
        assert!(HarveyNtt::new(1 << 4, 97).is_ok()); // 97 = 1 mod 32
        assert!(HarveyNtt::new(1 << 5, 97).is_err()); // 97 != 1 mod 64
        assert!(HarveyNtt::new(1 << 4, 481).is_err()); // 481 = 1 mod 32 = 13 * 37
        assert!(HarveyNtt::new(3, 97).is_err());
        assert!(HarveyNtt::with_width(1 << 4, ntt_prime(40), true).is_err());
        assert!(HarveyNtt::new(1 << 4, ntt_prime(30)).is_ok());
    }

    #[test]
    fn round_trip_and_product() {
        let n = 1 << 12;
        let m = Modulus::new(Q);
        let ntt = HarveyNtt::new(n, Q).unwrap();
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
        let ntts = [
            HarveyNtt::new(n, Q).unwrap(),
            HarveyNtt::new(n, Q2).unwrap(),
        ];
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

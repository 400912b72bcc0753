//! The RNS ring `Z_Q[X]/(X^N + 1)`: one [`Modulus`] and one NTT per prime,
//! Galois tables, fast base conversion, and samplers.
//!
//! A polynomial at level `l` is a flat `Vec<u64>` of `l + 1` limbs of `N`
//! words, limb `i` modulo `q_i`, in NTT form unless a function says
//! otherwise. Key-switching temporaries use the *extended* basis
//! `q_0 .. q_l, p_0 .. p_{K-1}` (the special primes appended).

use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;

use super::modulus::Modulus;
use super::ntt::{GaloisTables, Ntt, new_ntt};
use super::params::CkksParams;
use crate::he::error::Result;

/// Standard deviation of the error distribution.
pub(crate) const SIGMA: f64 = 3.2;
/// Errors are resampled beyond this bound (6 sigma).
const ERROR_BOUND: f64 = 19.2;
/// Below this many words of work per call, stay on one thread.
const PAR_MIN_WORDS: usize = 1 << 14;

/// Whether work on `words` words should be spread over rayon's threads
/// (never when the pool has one thread: the single-thread path then runs on
/// the caller's thread with no scheduling overhead).
#[inline]
pub(crate) fn parallel(words: usize) -> bool {
    words >= PAR_MIN_WORDS * 2 && rayon::current_num_threads() > 1
}

/// `rayon::join` when parallel, else both closures in order on this thread.
pub(crate) fn join<A, B, RA, RB>(words: usize, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if parallel(words) {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// Ring tables shared by every object of one parameter set.
pub(crate) struct Ring {
    pub(crate) n: usize,
    pub(crate) num_q: usize,
    pub(crate) num_p: usize,
    /// `q_0 .. q_L, p_0 .. p_{K-1}`.
    pub(crate) moduli: Vec<Modulus>,
    ntt: Vec<Box<dyn Ntt>>,
    pub(crate) galois: GaloisTables,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("n", &self.n)
            .field("num_q", &self.num_q)
            .field("num_p", &self.num_p)
            .finish_non_exhaustive()
    }
}

impl Ring {
    pub(crate) fn new(params: &CkksParams) -> Result<Ring> {
        let n = params.degree();
        let primes: Vec<u64> = params
            .moduli()
            .iter()
            .chain(params.special_moduli())
            .copied()
            .collect();
        let moduli: Vec<Modulus> = primes.iter().map(|&q| Modulus::new(q)).collect();
        let ntt = primes
            .iter()
            .map(|&q| new_ntt(n, q))
            .collect::<Result<Vec<_>>>()?;
        let dyns: Vec<&dyn Ntt> = ntt.iter().map(|t| &**t).collect();
        let galois = GaloisTables::new(n, &dyns, &moduli)?;
        Ok(Ring {
            n,
            num_q: params.moduli().len(),
            num_p: params.special_moduli().len(),
            moduli,
            ntt,
            galois,
        })
    }

    /// Index (into `moduli`) of the `k`-th special prime.
    #[inline]
    pub(crate) fn special(&self, k: usize) -> usize {
        self.num_q + k
    }

    /// The prime indices of the extended basis at `level`.
    pub(crate) fn extended_basis(&self, level: usize) -> Vec<usize> {
        (0..=level)
            .chain(self.num_q..self.num_q + self.num_p)
            .collect()
    }

    #[inline]
    pub(crate) fn forward(&self, prime: usize, a: &mut [u64]) {
        self.ntt[prime].forward(a);
    }

    #[inline]
    pub(crate) fn inverse(&self, prime: usize, a: &mut [u64]) {
        self.ntt[prime].inverse(a);
    }

    /// `acc += a * b` pointwise modulo `prime` (SIMD).
    #[inline]
    pub(crate) fn mul_acc(&self, prime: usize, acc: &mut [u64], a: &[u64], b: &[u64]) {
        self.ntt[prime].mul_acc(acc, a, b);
    }

    /// Forward NTT of every limb of `a`, limb `i` over prime `basis[i]`.
    pub(crate) fn forward_all(&self, a: &mut [u64], basis: &[usize]) {
        let n = self.n;
        if parallel(a.len()) {
            a.par_chunks_mut(n)
                .zip(basis)
                .for_each(|(limb, &p)| self.forward(p, limb));
        } else {
            a.chunks_mut(n)
                .zip(basis)
                .for_each(|(limb, &p)| self.forward(p, limb));
        }
    }

    /// Inverse NTT of every limb of `a`.
    pub(crate) fn inverse_all(&self, a: &mut [u64], basis: &[usize]) {
        let n = self.n;
        if parallel(a.len()) {
            a.par_chunks_mut(n)
                .zip(basis)
                .for_each(|(limb, &p)| self.inverse(p, limb));
        } else {
            a.chunks_mut(n)
                .zip(basis)
                .for_each(|(limb, &p)| self.inverse(p, limb));
        }
    }

    /// Small signed coefficients -> NTT form over `basis`.
    pub(crate) fn small_to_ntt(&self, coeffs: &[i64], basis: &[usize]) -> Vec<u64> {
        let n = self.n;
        let mut out = vec![0u64; n * basis.len()];
        let work = |(limb, &p): (&mut [u64], &usize)| {
            let m = &self.moduli[p];
            for (o, &c) in limb.iter_mut().zip(coeffs) {
                *o = m.reduce_i64(c);
            }
            self.forward(p, limb);
        };
        if parallel(out.len()) {
            out.par_chunks_mut(n).zip(basis).for_each(work);
        } else {
            out.chunks_mut(n).zip(basis).for_each(work);
        }
        out
    }
}

/// Fast (approximate) base conversion from a set of source primes to target
/// primes, on coefficient-form limbs: `y = sum_i [x_i * (S/s_i)^-1]_{s_i} * (S/s_i)`,
/// which equals `x + u*S` for a small `0 <= u < |sources|`.
#[derive(Debug, Clone)]
pub(crate) struct BaseConverter {
    src: Vec<usize>,
    dst: Vec<usize>,
    /// `(S/s_i)^-1 mod s_i` (Shoup form) per source.
    inv_punct: Vec<super::modulus::Shoup>,
    /// `(S/s_i) mod t` per target `t` (outer) and source `i` (inner).
    punct: Vec<Vec<u64>>,
}

impl BaseConverter {
    pub(crate) fn new(ring: &Ring, src: &[usize], dst: &[usize]) -> BaseConverter {
        let inv_punct = src
            .iter()
            .map(|&i| {
                let m = &ring.moduli[i];
                let mut prod = 1u64;
                for &j in src {
                    if j != i {
                        prod = m.mul(prod, m.reduce(ring.moduli[j].value()));
                    }
                }
                m.shoup(m.inv(prod))
            })
            .collect();
        let punct = dst
            .iter()
            .map(|&t| {
                let mt = &ring.moduli[t];
                src.iter()
                    .map(|&i| {
                        let mut prod = 1u64;
                        for &j in src {
                            if j != i {
                                prod = mt.mul(prod, mt.reduce(ring.moduli[j].value()));
                            }
                        }
                        prod
                    })
                    .collect()
            })
            .collect();
        BaseConverter {
            src: src.to_vec(),
            dst: dst.to_vec(),
            inv_punct,
            punct,
        }
    }

    /// Converts `input` (|src| coefficient-form limbs) into `out` (|dst| limbs).
    pub(crate) fn convert(&self, ring: &Ring, input: &[u64], out: &mut [u64]) {
        let n = ring.n;
        if self.src.len() == 1 {
            out.chunks_mut(n).zip(&self.dst).for_each(|(o, &t)| {
                let m = &ring.moduli[t];
                for (y, &x) in o.iter_mut().zip(input) {
                    *y = m.reduce(x);
                }
            });
            return;
        }
        let mut scaled = vec![0u64; input.len()];
        scaled
            .chunks_mut(n)
            .zip(input.chunks(n))
            .zip(self.src.iter().zip(&self.inv_punct))
            .for_each(|((s, x), (&i, &w))| {
                let m = &ring.moduli[i];
                for (a, &b) in s.iter_mut().zip(x) {
                    *a = m.mul_shoup(b, w);
                }
            });
        out.chunks_mut(n)
            .zip(self.dst.iter().zip(&self.punct))
            .for_each(|(o, (&t, punct))| {
                let m = &ring.moduli[t];
                for (k, y) in o.iter_mut().enumerate() {
                    let mut acc: u128 = 0;
                    for (limb, &c) in scaled.chunks(n).zip(punct) {
                        acc += u128::from(limb[k]) * u128::from(c);
                    }
                    *y = m.reduce_u128(acc);
                }
            });
    }
}

/// A ternary polynomial, uniform in {-1, 0, 1}.
pub(crate) fn sample_ternary<R: RngCore + CryptoRng + ?Sized>(n: usize, rng: &mut R) -> Vec<i64> {
    // 2^32 - 1 is a multiple of 3: rejecting only u32::MAX leaves no bias.
    const LIMIT: u32 = u32::MAX;
    (0..n)
        .map(|_| {
            loop {
                let r = rng.next_u32();
                if r < LIMIT {
                    break i64::from(r % 3) - 1;
                }
            }
        })
        .collect()
}

/// A rounded Gaussian polynomial (sigma 3.2, tails cut at 6 sigma).
pub(crate) fn sample_error<R: RngCore + CryptoRng + ?Sized>(n: usize, rng: &mut R) -> Vec<i64> {
    let unit = |rng: &mut R| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let (u1, u2) = (unit(rng), unit(rng));
        let r = (-2.0 * u1.ln()).sqrt() * SIGMA;
        let t = 2.0 * std::f64::consts::PI * u2;
        for x in [r * t.cos(), r * t.sin()] {
            if x.abs() <= ERROR_BOUND && out.len() < n {
                out.push(x.round() as i64);
            }
        }
    }
    out
}

/// A uniform polynomial over `basis` (its NTT form is uniform too, so it is
/// taken to be in NTT form directly). Deterministic in the RNG stream.
pub(crate) fn sample_uniform<R: RngCore + ?Sized>(
    ring: &Ring,
    basis: &[usize],
    rng: &mut R,
) -> Vec<u64> {
    let n = ring.n;
    let mut out = vec![0u64; n * basis.len()];
    for (limb, &p) in out.chunks_mut(n).zip(basis) {
        let q = ring.moduli[p].value();
        let mask = u64::MAX >> q.leading_zeros();
        for o in limb.iter_mut() {
            *o = loop {
                let r = rng.next_u64() & mask;
                if r < q {
                    break r;
                }
            };
        }
    }
    out
}

thread_local! {
    /// Recycled scratch buffers: avoids a fresh (page-faulting) allocation
    /// for every key-switching temporary.
    static POOL: std::cell::RefCell<Vec<Vec<u64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Most buffers kept per thread.
const POOL_MAX: usize = 48;

/// The recycled buffer that serves `len` words best: the shortest one
/// already holding `len` words (no fill needed), else the longest one with
/// the capacity (least fill), else none (no reallocation that would copy).
fn pick(len: usize) -> Option<Vec<u64>> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let full = p
            .iter()
            .enumerate()
            .filter(|(_, v)| v.len() >= len)
            .min_by_key(|(_, v)| v.len())
            .map(|(i, _)| i);
        let roomy = || {
            p.iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= len)
                .max_by_key(|(_, v)| v.len())
                .map(|(i, _)| i)
        };
        let i = full.or_else(roomy)?;
        Some(p.swap_remove(i))
    })
}

/// A zeroed scratch buffer of `len` words, reusing a recycled one if any.
pub(crate) fn take_zeroed(len: usize) -> Vec<u64> {
    match pick(len) {
        Some(mut v) => {
            v.clear();
            v.resize(len, 0);
            v
        }
        None => vec![0; len],
    }
}

/// A scratch buffer of `len` words for a caller that overwrites every word:
/// a recycled buffer keeps its old contents (no zeroing pass), only growth
/// is zero-filled.
pub(crate) fn take_scratch(len: usize) -> Vec<u64> {
    match pick(len) {
        Some(mut v) => {
            v.truncate(len);
            v.resize(len, 0);
            v
        }
        None => vec![0; len],
    }
}

/// A scratch buffer holding a copy of `src`.
pub(crate) fn take_copy(src: &[u64]) -> Vec<u64> {
    match pick(src.len()) {
        Some(mut v) => {
            v.clear();
            v.extend_from_slice(src);
            v
        }
        None => src.to_vec(),
    }
}

/// Returns a scratch buffer to this thread's pool.
pub(crate) fn recycle(v: Vec<u64>) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(v);
        }
    });
}

//! Our negacyclic NTT for one prime: the twiddle tables and the choice of
//! lane type per SIMD level (the butterflies are in `lanes.rs`).
//!
//! Primes below 2^31 run in 32-bit lanes (twice the lanes of 64-bit words
//! and single 32x32-bit products); the `u64` limbs are narrowed into a
//! per-thread buffer and widened back. Wider primes run in 64-bit lanes,
//! with IFMA's 52-bit products where the CPU has them and `q < 2^50`.

use std::cell::RefCell;

use super::lanes::{self, Lanes, PAD, Scalar32, Scalar64, Tables};
use crate::he::ckks::kernels::{fix, round_small};
use crate::he::ckks::modulus::Modulus;
use crate::he::ckks::simd::SimdLevel;
use crate::he::error::{Error, Result};

/// Primes below this run in 32-bit lanes.
const NARROW_LIMIT: u64 = 1 << 31;
/// Primes below this can use IFMA's 52-bit products (`4q < 2^52`).
const IFMA_LIMIT: u64 = 1 << 50;

/// The NTT plan for one prime `q = 1 mod 2N`, `q < 2^61`.
#[derive(Debug, Clone)]
pub(crate) struct HarveyNtt {
    m: Modulus,
    words: Words,
}

#[derive(Debug, Clone)]
enum Words {
    /// `q < 2^31`: 32-bit words, 32-bit Shoup companions.
    Narrow(Tables<u32>),
    /// 64-bit words, 64-bit Shoup companions, and 52-bit ones for IFMA
    /// when `q < 2^50`.
    Wide {
        t64: Tables<u64>,
        t52: Option<Tables<u64>>,
    },
}

thread_local! {
    /// The 32-bit copy of a limb for the narrow transforms.
    static NARROW: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

impl HarveyNtt {
    /// The plan for `N = n` (a power of two, at least 2) and prime `q`.
    pub(crate) fn new(n: usize, q: u64) -> Result<HarveyNtt> {
        HarveyNtt::with_width(n, q, q < NARROW_LIMIT)
    }

    /// The plan with 32-bit (`narrow`, needs `q < 2^31`) or 64-bit words.
    pub(crate) fn with_width(n: usize, q: u64, narrow: bool) -> Result<HarveyNtt> {
        let bad = Error::InvalidParameter {
            name: "NTT prime",
            value: q as i64,
            allowed: "a prime = 1 mod 2N below 2^61",
        };
        let two_n = 2 * n as u64;
        if !n.is_power_of_two()
            || n < 2
            || q >= 1 << 61
            || q % two_n != 1
            || !crate::he::primes::is_prime(q)
            || (narrow && q >= NARROW_LIMIT)
        {
            return Err(bad);
        }
        let m = Modulus::new(q);
        let psi = primitive_root(&m, two_n).ok_or(bad)?;
        let words = if narrow {
            Words::Narrow(tables(&m, n, psi, 32))
        } else {
            Words::Wide {
                t64: tables(&m, n, psi, 64),
                t52: (q < IFMA_LIMIT).then(|| tables(&m, n, psi, 52)),
            }
        };
        Ok(HarveyNtt { m, words })
    }

    /// Forward transform at a given SIMD level (capped at the CPU's).
    pub(crate) fn forward_at(&self, level: SimdLevel, a: &mut [u64]) {
        self.run(level, a, true);
    }

    /// Normalised inverse transform at a given SIMD level.
    pub(crate) fn inverse_at(&self, level: SimdLevel, a: &mut [u64]) {
        self.run(level, a, false);
    }

    fn run(&self, level: SimdLevel, a: &mut [u64], fwd: bool) {
        match &self.words {
            Words::Narrow(tab) => NARROW.with_borrow_mut(|buf| {
                buf.clear();
                buf.extend(a.iter().map(|&x| x as u32));
                run_narrow(level, tab, buf, fwd);
                for (o, &x) in a.iter_mut().zip(buf.iter()) {
                    *o = u64::from(x);
                }
            }),
            Words::Wide { t64, t52 } => run_wide(level, t64, t52.as_ref(), a, fwd),
        }
    }

    /// `acc += a b mod q` pointwise, at a given SIMD level.
    pub(crate) fn mul_acc_at(&self, level: SimdLevel, acc: &mut [u64], a: &[u64], b: &[u64]) {
        let q = self.m.value();
        if q < IFMA_LIMIT {
            level.arch().dispatch(MulAccF64 {
                q,
                inv_q: 1.0 / q as f64,
                acc,
                a,
                b,
            });
        } else {
            let m = self.m;
            for ((o, &x), &y) in acc.iter_mut().zip(a).zip(b) {
                *o = m.reduce_u128(u128::from(x) * u128::from(y) + u128::from(*o));
            }
        }
    }
}

/// `acc += a b mod q` for `q < 2^50`, written so that it vectorises: the
/// quotient `a b / q < 2^50` is estimated as `f64(a) f64(b) (1/q)`, within
/// `3 * 2^-53` relative (so `0.375` absolute) of the truth, so its rounding
/// is off by at most one and [`fix`] corrects the wrapped remainder.
struct MulAccF64<'a> {
    q: u64,
    inv_q: f64,
    acc: &'a mut [u64],
    a: &'a [u64],
    b: &'a [u64],
}

impl pulp::WithSimd for MulAccF64<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
        // Exact for x < 2^52, and two lane-wise operations.
        let to_f64 = |x: u64| f64::from_bits(x | MAGIC.to_bits()) - MAGIC;
        let (q, inv_q) = (self.q, self.inv_q);
        for ((o, &x), &y) in self.acc.iter_mut().zip(self.a).zip(self.b) {
            let t = round_small(to_f64(x) * to_f64(y) * inv_q);
            let r = fix(x.wrapping_mul(y).wrapping_sub(t.wrapping_mul(q)), q);
            let s = *o + r;
            *o = s - (q & 0u64.wrapping_sub(u64::from(s >= q)));
        }
    }
}

fn run_narrow(level: SimdLevel, tab: &Tables<u32>, a: &mut [u32], fwd: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::x86::{Avx2x32, Avx512x32};
        use pulp::x86::{V3, V4};
        if level >= SimdLevel::Avx512
            && a.len() >= 2 * Avx512x32::LANES
            && let Some(simd) = V4::try_new()
        {
            pulp::Simd::vectorize(
                simd,
                Job {
                    l: Avx512x32::new(simd),
                    tab,
                    a,
                    fwd,
                },
            );
            return;
        }
        if level >= SimdLevel::Avx2
            && a.len() >= 2 * Avx2x32::LANES
            && let Some(simd) = V3::try_new()
        {
            pulp::Simd::vectorize(
                simd,
                Job {
                    l: Avx2x32::new(simd),
                    tab,
                    a,
                    fwd,
                },
            );
            return;
        }
    }
    let _ = level;
    transform(Scalar32, tab, a, fwd);
}

fn run_wide(
    level: SimdLevel,
    t64: &Tables<u64>,
    t52: Option<&Tables<u64>>,
    a: &mut [u64],
    fwd: bool,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::x86::{Avx2x64, Avx512x64, Ifma52};
        use crate::he::ckks::kernels::V4Ifma;
        use pulp::x86::{V3, V4};
        if level >= SimdLevel::Avx512 && a.len() >= 2 * Avx512x64::LANES {
            if let Some(t52) = t52
                && let Some(simd) = V4Ifma::try_new()
            {
                let l = Ifma52::new(simd);
                simd.vectorize(
                    #[inline(always)]
                    move || transform(l, t52, a, fwd),
                );
                return;
            }
            if let Some(simd) = V4::try_new() {
                pulp::Simd::vectorize(
                    simd,
                    Job {
                        l: Avx512x64::new(simd),
                        tab: t64,
                        a,
                        fwd,
                    },
                );
                return;
            }
        }
        if level >= SimdLevel::Avx2
            && a.len() >= 2 * Avx2x64::LANES
            && let Some(simd) = V3::try_new()
        {
            pulp::Simd::vectorize(
                simd,
                Job {
                    l: Avx2x64::new(simd),
                    tab: t64,
                    a,
                    fwd,
                },
            );
            return;
        }
    }
    let _ = (level, t52);
    transform(Scalar64, t64, a, fwd);
}

/// One transform as a `pulp` operation: `vectorize` runs it inside a
/// function compiled for the CPU features of the lane type, into which
/// everything here is inlined.
struct Job<'a, L: Lanes> {
    l: L,
    tab: &'a Tables<L::W>,
    a: &'a mut [L::W],
    fwd: bool,
}

impl<L: Lanes> pulp::WithSimd for Job<'_, L> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        transform(self.l, self.tab, self.a, self.fwd);
    }
}

#[inline(always)]
fn transform<L: Lanes>(l: L, tab: &Tables<L::W>, a: &mut [L::W], fwd: bool) {
    if fwd {
        lanes::forward(l, tab, a);
    } else {
        lanes::inverse(l, tab, a);
    }
}

/// A primitive `2N`-th root of unity modulo the prime `q = 1 mod 2N`: the
/// smallest `g^((q-1)/2N)` with `psi^N = -1`.
fn primitive_root(m: &Modulus, two_n: u64) -> Option<u64> {
    let q = m.value();
    let e = (q - 1) / two_n;
    (2..q.min(1 << 20))
        .map(|g| m.pow(g, e))
        .find(|&psi| m.pow(psi, two_n / 2) == q - 1)
}

/// `k` with its `log2(n)` low bits reversed.
fn bit_reverse(k: usize, log_n: u32) -> usize {
    if log_n == 0 {
        0
    } else {
        k.reverse_bits() >> (usize::BITS - log_n)
    }
}

/// The twiddle tables with Shoup companions `floor(w 2^bits / q)`.
fn tables<W: TryFrom<u64> + Copy + Default>(
    m: &Modulus,
    n: usize,
    psi: u64,
    bits: u32,
) -> Tables<W> {
    let q = m.value();
    let log_n = n.trailing_zeros();
    let psi_inv = m.inv(psi);
    let n_inv = m.inv(n as u64 % q);
    let shoup = |w: u64| ((u128::from(w) << bits) / u128::from(q)) as u64;
    let word = |x: u64| W::try_from(x).unwrap_or_default();
    let mut pow = vec![1u64; n];
    let mut pow_inv = vec![1u64; n];
    for k in 1..n {
        pow[k] = m.mul(pow[k - 1], psi);
        pow_inv[k] = m.mul(pow_inv[k - 1], psi_inv);
    }
    let mut fwd: Vec<u64> = (0..n).map(|k| pow[bit_reverse(k, log_n)]).collect();
    let mut inv: Vec<u64> = (0..n).map(|k| pow_inv[bit_reverse(k, log_n)]).collect();
    if n > 1 {
        inv[1] = m.mul(inv[1], n_inv);
    }
    fwd.resize(n + PAD, 0);
    inv.resize(n + PAD, 0);
    Tables {
        q: word(q),
        fwd_s: fwd.iter().map(|&w| word(shoup(w))).collect(),
        fwd: fwd.iter().map(|&w| word(w)).collect(),
        inv_s: inv.iter().map(|&w| word(shoup(w))).collect(),
        inv: inv.iter().map(|&w| word(w)).collect(),
        n_inv: word(n_inv),
        n_inv_s: word(shoup(n_inv)),
    }
}

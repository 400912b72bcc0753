//! BFV parameters: a validating builder over `fhe`'s `BfvParametersBuilder`.
//!
//! Checks done here, before `fhe` sees anything (so `fhe` never panics on
//! them): the degree is a power of two, the plaintext modulus `t` is a prime
//! with `t = 1 mod 2N` (SIMD batching), every ciphertext modulus has 10..=62
//! bits (what `fhe` can generate), there are at least two moduli (`fhe`'s key
//! switching needs them), `q_0` leaves noise room above `t`, and the total
//! `log2(Q)` (a checked sum) is within the 128-bit table of
//! [`crate::he::security`].
//!
//! The ciphertext primes are chosen here, not by `fhe`: for each requested
//! size, the largest prime `q = 1 mod 2N` of exactly that many bits that is
//! not already in the chain and is **above `t`** (the same primes `fhe`'s
//! own generator picks whenever those conditions already hold). `fhe`'s
//! builder computes `-t mod q_i` for every prime without reducing `t`
//! first, so a prime equal to `t` panics inside `fhe` (its inverse does not
//! exist) and a prime below `t` trips a debug assertion or, in a release
//! build, silently gives a wrong scaling factor; a size with no such prime
//! is refused with [`Error::InvalidParameter`].
//!
//! Build cost: `fhe`'s builder constructs, for every level, a ring context
//! that recursively builds the contexts (and NTT tables) of all its
//! prefixes, and again for the multiplication basis, so memory and time
//! grow with `N * L^3` for `L` moduli. Measured peak memory of the build
//! (test profile, 2 busy cores): 69 MB / 0.6 s at `N = 2^13` with 4 moduli
//! ([`BfvParams::n8192`]), 609 MB / 3.8 s at `N = 2^14` with 8
//! ([`BfvParams::n16384`]), 1.2 GB / 9.5 s at `N = 2^15` with 8, and
//! 4.0 GB / 47 s at `N = 2^15` with 12 moduli of 60 bits. This is inside
//! `fhe` and cannot be changed here; [`BfvParamsBuilder::build_cost`] gives
//! the estimate before anything is allocated and
//! [`BfvParamsBuilder::max_build_bytes`] refuses chains above a limit
//! ([`Error::BudgetExceeded`]; 2 GiB by default).

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use fhe::bfv::{BfvParameters, BfvParametersBuilder};

use super::fhe_error;

use crate::he::OpKind;
use crate::he::error::{Error, Result};
use crate::he::primes::is_prime;
use crate::he::security::check_128_bit;

/// Smallest ring degree `fhe` accepts.
const MIN_DEGREE: usize = 8;
/// Bits `q_0` must have above `t` so that a ciphertext at level 0 still decrypts.
pub(crate) const Q0_ROOM_BITS: u32 = 20;

/// Validated BFV parameters: ring degree `N`, plaintext modulus `t`
/// (a prime `= 1 mod 2N`) and the ciphertext moduli `q_0, ..., q_L`.
///
/// Built by [`BfvParamsBuilder::build`] (128-bit security enforced) or, for
/// small test sets only, [`BfvParamsBuilder::build_insecure_for_tests`].
#[derive(Clone)]
pub struct BfvParams {
    degree: usize,
    plaintext_modulus: u64,
    moduli_sizes: Vec<usize>,
    secure: bool,
    inner: Arc<BfvParameters>,
}

impl fmt::Debug for BfvParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BfvParams")
            .field("degree", &self.degree)
            .field("plaintext_modulus", &self.plaintext_modulus)
            .field("moduli", &self.inner.moduli())
            .field("secure_128", &self.secure)
            .finish()
    }
}

impl BfvParams {
    /// A builder (degree, plaintext modulus and moduli sizes are required).
    pub fn builder() -> BfvParamsBuilder {
        BfvParamsBuilder::default()
    }

    /// The ring degree `N`.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The plaintext modulus `t`.
    pub fn plaintext_modulus(&self) -> u64 {
        self.plaintext_modulus
    }

    /// The ciphertext moduli `q_0, ..., q_L` (`q_0` first; modulus switching drops the last).
    pub fn moduli(&self) -> &[u64] {
        self.inner.moduli()
    }

    /// Bit sizes of the ciphertext moduli.
    pub fn moduli_sizes(&self) -> &[usize] {
        &self.moduli_sizes
    }

    /// Total `log2(Q)` in bits (sum of the moduli sizes).
    pub fn log_q(&self) -> u32 {
        // Sizes are validated (10..=62 each, a secure or test-sized count),
        // so the sum fits; saturate rather than truncate all the same.
        let sum = self
            .moduli_sizes
            .iter()
            .fold(0usize, |acc, &s| acc.saturating_add(s));
        u32::try_from(sum).unwrap_or(u32::MAX)
    }

    /// Whether the set passed the 128-bit check (false only for test sets).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The largest magnitude a slot can hold: values live in `[-(t-1)/2, (t-1)/2]`.
    pub fn max_value(&self) -> i64 {
        ((self.plaintext_modulus - 1) / 2) as i64
    }

    pub(crate) fn inner(&self) -> &Arc<BfvParameters> {
        &self.inner
    }

    /// A 64-bit fingerprint of the parameter set (degree, plaintext modulus,
    /// moduli): equal for parameters built from the same values in any
    /// process. Keys, plaintexts and ciphertexts carry it.
    pub fn fingerprint(&self) -> u64 {
        fingerprint(self.degree, self.plaintext_modulus, self.inner.moduli())
    }

    /// The default 128-bit set at `N = 8192`: moduli `[60, 40, 40, 60]`
    /// (200 bits, as the CKKS set of the same degree) and the 17-bit
    /// plaintext modulus 65537.
    pub fn n8192() -> Result<BfvParams> {
        BfvParams::builder()
            .degree(8192)
            .plaintext_modulus(65537)
            .moduli_sizes(&[60, 40, 40, 60])
            .build()
    }

    /// The default 128-bit set at `N = 16384`: eight moduli
    /// `[60, 40, 40, 40, 40, 40, 40, 60]` (360 bits; the limit is 438) and
    /// `t = 65537`.
    pub fn n16384() -> Result<BfvParams> {
        BfvParams::builder()
            .degree(16384)
            .plaintext_modulus(65537)
            .moduli_sizes(&[60, 40, 40, 40, 40, 40, 40, 60])
            .build()
    }
}

/// Default limit of [`BfvParamsBuilder::max_build_bytes`]: 2 GiB.
pub const DEFAULT_MAX_BUILD_BYTES: u64 = 2 << 30;

/// Builder of [`BfvParams`]; nothing is checked until `build`.
#[derive(Debug, Clone)]
pub struct BfvParamsBuilder {
    degree: usize,
    plaintext_modulus: u64,
    moduli_sizes: Vec<usize>,
    max_build_bytes: u64,
}

impl Default for BfvParamsBuilder {
    fn default() -> Self {
        BfvParamsBuilder {
            degree: 0,
            plaintext_modulus: 0,
            moduli_sizes: Vec::new(),
            max_build_bytes: DEFAULT_MAX_BUILD_BYTES,
        }
    }
}

/// What building a BFV parameter set costs inside `fhe` (an estimate from
/// the degree and the number of moduli, computed before anything is built).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildCost {
    /// NTT tables `fhe` constructs (ring contexts of every level and of
    /// every prefix of every level, plus the multiplication bases).
    pub ntt_tables: u64,
    /// Estimated bytes those tables and their precomputations hold.
    pub bytes: u64,
}

impl BfvParamsBuilder {
    /// The ring degree `N` (a power of two; `2^10..=2^16` for secure sets).
    pub fn degree(mut self, degree: usize) -> Self {
        self.degree = degree;
        self
    }

    /// The plaintext modulus `t`: a prime with `t = 1 mod 2N` (see
    /// [`crate::he::primes::smallest_simd_plaintext_modulus`] to find one).
    pub fn plaintext_modulus(mut self, t: u64) -> Self {
        self.plaintext_modulus = t;
        self
    }

    /// Bit sizes of the ciphertext moduli, `q_0` first (each 10..=62, at least two).
    pub fn moduli_sizes(mut self, sizes: &[usize]) -> Self {
        self.moduli_sizes = sizes.to_vec();
        self
    }

    /// The most bytes `fhe` may spend building the parameters
    /// ([`BfvParamsBuilder::build_cost`]); a larger chain is refused with
    /// [`Error::BudgetExceeded`] before anything is built. Default
    /// [`DEFAULT_MAX_BUILD_BYTES`] (2 GiB; `N = 2^14` with 8 moduli needs
    /// about 0.6 GB).
    pub fn max_build_bytes(mut self, bytes: u64) -> Self {
        self.max_build_bytes = bytes;
        self
    }

    /// The estimated cost of building these parameters inside `fhe`
    /// (see the module docs): for each level with `k` moduli, `fhe` builds
    /// a context over them that recursively holds all its prefixes
    /// (`k (k + 1) / 2` NTT tables) and a multiplication context over those
    /// `k` moduli plus `ceil((log2 Q_k + 60) / 62)` 62-bit ones (with its
    /// prefixes too). Each table and its precomputations hold about `10 N`
    /// words (measured 8.3 to 9.6 for `N = 2^13..2^15` and 4 to 12 moduli;
    /// the estimate errs high). Saturating arithmetic; nothing is built.
    pub fn build_cost(&self) -> BuildCost {
        let tri = |k: u64| k.saturating_mul(k.saturating_add(1)) / 2;
        let mut tables = tri(1);
        let mut bits = 0u64;
        for (k, &size) in self.moduli_sizes.iter().enumerate() {
            let k = k as u64 + 1;
            bits = bits.saturating_add(size as u64);
            let extra = bits.saturating_add(60).div_ceil(62);
            tables = tables
                .saturating_add(tri(k))
                .saturating_add(tri(k.saturating_add(extra)));
        }
        let bytes = tables
            .saturating_mul(self.degree as u64)
            .saturating_mul(10 * 8);
        BuildCost {
            ntt_tables: tables,
            bytes,
        }
    }

    /// Builds the parameters, refusing sets below 128-bit security
    /// ([`Error::InsecureParameters`]).
    pub fn build(self) -> Result<BfvParams> {
        let log_n = self.check_degree()?;
        let log_q = self
            .moduli_sizes
            .iter()
            .try_fold(0u32, |acc, &s| {
                u32::try_from(s).ok().and_then(|s| acc.checked_add(s))
            })
            .unwrap_or(u32::MAX);
        check_128_bit(log_n, log_q)?;
        self.finish(true)
    }

    /// Builds the parameters WITHOUT the security check. For small, fast test
    /// sets only: ciphertexts under these parameters protect nothing.
    pub fn build_insecure_for_tests(self) -> Result<BfvParams> {
        self.check_degree()?;
        self.finish(false)
    }

    fn check_degree(&self) -> Result<u32> {
        if self.degree < MIN_DEGREE || !self.degree.is_power_of_two() {
            return Err(Error::InvalidParameter {
                name: "degree",
                value: self.degree as i64,
                allowed: "a power of two >= 8",
            });
        }
        Ok(self.degree.trailing_zeros())
    }

    fn finish(self, secure: bool) -> Result<BfvParams> {
        let t = self.plaintext_modulus;
        let two_n = 2 * self.degree as u64;
        if !(3..(1u64 << 61)).contains(&t) || t % two_n != 1 || !is_prime(t) {
            return Err(Error::InvalidParameter {
                name: "plaintext modulus",
                value: t.min(i64::MAX as u64) as i64,
                allowed: "a prime below 2^61 congruent to 1 mod 2N (SIMD batching)",
            });
        }
        if self.moduli_sizes.len() < 2 {
            return Err(Error::InvalidParameter {
                name: "number of ciphertext moduli",
                value: self.moduli_sizes.len() as i64,
                allowed: "at least 2 (key switching needs them)",
            });
        }
        if let Some(&bad) = self.moduli_sizes.iter().find(|s| !(10..=62).contains(*s)) {
            return Err(Error::InvalidParameter {
                name: "ciphertext modulus size",
                value: bad as i64,
                allowed: "10..=62 bits",
            });
        }
        let t_bits = 64 - t.leading_zeros();
        if (self.moduli_sizes[0] as u32) < t_bits + Q0_ROOM_BITS {
            return Err(Error::InvalidParameter {
                name: "size of q_0",
                value: self.moduli_sizes[0] as i64,
                allowed: "at least 20 bits more than the plaintext modulus",
            });
        }
        let moduli = ciphertext_primes(&self.moduli_sizes, self.degree, t)?;
        let cost = self.build_cost();
        if cost.bytes > self.max_build_bytes {
            return Err(Error::BudgetExceeded {
                what: "bfv parameter build bytes",
                needed: cost.bytes,
                limit: self.max_build_bytes,
            });
        }
        let inner = interned(self.degree, t, &moduli)?;
        Ok(BfvParams {
            degree: self.degree,
            plaintext_modulus: t,
            moduli_sizes: inner.moduli_sizes().to_vec(),
            secure,
            inner,
        })
    }
}

/// The ciphertext primes for `sizes` at degree `degree`: for each size in
/// order, the largest prime `q = 1 mod 2N` with exactly that many bits, not
/// already chosen, and above `t` (see the module docs for why `fhe` needs
/// that). A size with no such prime left is [`Error::InvalidParameter`].
fn ciphertext_primes(sizes: &[usize], degree: usize, t: u64) -> Result<Vec<u64>> {
    let two_n = 2 * degree as u64;
    let mut chosen: Vec<u64> = Vec::with_capacity(sizes.len());
    for &size in sizes {
        // Sizes are 10..=62 (checked by the caller).
        let top = (1u64 << size) - 1;
        let bottom = 1u64 << (size - 1);
        let mut k = top / two_n;
        let mut found = None;
        while k > 0 {
            let q = k * two_n + 1;
            if q < bottom || q <= t {
                break;
            }
            if !chosen.contains(&q) && is_prime(q) {
                found = Some(q);
                break;
            }
            k -= 1;
        }
        match found {
            Some(q) => chosen.push(q),
            None => {
                return Err(Error::InvalidParameter {
                    name: "ciphertext modulus size",
                    value: size as i64,
                    allowed: "a size with a prime = 1 mod 2N above the plaintext modulus not already in the chain",
                });
            }
        }
    }
    Ok(chosen)
}

/// FNV-1a over the degree, the plaintext modulus and the moduli.
fn fingerprint(degree: usize, t: u64, moduli: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(0x4246_5600); // "BFV": no collision with a CKKS set's fingerprint
    eat(degree as u64);
    eat(t);
    eat(moduli.len() as u64);
    moduli.iter().for_each(|&q| eat(q));
    h
}

/// `fhe`'s parameters for these values, shared by every [`BfvParams`] built
/// from the same values while one is alive: `fhe` asserts that the operands
/// of an operation share one parameter object (pointer equality), and two
/// backends built from equal parameters (e.g. one from bytes) accept each
/// other's objects.
fn interned(degree: usize, t: u64, moduli: &[u64]) -> Result<Arc<BfvParameters>> {
    type Cache = Mutex<Vec<((usize, u64, Vec<u64>), Weak<BfvParameters>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (degree, t, moduli.to_vec());
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    cache.retain(|(_, w)| w.strong_count() > 0);
    if let Some(p) = cache
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(p);
    }
    let inner = BfvParametersBuilder::new()
        .set_degree(degree)
        .set_plaintext_modulus(t)
        .set_moduli(moduli)
        .build_arc()
        .map_err(|e| fhe_error(OpKind::KeyGen, e))?;
    cache.push((key, Arc::downgrade(&inner)));
    Ok(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        let ok = || {
            BfvParams::builder()
                .degree(1024)
                .plaintext_modulus(12289)
                .moduli_sizes(&[40, 40])
        };
        // 80 bits at N = 1024 is far above the 27-bit limit.
        assert!(matches!(
            ok().build(),
            Err(Error::InsecureParameters {
                log_n: 10,
                log_qp: 80,
                max_log_qp: 27
            })
        ));
        let p = ok().build_insecure_for_tests().unwrap();
        assert!(!p.is_secure());
        assert_eq!(p.max_value(), 6144);
        assert!(matches!(
            ok().plaintext_modulus(12288).build_insecure_for_tests(),
            Err(Error::InvalidParameter {
                name: "plaintext modulus",
                ..
            })
        ));
        // 17 is prime but not 1 mod 2048.
        assert!(
            ok().plaintext_modulus(17)
                .build_insecure_for_tests()
                .is_err()
        );
        assert!(ok().degree(1000).build_insecure_for_tests().is_err());
        assert!(ok().moduli_sizes(&[40]).build_insecure_for_tests().is_err());
        assert!(
            ok().moduli_sizes(&[40, 63])
                .build_insecure_for_tests()
                .is_err()
        );
        assert!(
            ok().moduli_sizes(&[30, 40])
                .build_insecure_for_tests()
                .is_err()
        );
        // N = 8192 with 219 bits is refused, 218 accepted (builder only).
        let wide = BfvParams::builder()
            .degree(8192)
            .plaintext_modulus(65537)
            .moduli_sizes(&[60, 60, 60, 39]);
        assert!(matches!(
            wide.build(),
            Err(Error::InsecureParameters {
                log_n: 13,
                log_qp: 219,
                ..
            })
        ));
    }
}

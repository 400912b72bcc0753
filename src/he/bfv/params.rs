//! BFV parameters: a validating builder over `fhe`'s `BfvParametersBuilder`.
//!
//! Checks done here, before `fhe` sees anything (so `fhe` never panics on
//! them): the degree is a power of two, the plaintext modulus `t` is a prime
//! with `t = 1 mod 2N` (SIMD batching), every ciphertext modulus has 10..=62
//! bits (what `fhe` can generate), there are at least two moduli (`fhe`'s key
//! switching needs them), `q_0` leaves noise room above `t`, and the total
//! `log2(Q)` is within the 128-bit table of [`crate::he::security`].

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use fhe::bfv::{BfvParameters, BfvParametersBuilder};

use super::fhe_error;
use crate::error::{Error, Op, Result};
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
        self.moduli_sizes.iter().sum::<usize>() as u32
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
    /// `[60, 40, 40, 40, 40, 40, 40, 60]` (400 bits) and `t = 65537`.
    pub fn n16384() -> Result<BfvParams> {
        BfvParams::builder()
            .degree(16384)
            .plaintext_modulus(65537)
            .moduli_sizes(&[60, 40, 40, 40, 40, 40, 40, 60])
            .build()
    }
}

/// Builder of [`BfvParams`]; nothing is checked until `build`.
#[derive(Debug, Clone, Default)]
pub struct BfvParamsBuilder {
    degree: usize,
    plaintext_modulus: u64,
    moduli_sizes: Vec<usize>,
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

    /// Builds the parameters, refusing sets below 128-bit security
    /// ([`Error::InsecureParameters`]).
    pub fn build(self) -> Result<BfvParams> {
        let log_n = self.check_degree()?;
        let log_q: usize = self.moduli_sizes.iter().sum();
        check_128_bit(log_n, log_q as u32)?;
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
        let inner = interned(self.degree, t, &self.moduli_sizes)?;
        Ok(BfvParams {
            degree: self.degree,
            plaintext_modulus: t,
            moduli_sizes: inner.moduli_sizes().to_vec(),
            secure,
            inner,
        })
    }
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
fn interned(degree: usize, t: u64, sizes: &[usize]) -> Result<Arc<BfvParameters>> {
    type Cache = Mutex<Vec<((usize, u64, Vec<usize>), Weak<BfvParameters>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (degree, t, sizes.to_vec());
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
        .set_moduli_sizes(sizes)
        .build_arc()
        .map_err(|e| fhe_error(Op::KeyGen, e))?;
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

//! BFV backend: an adapter implementing [`HeScheme`](crate::he::HeScheme) over the BFV scheme of
//! the pure-Rust `fhe` crate (fhe.rs). Enabled by the cargo feature `bfv`.
//!
//! Design notes, the slot mapping and benchmark figures are in `docs/bfv.md`.
//! In short:
//! - slot values are `i64`, centred modulo the plaintext modulus `t`
//!   (`[-(t-1)/2, (t-1)/2]`); arithmetic wraps modulo `t`, as BFV does;
//! - `fhe`'s SIMD slots form a `2 x N/2` matrix whose column rotations rotate
//!   both rows alike. This backend exposes **`N/2` slots**: row 0 holds the
//!   values and row 1 a copy of them, so `rotate(ct, Rotation(k))` (slot
//!   `i + k` to slot `i`, modulo `N/2`) is exactly one `fhe` column rotation
//!   and the conformance laws hold for the reported slot count;
//! - the only scale is [`Scale::ONE`]; other scales are refused;
//! - levels count what is left (fresh = [`HeScheme::max_level`](crate::he::HeScheme::max_level) =
//!   number of moduli - 1); [`HeScheme::rescale_assign`](crate::he::HeScheme::rescale_assign) is BFV modulus
//!   switching (drops `q_level`, the scale stays 1, so
//!   [`HeScheme::rescale_divisor`](crate::he::HeScheme::rescale_divisor) is 1); `fhe` counts levels the other way
//!   round (0 = all moduli) and the adapter converts;
//! - relinearisation and Galois keys are generated for every level (`fhe`'s
//!   keys are bound to one ciphertext level), with the key at the full modulus
//!   so the dropped moduli act as special primes;
//! - every caller mistake is a typed [`Error`] checked before `fhe` is called
//!   (its operator impls assert on mismatched parameters); an unforeseen
//!   library failure is [`Error::Backend`] with `fhe`'s error as source.

mod choice;
mod ops;
mod params;
mod wire;

use std::collections::BTreeSet;
use std::fmt;

use fhe::bfv::{
    Ciphertext, Encoding, EvaluationKey, Plaintext, PublicKey, RelinearizationKey, SecretKey,
};
use fhe_traits::{FheEncoder, Serialize as _};

pub use crate::he::primes::smallest_simd_plaintext_modulus;
pub use params::{BfvParams, BfvParamsBuilder, BuildCost, DEFAULT_MAX_BUILD_BYTES};

use super::{EvaluationKeys, KeyId, Level, Rotation, Scale};
use crate::he::OpKind;
use crate::he::error::{Error, Result};

const NAME: &str = "bfv";

/// Wraps an `fhe` error the adapter did not foresee.
pub(crate) fn fhe_error(op: OpKind, e: fhe::Error) -> Error {
    Error::Backend {
        op,
        scheme: NAME,
        source: Box::new(e),
    }
}

/// The BFV backend for one parameter set. Keys, plaintexts and ciphertexts
/// carry the parameters' fingerprint ([`BfvParams::fingerprint`]): a `Bfv`
/// accepts those of any `Bfv` built from the same parameters (in this or
/// another process, through [`HeWire`](crate::he::HeWire)) and refuses
/// others' ([`Error::ParameterMismatch`]).
pub struct Bfv {
    params: BfvParams,
    id: u64,
}

impl fmt::Debug for Bfv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bfv").field("params", &self.params).finish()
    }
}

/// A BFV plaintext (SIMD-encoded at a level).
#[derive(Clone)]
pub struct BfvPlaintext {
    inner: Plaintext,
    level: Level,
    id: u64,
}

impl fmt::Debug for BfvPlaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BfvPlaintext")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

/// A BFV ciphertext: 2 polynomials, or 3 after an unrelinearised product.
#[derive(Clone)]
pub struct BfvCiphertext {
    inner: Ciphertext,
    level: Level,
    id: u64,
    key: KeyId,
}

impl BfvCiphertext {
    /// Number of polynomials (2, or 3 after [`HeScheme::mul`](crate::he::HeScheme::mul)).
    pub fn size(&self) -> usize {
        self.inner.len()
    }
}

impl fmt::Debug for BfvCiphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BfvCiphertext")
            .field("level", &self.level)
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

/// The BFV secret key. `fhe` zeroises its coefficients on drop; `Debug` never
/// prints them.
pub struct BfvSecretKey {
    inner: SecretKey,
    id: u64,
    key: KeyId,
}

impl fmt::Debug for BfvSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BfvSecretKey(..)")
    }
}

/// The BFV public (encryption) key.
#[derive(Clone)]
pub struct BfvPublicKey {
    inner: PublicKey,
    id: u64,
    key: KeyId,
}

impl fmt::Debug for BfvPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BfvPublicKey(..)")
    }
}

/// BFV evaluation keys: a relinearisation key and the Galois keys of the
/// requested column rotations, each for every level.
pub struct BfvEvalKeys {
    id: u64,
    key: KeyId,
    slots: usize,
    rotations: BTreeSet<usize>,
    /// Indexed by our level (0 = one modulus left); empty without relinearisation.
    relin: Vec<RelinearizationKey>,
    /// Indexed by our level; empty without rotations.
    galois: Vec<EvaluationKey>,
}

impl fmt::Debug for BfvEvalKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BfvEvalKeys")
            .field("relinearization", &!self.relin.is_empty())
            .field("rotations", &self.rotations)
            .finish()
    }
}

impl EvaluationKeys for BfvEvalKeys {
    fn supports_relinearization(&self) -> bool {
        !self.relin.is_empty()
    }
    fn supports_rotation(&self, step: Rotation) -> bool {
        let s = step.normalized(self.slots);
        s == 0 || self.rotations.contains(&s)
    }
    fn supports_conjugation(&self) -> bool {
        false
    }
    fn key_id(&self) -> KeyId {
        self.key
    }
}

impl Bfv {
    /// A backend for these parameters.
    pub fn new(params: BfvParams) -> Bfv {
        Bfv {
            id: params.fingerprint(),
            params,
        }
    }

    /// `fhe`'s level (number of moduli dropped) for our level (levels left).
    fn fhe_level(&self, level: Level) -> usize {
        self.params.inner().max_level() - level.0 as usize
    }

    /// `fhe`'s column rotation index for a left rotation by `k` in `1..N/2`:
    /// `fhe`'s column rotation by `i` moves slot `j + i` to slot `j` in each row.
    fn column_step(&self, k: usize) -> usize {
        k
    }

    fn check_id(&self, id: u64, op: OpKind) -> Result<()> {
        if id == self.id {
            Ok(())
        } else {
            Err(Error::ParameterMismatch { op })
        }
    }

    fn check_levels(&self, op: OpKind, left: Level, right: Level) -> Result<()> {
        if left == right {
            Ok(())
        } else {
            Err(Error::LevelMismatch { op, left, right })
        }
    }

    fn check_scale(&self, op: OpKind, scale: Scale) -> Result<()> {
        if scale.approx_eq(Scale::ONE) {
            Ok(())
        } else {
            Err(Error::ScaleMismatch {
                op,
                left_log2: scale.log2(),
                right_log2: Scale::ONE.log2(),
            })
        }
    }

    fn check_value(&self, op: OpKind, v: i64) -> Result<()> {
        if v.unsigned_abs() <= self.params.max_value() as u64 {
            Ok(())
        } else {
            Err(Error::ValueOutOfRange {
                op,
                value: v as f64,
            })
        }
    }

    fn check_size(&self, op: OpKind, ct: &BfvCiphertext, expected: usize) -> Result<()> {
        if ct.size() == expected {
            Ok(())
        } else {
            Err(Error::CiphertextSize {
                op,
                size: ct.size(),
                expected,
            })
        }
    }

    fn wrap(&self, inner: Ciphertext, level: Level, key: KeyId) -> BfvCiphertext {
        BfvCiphertext {
            inner,
            level,
            id: self.id,
            key,
        }
    }

    /// The [`KeyId`] of a secret key: the domain tag `bfv`, the parameters
    /// (degree, plaintext modulus, moduli) and `fhe`'s serialisation of the
    /// secret coefficients (zeroised after hashing).
    fn secret_key_id(&self, sk: &SecretKey) -> KeyId {
        let p = self.params.inner();
        let mut params = Vec::new();
        params.extend_from_slice(&(p.degree() as u64).to_le_bytes());
        params.extend_from_slice(&p.plaintext().to_le_bytes());
        for q in p.moduli() {
            params.extend_from_slice(&q.to_le_bytes());
        }
        let mut secret = zeroize::Zeroizing::new(sk.to_bytes());
        let id = KeyId::derive(NAME, &params, secret.iter().copied());
        zeroize::Zeroize::zeroize(&mut *secret);
        id
    }

    /// The constant polynomial `c` (every SIMD slot `c`) at a level.
    fn constant(&self, op: OpKind, c: i64, level: Level) -> Result<Plaintext> {
        Plaintext::try_encode(
            &[c][..],
            Encoding::poly_at_level(self.fhe_level(level)),
            self.params.inner(),
        )
        .map_err(|e| fhe_error(op, e))
    }

    /// `a ± b` polynomial by polynomial, for operands of different sizes
    /// (`fhe`'s operators assert equal sizes).
    fn combine(&self, a: &mut BfvCiphertext, b: &BfvCiphertext, subtract: bool) -> Result<()> {
        let n = a.size().max(b.size());
        let mut polys = Vec::with_capacity(n);
        for i in 0..n {
            let p = match (a.inner.get(i), b.inner.get(i)) {
                (Some(x), Some(y)) => {
                    let mut p = x.clone();
                    if subtract {
                        p -= y;
                    } else {
                        p += y;
                    }
                    p
                }
                (Some(x), None) => x.clone(),
                (None, Some(y)) if subtract => -y,
                (None, Some(y)) => y.clone(),
                (None, None) => continue,
            };
            polys.push(p);
        }
        a.inner = Ciphertext::new(polys, self.params.inner())
            .map_err(|e| fhe_error(OpKind::CtCtAdd, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

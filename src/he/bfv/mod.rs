//! BFV backend: an adapter implementing [`HeScheme`] over the BFV scheme of
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
//! - levels count what is left (fresh = [`HeScheme::max_level`] =
//!   number of moduli - 1); [`HeScheme::rescale_assign`] is BFV modulus
//!   switching (drops `q_level`, the scale stays 1, so
//!   [`HeScheme::rescale_divisor`] is 1); `fhe` counts levels the other way
//!   round (0 = all moduli) and the adapter converts;
//! - relinearisation and Galois keys are generated for every level (`fhe`'s
//!   keys are bound to one ciphertext level), with the key at the full modulus
//!   so the dropped moduli act as special primes;
//! - every caller mistake is a typed [`Error`] checked before `fhe` is called
//!   (its operator impls assert on mismatched parameters); an unforeseen
//!   library failure is [`Error::Backend`] with `fhe`'s error as source.

mod choice;
mod params;
mod wire;

use std::collections::BTreeSet;
use std::fmt;

use fhe::bfv::{
    Ciphertext, Encoding, EvaluationKey, EvaluationKeyBuilder, Plaintext, PublicKey,
    RelinearizationKey, SecretKey,
};
use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder, FheEncrypter, Serialize as _};
use num_bigint::BigUint;
use rand_core::{CryptoRng, RngCore};

pub use crate::he::primes::smallest_simd_plaintext_modulus;
pub use params::{BfvParams, BfvParamsBuilder, BuildCost, DEFAULT_MAX_BUILD_BYTES};

use super::checks::same_key;
use super::{
    EvaluationKeys, HeScheme, KeyId, KeyRequirements, Level, Rotation, Scale, check_terms,
};
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
    /// Number of polynomials (2, or 3 after [`HeScheme::mul`]).
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

impl HeScheme for Bfv {
    type Params = BfvParams;
    type Plaintext = BfvPlaintext;
    type Ciphertext = BfvCiphertext;
    type SecretKey = BfvSecretKey;
    type PublicKey = BfvPublicKey;
    type EvalKeys = BfvEvalKeys;
    type Value = i64;

    const NAME: &'static str = NAME;

    fn params(&self) -> &BfvParams {
        &self.params
    }
    fn slot_count(&self) -> usize {
        self.params.degree() / 2
    }
    fn max_level(&self) -> Level {
        Level(self.params.inner().max_level() as u32)
    }
    fn default_scale(&self) -> Scale {
        Scale::ONE
    }
    fn plaintext_modulus(&self) -> Option<u64> {
        Some(self.params.plaintext_modulus())
    }
    fn rescale_divisor(&self, level: Level) -> Result<f64> {
        if level.0 == 0 || level > self.max_level() {
            return Err(Error::LevelExhausted {
                op: OpKind::Rescale,
                level,
                needed: Level(1),
            });
        }
        // Modulus switching keeps the plaintext as it is: no scale to divide.
        Ok(1.0)
    }
    fn level(&self, ct: &BfvCiphertext) -> Level {
        ct.level
    }
    fn scale(&self, _ct: &BfvCiphertext) -> Scale {
        Scale::ONE
    }
    fn plaintext_level(&self, pt: &BfvPlaintext) -> Level {
        pt.level
    }
    fn plaintext_scale(&self, _pt: &BfvPlaintext) -> Scale {
        Scale::ONE
    }

    fn generate_secret_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<BfvSecretKey> {
        let inner = SecretKey::random(self.params.inner(), rng);
        let key = self.secret_key_id(&inner);
        Ok(BfvSecretKey {
            inner,
            id: self.id,
            key,
        })
    }

    fn generate_public_key<R: RngCore + CryptoRng>(
        &self,
        sk: &BfvSecretKey,
        rng: &mut R,
    ) -> Result<BfvPublicKey> {
        self.check_id(sk.id, OpKind::KeyGen)?;
        Ok(BfvPublicKey {
            inner: PublicKey::new(&sk.inner, rng),
            id: self.id,
            key: sk.key,
        })
    }

    fn generate_eval_keys<R: RngCore + CryptoRng>(
        &self,
        sk: &BfvSecretKey,
        req: &KeyRequirements,
        rng: &mut R,
    ) -> Result<BfvEvalKeys> {
        self.check_id(sk.id, OpKind::KeyGen)?;
        if req.conjugation() {
            return Err(Error::Unsupported {
                op: OpKind::Conjugate,
                scheme: NAME,
            });
        }
        let slots = self.slot_count();
        let rotations = req.normalized_rotations(slots);
        let levels = 0..=self.max_level().0;
        let mut relin = Vec::new();
        if req.relinearization() {
            for l in levels.clone() {
                let key =
                    RelinearizationKey::new_leveled(&sk.inner, self.fhe_level(Level(l)), 0, rng)
                        .map_err(|e| fhe_error(OpKind::KeyGen, e))?;
                relin.push(key);
            }
        }
        let mut galois = Vec::new();
        if !rotations.is_empty() {
            for l in levels {
                let mut builder =
                    EvaluationKeyBuilder::new_leveled(&sk.inner, self.fhe_level(Level(l)), 0)
                        .map_err(|e| fhe_error(OpKind::KeyGen, e))?;
                for &k in &rotations {
                    builder
                        .enable_column_rotation(self.column_step(k))
                        .map_err(|e| fhe_error(OpKind::KeyGen, e))?;
                }
                galois.push(
                    builder
                        .build(rng)
                        .map_err(|e| fhe_error(OpKind::KeyGen, e))?,
                );
            }
        }
        Ok(BfvEvalKeys {
            id: self.id,
            key: sk.key,
            slots,
            rotations,
            relin,
            galois,
        })
    }

    fn encode(&self, values: &[i64], level: Level, scale: Scale) -> Result<BfvPlaintext> {
        let slots = self.slot_count();
        crate::he::checks::encode_args(values.len(), slots, level, self.max_level())?;
        self.check_scale(OpKind::Encode, scale)?;
        for &v in values {
            self.check_value(OpKind::Encode, v)?;
        }
        // Row 0 holds the values, row 1 a copy (see the module docs).
        let mut matrix = vec![0i64; 2 * slots];
        matrix[..values.len()].copy_from_slice(values);
        matrix[slots..slots + values.len()].copy_from_slice(values);
        let inner = Plaintext::try_encode(
            matrix.as_slice(),
            Encoding::simd_at_level(self.fhe_level(level)),
            self.params.inner(),
        )
        .map_err(|e| fhe_error(OpKind::Encode, e))?;
        Ok(BfvPlaintext {
            inner,
            level,
            id: self.id,
        })
    }

    fn decode(&self, pt: &BfvPlaintext) -> Result<Vec<i64>> {
        self.check_id(pt.id, OpKind::Encode)?;
        let v =
            Vec::<u64>::try_decode(&pt.inner, Encoding::simd_at_level(self.fhe_level(pt.level)))
                .map_err(|e| fhe_error(OpKind::Encode, e))?;
        // Centre into [-(t-1)/2, (t-1)/2] (fhe's own centring is off by one at the top).
        let t = self.params.plaintext_modulus();
        let half = (t - 1) / 2;
        Ok(v.into_iter()
            .take(self.slot_count())
            .map(|x| {
                if x <= half {
                    x as i64
                } else {
                    -((t - x) as i64)
                }
            })
            .collect())
    }

    fn encrypt<R: RngCore + CryptoRng>(
        &self,
        pk: &BfvPublicKey,
        pt: &BfvPlaintext,
        rng: &mut R,
    ) -> Result<BfvCiphertext> {
        self.check_id(pk.id, OpKind::Encrypt)?;
        self.check_id(pt.id, OpKind::Encrypt)?;
        let inner = pk
            .inner
            .try_encrypt(&pt.inner, rng)
            .map_err(|e| fhe_error(OpKind::Encrypt, e))?;
        Ok(self.wrap(inner, pt.level, pk.key))
    }

    fn encrypt_secret<R: RngCore + CryptoRng>(
        &self,
        sk: &BfvSecretKey,
        pt: &BfvPlaintext,
        rng: &mut R,
    ) -> Result<BfvCiphertext> {
        self.check_id(sk.id, OpKind::Encrypt)?;
        self.check_id(pt.id, OpKind::Encrypt)?;
        let inner = sk
            .inner
            .try_encrypt(&pt.inner, rng)
            .map_err(|e| fhe_error(OpKind::Encrypt, e))?;
        Ok(self.wrap(inner, pt.level, sk.key))
    }

    fn decrypt(&self, sk: &BfvSecretKey, ct: &BfvCiphertext) -> Result<BfvPlaintext> {
        self.check_id(sk.id, OpKind::Decrypt)?;
        self.check_id(ct.id, OpKind::Decrypt)?;
        same_key(OpKind::Decrypt, sk.key, ct.key)?;
        let inner = sk
            .inner
            .try_decrypt(&ct.inner)
            .map_err(|e| fhe_error(OpKind::Decrypt, e))?;
        Ok(BfvPlaintext {
            inner,
            level: ct.level,
            id: self.id,
        })
    }

    fn add_assign(&self, a: &mut BfvCiphertext, b: &BfvCiphertext) -> Result<()> {
        self.check_id(a.id, OpKind::CtCtAdd)?;
        self.check_id(b.id, OpKind::CtCtAdd)?;
        same_key(OpKind::CtCtAdd, a.key, b.key)?;
        self.check_levels(OpKind::CtCtAdd, a.level, b.level)?;
        if a.size() == b.size() {
            a.inner += &b.inner;
            Ok(())
        } else {
            self.combine(a, b, false)
        }
    }

    fn sub_assign(&self, a: &mut BfvCiphertext, b: &BfvCiphertext) -> Result<()> {
        self.check_id(a.id, OpKind::CtCtAdd)?;
        self.check_id(b.id, OpKind::CtCtAdd)?;
        same_key(OpKind::CtCtAdd, a.key, b.key)?;
        self.check_levels(OpKind::CtCtAdd, a.level, b.level)?;
        if a.size() == b.size() {
            a.inner -= &b.inner;
            Ok(())
        } else {
            self.combine(a, b, true)
        }
    }

    fn negate_assign(&self, a: &mut BfvCiphertext) -> Result<()> {
        self.check_id(a.id, OpKind::CtCtAdd)?;
        let c = std::mem::replace(&mut a.inner, Ciphertext::zero(self.params.inner()));
        a.inner = -c;
        Ok(())
    }

    fn add_plain_assign(&self, a: &mut BfvCiphertext, p: &BfvPlaintext) -> Result<()> {
        self.check_id(a.id, OpKind::CtPtAdd)?;
        self.check_id(p.id, OpKind::CtPtAdd)?;
        self.check_levels(OpKind::CtPtAdd, a.level, p.level)?;
        a.inner += &p.inner;
        Ok(())
    }

    fn mul_plain_assign(&self, a: &mut BfvCiphertext, p: &BfvPlaintext) -> Result<()> {
        self.check_id(a.id, OpKind::CtPtMul)?;
        self.check_id(p.id, OpKind::CtPtMul)?;
        self.check_levels(OpKind::CtPtMul, a.level, p.level)?;
        a.inner *= &p.inner;
        Ok(())
    }

    fn mul_scalar_assign(&self, a: &mut BfvCiphertext, c: i64, scale: Scale) -> Result<()> {
        self.check_id(a.id, OpKind::CtScalarMul)?;
        self.check_scale(OpKind::CtScalarMul, scale)?;
        self.check_value(OpKind::CtScalarMul, c)?;
        // Multiplying every coefficient by the integer c multiplies every slot
        // by c (no plaintext to encode); a negative c is |c| then a negation.
        let factor = BigUint::from(c.unsigned_abs());
        let mut polys: Vec<_> = a.inner.iter().map(|p| p * &factor).collect();
        if c < 0 {
            polys = polys.into_iter().map(|p| -p).collect();
        }
        a.inner = Ciphertext::new(polys, self.params.inner())
            .map_err(|e| fhe_error(OpKind::CtScalarMul, e))?;
        Ok(())
    }

    fn add_scalar_assign(&self, a: &mut BfvCiphertext, c: i64) -> Result<()> {
        self.check_id(a.id, OpKind::CtPtAdd)?;
        self.check_value(OpKind::CtPtAdd, c)?;
        let pt = self.constant(OpKind::CtPtAdd, c, a.level)?;
        a.inner += &pt;
        Ok(())
    }

    fn mul(&self, a: &BfvCiphertext, b: &BfvCiphertext) -> Result<BfvCiphertext> {
        self.check_id(a.id, OpKind::CtCtMul)?;
        self.check_id(b.id, OpKind::CtCtMul)?;
        same_key(OpKind::CtCtMul, a.key, b.key)?;
        self.check_size(OpKind::CtCtMul, a, 2)?;
        self.check_size(OpKind::CtCtMul, b, 2)?;
        self.check_levels(OpKind::CtCtMul, a.level, b.level)?;
        Ok(self.wrap(&a.inner * &b.inner, a.level, a.key))
    }

    fn relinearize_assign(&self, a: &mut BfvCiphertext, keys: &BfvEvalKeys) -> Result<()> {
        self.check_id(a.id, OpKind::Relinearize)?;
        self.check_id(keys.id, OpKind::Relinearize)?;
        same_key(OpKind::Relinearize, keys.key, a.key)?;
        let key = keys
            .relin
            .get(a.level.0 as usize)
            .ok_or(Error::MissingRelinearizationKey)?;
        self.check_size(OpKind::Relinearize, a, 3)?;
        key.relinearizes(&mut a.inner)
            .map_err(|e| fhe_error(OpKind::Relinearize, e))
    }

    fn rescale_assign(&self, a: &mut BfvCiphertext) -> Result<()> {
        self.check_id(a.id, OpKind::Rescale)?;
        self.rescale_divisor(a.level)?;
        a.inner
            .switch_down()
            .map_err(|e| fhe_error(OpKind::Rescale, e))?;
        a.level = Level(a.level.0 - 1);
        Ok(())
    }

    fn drop_level_assign(&self, a: &mut BfvCiphertext, level: Level) -> Result<()> {
        self.check_id(a.id, OpKind::LevelDrop)?;
        crate::he::checks::drop_target(a.level, level)?;
        a.inner
            .switch_to_level(self.fhe_level(level))
            .map_err(|e| fhe_error(OpKind::LevelDrop, e))?;
        a.level = level;
        Ok(())
    }

    fn rotate(
        &self,
        a: &BfvCiphertext,
        step: Rotation,
        keys: &BfvEvalKeys,
    ) -> Result<BfvCiphertext> {
        self.check_id(a.id, OpKind::Rotation)?;
        self.check_id(keys.id, OpKind::Rotation)?;
        same_key(OpKind::Rotation, keys.key, a.key)?;
        self.check_size(OpKind::Rotation, a, 2)?;
        if !keys.supports_rotation(step) {
            return Err(Error::MissingRotationKey { step });
        }
        let k = step.normalized(self.slot_count());
        if k == 0 {
            return Ok(a.clone());
        }
        let key = keys
            .galois
            .get(a.level.0 as usize)
            .ok_or(Error::MissingRotationKey { step })?;
        let inner = key
            .rotates_columns_by(&a.inner, self.column_step(k))
            .map_err(|e| fhe_error(OpKind::Rotation, e))?;
        Ok(self.wrap(inner, a.level, a.key))
    }

    fn secret_key_id(&self, sk: &BfvSecretKey) -> KeyId {
        sk.key
    }
    fn public_key_id(&self, pk: &BfvPublicKey) -> KeyId {
        pk.key
    }
    fn ciphertext_key_id(&self, ct: &BfvCiphertext) -> KeyId {
        ct.key
    }
    fn check_eval_keys(&self, keys: &BfvEvalKeys) -> Result<()> {
        self.check_id(keys.id, OpKind::KeyGen)
    }

    fn dot_plain(&self, cts: &[&BfvCiphertext], pts: &[&BfvPlaintext]) -> Result<BfvCiphertext> {
        check_terms(OpKind::CtPtMul, cts.len(), pts.len())?;
        let (level, size) = (cts[0].level, cts[0].size());
        for (c, p) in cts.iter().zip(pts) {
            self.check_id(c.id, OpKind::CtPtMul)?;
            self.check_id(p.id, OpKind::CtPtMul)?;
            same_key(OpKind::CtCtAdd, cts[0].key, c.key)?;
            self.check_levels(OpKind::CtPtMul, c.level, p.level)?;
            self.check_levels(OpKind::CtCtAdd, level, c.level)?;
            if c.size() != size {
                return Err(Error::CiphertextSize {
                    op: OpKind::CtCtAdd,
                    size: c.size(),
                    expected: size,
                });
            }
        }
        // fhe accumulates the products lazily and reduces once per output.
        let inner = fhe::bfv::dot_product_scalar(
            cts.iter().map(|c| &c.inner),
            pts.iter().map(|p| &p.inner),
        )
        .map_err(|e| fhe_error(OpKind::CtPtMul, e))?;
        Ok(self.wrap(inner, level, cts[0].key))
    }
}

#[cfg(test)]
mod tests;

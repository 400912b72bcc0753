//! The HE layer: the [`HeScheme`] trait and its backends.
//!
//! [`HeScheme`] is the one seam between network code and cryptography.
//! Everything above it (packings, compiler, evaluator) is generic over
//! `S: HeScheme`. Backends:
//!
//! | backend | what it is |
//! |---|---|
//! | [`sim`] | plaintext f64 slots with exact level/scale/slot bookkeeping; no crypto |
//! | [`Counted`] | wraps any backend and counts every operation by kind and level |
//! | `bfv` (feature `bfv`) | BFV over the `fhe` crate: integer slots, for quantised models (`docs/bfv.md`) |
//! | [`ckks`] | native RNS-CKKS (NTT via `tfhe-ntt`, hybrid key switching, hoisted rotations); see `docs/ckks.md` |
//!
//! Conventions (levels count what is left, rotation sign, scale) are written
//! down once in `docs/conventions.md`:
//! - a fresh ciphertext is at [`HeScheme::max_level`]; each rescale lowers the
//!   level by one; level 0 cannot be rescaled again;
//! - [`Scale`] is the real factor by which slot values are multiplied before
//!   rounding (log2 available through [`Scale::log2`]);
//! - `rotate(ct, Rotation(k))` moves the value in slot `i + k` to slot `i`
//!   (a left rotation for positive `k`), indices modulo the slot count.
//!
//! The server side needs only [`HeScheme::EvalKeys`] and the public key: no
//! operation but [`HeScheme::decrypt`] takes a [`HeScheme::SecretKey`].
//!
//! Randomness is passed as `R: rand_core::RngCore + rand_core::CryptoRng`
//! (`rand_core` 0.9, the traits `rand` 0.9 re-exports), so callers need not
//! use our `rand` version. Errors are this layer's own [`Error`]; a backend
//! needs nothing outside `mofhei::he`.

use std::collections::BTreeSet;
use std::fmt;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

#[cfg(feature = "bfv")]
pub mod bfv;
pub mod ckks;
pub mod counted;
pub(crate) mod doubling;
pub mod error;
pub mod key_id;
pub mod op;
pub mod primes;
pub mod security;
pub mod sim;
pub mod types;
pub mod wire;

pub use counted::Counted;
pub use error::{DecodeError, Error, Result};
pub use key_id::KeyId;
pub use op::{OpCounts, OpKind};
pub use types::{Level, Rotation, Scale};
pub use wire::HeWire;

/// A value held in one slot: `f64` for CKKS and the simulator, `i64` for BFV.
pub trait SlotValue: Copy + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// The value nearest to `x` (integer schemes round).
    fn from_f64(x: f64) -> Self;
    /// The value as an `f64`.
    fn to_f64(self) -> f64;
    /// Zero.
    fn zero() -> Self;
}

impl SlotValue for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn zero() -> Self {
        0.0
    }
}

impl SlotValue for i64 {
    fn from_f64(x: f64) -> Self {
        x.round() as i64
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn zero() -> Self {
        0
    }
}

/// Which evaluation keys to generate: relinearisation, rotation steps,
/// conjugation. A plan computes this before any ciphertext exists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRequirements {
    relinearization: bool,
    conjugation: bool,
    rotations: BTreeSet<i64>,
}

impl KeyRequirements {
    /// No keys at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also generate a relinearisation key.
    pub fn with_relinearization(mut self) -> Self {
        self.relinearization = true;
        self
    }

    /// Also generate the conjugation key.
    pub fn with_conjugation(mut self) -> Self {
        self.conjugation = true;
        self
    }

    /// Also generate Galois keys for these rotation steps.
    pub fn with_rotations(mut self, steps: impl IntoIterator<Item = Rotation>) -> Self {
        self.rotations.extend(steps.into_iter().map(|r| r.0));
        self
    }

    /// Add one rotation step.
    pub fn add_rotation(&mut self, step: Rotation) {
        self.rotations.insert(step.0);
    }

    /// Merge another set of requirements into this one.
    pub fn merge(&mut self, other: &KeyRequirements) {
        self.relinearization |= other.relinearization;
        self.conjugation |= other.conjugation;
        self.rotations.extend(other.rotations.iter().copied());
    }

    /// Whether a relinearisation key is required.
    pub fn relinearization(&self) -> bool {
        self.relinearization
    }

    /// Whether a conjugation key is required.
    pub fn conjugation(&self) -> bool {
        self.conjugation
    }

    /// The rotation steps, as given (not normalised).
    pub fn rotations(&self) -> impl Iterator<Item = Rotation> + '_ {
        self.rotations.iter().map(|&s| Rotation(s))
    }

    /// The distinct non-zero left rotations in `1..slots` these steps need.
    pub fn normalized_rotations(&self, slots: usize) -> BTreeSet<usize> {
        self.rotations
            .iter()
            .map(|&s| Rotation(s).normalized(slots))
            .filter(|&s| s != 0)
            .collect()
    }
}

/// What a set of evaluation keys can do. Lets a caller (or a plan) check keys
/// before running anything.
pub trait EvaluationKeys {
    /// Whether the keys can relinearise.
    fn supports_relinearization(&self) -> bool;
    /// Whether the keys can rotate by `step` (step 0 always can).
    fn supports_rotation(&self, step: Rotation) -> bool;
    /// Whether the keys can conjugate.
    fn supports_conjugation(&self) -> bool;
    /// The [`KeyId`] of the secret key the keys were generated from.
    fn key_id(&self) -> KeyId;
}

/// A homomorphic encryption scheme with SIMD slots, as network code sees it.
///
/// The backend implements the small required surface (encode, encrypt,
/// `*_assign` arithmetic, mul, relinearize, rescale, rotate); the rest
/// (allocating variants, `mul_relin_rescale`, dot products, rotate-and-sum,
/// many rotations of one ciphertext) is provided and may be overridden for
/// speed (lazy reduction, hoisting).
///
/// Every operation is fallible: running out of levels, a missing key,
/// mismatched scales or levels, too many values are typed [`Error`]s.
///
/// Server-side operations take at most `&Self::EvalKeys`; only
/// [`decrypt`](HeScheme::decrypt) takes the secret key.
pub trait HeScheme: Send + Sync + Sized {
    /// Parameters (ring degree, moduli, ...).
    type Params: Clone + fmt::Debug + Send + Sync;
    /// An encoded, unencrypted vector of slot values.
    type Plaintext: Clone + fmt::Debug + Send + Sync;
    /// An encrypted vector of slot values.
    type Ciphertext: Clone + fmt::Debug + Send + Sync;
    /// The secret key: zeroised on drop, never printed.
    type SecretKey: Send + Sync;
    /// The public encryption key.
    type PublicKey: Clone + fmt::Debug + Send + Sync;
    /// Relinearisation, rotation and conjugation keys (public).
    type EvalKeys: EvaluationKeys + fmt::Debug + Send + Sync;
    /// What one slot holds.
    type Value: SlotValue;

    /// Short name of the scheme, used in errors and reports.
    const NAME: &'static str;

    // ---- queries --------------------------------------------------------

    /// The parameters.
    fn params(&self) -> &Self::Params;
    /// Number of slots per ciphertext.
    fn slot_count(&self) -> usize;
    /// Level of a fresh ciphertext.
    fn max_level(&self) -> Level;
    /// The scale fresh encodings use when the caller has no reason to pick another.
    fn default_scale(&self) -> Scale;
    /// The factor a rescale at `level` divides the scale by (the modulus dropped);
    /// an error at level 0.
    fn rescale_divisor(&self, level: Level) -> Result<f64>;
    /// The plaintext modulus `t` of an exact integer scheme (BFV), whose slot
    /// arithmetic wraps modulo `t`; `None` (the default) for approximate
    /// schemes (CKKS, the simulator). The evaluator checks an integer plan's
    /// accumulator bounds against it before any ciphertext work.
    fn plaintext_modulus(&self) -> Option<u64> {
        None
    }
    /// A ciphertext's level.
    fn level(&self, ct: &Self::Ciphertext) -> Level;
    /// A ciphertext's scale.
    fn scale(&self, ct: &Self::Ciphertext) -> Scale;
    /// A plaintext's level.
    fn plaintext_level(&self, pt: &Self::Plaintext) -> Level;
    /// A plaintext's scale.
    fn plaintext_scale(&self, pt: &Self::Plaintext) -> Scale;

    // ---- keys (client side) ----------------------------------------------

    /// A fresh secret key.
    fn generate_secret_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<Self::SecretKey>;
    /// The public key of a secret key.
    fn generate_public_key<R: RngCore + CryptoRng>(
        &self,
        sk: &Self::SecretKey,
        rng: &mut R,
    ) -> Result<Self::PublicKey>;
    /// Evaluation keys for exactly what `req` asks for.
    fn generate_eval_keys<R: RngCore + CryptoRng>(
        &self,
        sk: &Self::SecretKey,
        req: &KeyRequirements,
        rng: &mut R,
    ) -> Result<Self::EvalKeys>;

    // ---- encoding and encryption -------------------------------------------

    /// Encode up to [`slot_count`](HeScheme::slot_count) values (the rest are zero)
    /// at `level` and `scale`.
    fn encode(&self, values: &[Self::Value], level: Level, scale: Scale)
    -> Result<Self::Plaintext>;
    /// Decode all slots of a plaintext.
    fn decode(&self, pt: &Self::Plaintext) -> Result<Vec<Self::Value>>;
    /// Encrypt with the public key.
    fn encrypt<R: RngCore + CryptoRng>(
        &self,
        pk: &Self::PublicKey,
        pt: &Self::Plaintext,
        rng: &mut R,
    ) -> Result<Self::Ciphertext>;
    /// Encrypt with the secret key (symmetric encryption, for the data owner
    /// who holds it: `(-a s + e + m, a)` with `a` uniform, cheaper than
    /// public-key encryption and with less noise).
    fn encrypt_secret<R: RngCore + CryptoRng>(
        &self,
        sk: &Self::SecretKey,
        pt: &Self::Plaintext,
        rng: &mut R,
    ) -> Result<Self::Ciphertext>;
    /// Decrypt (client side only: needs the secret key). The **exact**
    /// decryption: for an approximate scheme (CKKS) the result carries the
    /// ciphertext's raw noise, from which the secret key can be computed
    /// (IND-CPA^D, Li and Micciancio 2021). Keep it private to the key
    /// holder; whatever leaves the client goes through
    /// [`decrypt_flooded`](HeScheme::decrypt_flooded) (what
    /// [`Client::decrypt`](crate::eval::Client::decrypt) does by default).
    /// A ciphertext of another secret key is [`Error::KeyMismatch`].
    fn decrypt(&self, sk: &Self::SecretKey, ct: &Self::Ciphertext) -> Result<Self::Plaintext>;

    /// Decrypt with noise flooding: fresh noise `2^flooding_bits` times the
    /// standard deviation of the ciphertext's estimated error is added
    /// before anything is returned, so a shared decryption no longer
    /// reveals the error (and through it the secret key); it costs about
    /// `flooding_bits` bits of precision (`docs/security.md`). Exact schemes
    /// (BFV, whose decryption removes the noise; the simulator, which has
    /// none) keep the default: the exact decryption.
    fn decrypt_flooded<R: RngCore + CryptoRng>(
        &self,
        sk: &Self::SecretKey,
        ct: &Self::Ciphertext,
        flooding_bits: u32,
        rng: &mut R,
    ) -> Result<Self::Plaintext> {
        let _ = (flooding_bits, rng);
        self.decrypt(sk, ct)
    }

    // ---- key identity ----------------------------------------------------------

    /// The [`KeyId`] of a secret key (computed once, at generation).
    fn secret_key_id(&self, sk: &Self::SecretKey) -> KeyId;
    /// The [`KeyId`] of the secret key a public key belongs to.
    fn public_key_id(&self, pk: &Self::PublicKey) -> KeyId;
    /// The [`KeyId`] of the secret key a ciphertext is encrypted under.
    fn ciphertext_key_id(&self, ct: &Self::Ciphertext) -> KeyId;
    /// Whether evaluation keys were made for this backend's parameters:
    /// [`Error::ParameterMismatch`] otherwise (no ciphertext work).
    fn check_eval_keys(&self, keys: &Self::EvalKeys) -> Result<()>;

    // ---- arithmetic: required ------------------------------------------------

    /// `a += b`. Levels and scales must match.
    fn add_assign(&self, a: &mut Self::Ciphertext, b: &Self::Ciphertext) -> Result<()>;
    /// `a -= b`. Levels and scales must match.
    fn sub_assign(&self, a: &mut Self::Ciphertext, b: &Self::Ciphertext) -> Result<()>;
    /// `a = -a`.
    fn negate_assign(&self, a: &mut Self::Ciphertext) -> Result<()>;
    /// `a += p`. Level and scale must match.
    fn add_plain_assign(&self, a: &mut Self::Ciphertext, p: &Self::Plaintext) -> Result<()>;
    /// `a *= p`; the scale becomes the product of both scales. Levels must match.
    fn mul_plain_assign(&self, a: &mut Self::Ciphertext, p: &Self::Plaintext) -> Result<()>;
    /// `a *= c` without encoding a plaintext: `c` is rounded to an integer at
    /// `scale` (`round(c * scale)`), and `a`'s scale is multiplied by `scale`.
    fn mul_scalar_assign(
        &self,
        a: &mut Self::Ciphertext,
        c: Self::Value,
        scale: Scale,
    ) -> Result<()>;
    /// `a += c` in every slot, at `a`'s scale, without encoding a plaintext.
    fn add_scalar_assign(&self, a: &mut Self::Ciphertext, c: Self::Value) -> Result<()>;
    /// `a * b` without relinearisation (the result has one more polynomial).
    fn mul(&self, a: &Self::Ciphertext, b: &Self::Ciphertext) -> Result<Self::Ciphertext>;
    /// Relinearise a product back to two polynomials.
    fn relinearize_assign(&self, a: &mut Self::Ciphertext, keys: &Self::EvalKeys) -> Result<()>;
    /// Divide by the last modulus: level - 1, scale / [`rescale_divisor`](HeScheme::rescale_divisor).
    fn rescale_assign(&self, a: &mut Self::Ciphertext) -> Result<()>;
    /// Drop to a lower `level` without changing the scale.
    fn drop_level_assign(&self, a: &mut Self::Ciphertext, level: Level) -> Result<()>;
    /// Rotate slots: slot `i + step` moves to slot `i`.
    fn rotate(
        &self,
        a: &Self::Ciphertext,
        step: Rotation,
        keys: &Self::EvalKeys,
    ) -> Result<Self::Ciphertext>;

    /// Complex conjugation of every slot (identity on real values).
    fn conjugate(&self, a: &Self::Ciphertext, keys: &Self::EvalKeys) -> Result<Self::Ciphertext> {
        let _ = (a, keys);
        Err(Error::Unsupported {
            op: OpKind::Conjugate,
            scheme: Self::NAME,
        })
    }

    // ---- arithmetic: provided ------------------------------------------------

    /// `a + b`.
    fn add(&self, a: &Self::Ciphertext, b: &Self::Ciphertext) -> Result<Self::Ciphertext> {
        let mut c = a.clone();
        self.add_assign(&mut c, b)?;
        Ok(c)
    }

    /// `a - b`.
    fn sub(&self, a: &Self::Ciphertext, b: &Self::Ciphertext) -> Result<Self::Ciphertext> {
        let mut c = a.clone();
        self.sub_assign(&mut c, b)?;
        Ok(c)
    }

    /// `a + p`.
    fn add_plain(&self, a: &Self::Ciphertext, p: &Self::Plaintext) -> Result<Self::Ciphertext> {
        let mut c = a.clone();
        self.add_plain_assign(&mut c, p)?;
        Ok(c)
    }

    /// `a * p`.
    fn mul_plain(&self, a: &Self::Ciphertext, p: &Self::Plaintext) -> Result<Self::Ciphertext> {
        let mut c = a.clone();
        self.mul_plain_assign(&mut c, p)?;
        Ok(c)
    }

    /// `a * c` (see [`mul_scalar_assign`](HeScheme::mul_scalar_assign)).
    fn mul_scalar(
        &self,
        a: &Self::Ciphertext,
        c: Self::Value,
        scale: Scale,
    ) -> Result<Self::Ciphertext> {
        let mut out = a.clone();
        self.mul_scalar_assign(&mut out, c, scale)?;
        Ok(out)
    }

    /// The rescaled ciphertext.
    fn rescale(&self, a: &Self::Ciphertext) -> Result<Self::Ciphertext> {
        let mut c = a.clone();
        self.rescale_assign(&mut c)?;
        Ok(c)
    }

    /// `a * b`, relinearised.
    fn mul_relin(
        &self,
        a: &Self::Ciphertext,
        b: &Self::Ciphertext,
        keys: &Self::EvalKeys,
    ) -> Result<Self::Ciphertext> {
        let mut c = self.mul(a, b)?;
        self.relinearize_assign(&mut c, keys)?;
        Ok(c)
    }

    /// `a * b`, relinearised and rescaled: the usual multiplication.
    fn mul_relin_rescale(
        &self,
        a: &Self::Ciphertext,
        b: &Self::Ciphertext,
        keys: &Self::EvalKeys,
    ) -> Result<Self::Ciphertext> {
        let mut c = self.mul_relin(a, b, keys)?;
        self.rescale_assign(&mut c)?;
        Ok(c)
    }

    /// `a * a`, relinearised (backends may use a cheaper squaring).
    fn square_relin(
        &self,
        a: &Self::Ciphertext,
        keys: &Self::EvalKeys,
    ) -> Result<Self::Ciphertext> {
        self.mul_relin(a, a, keys)
    }

    /// Several rotations of one ciphertext; backends override this with hoisting
    /// (one key-switch decomposition for all steps).
    fn rotate_many(
        &self,
        a: &Self::Ciphertext,
        steps: &[Rotation],
        keys: &Self::EvalKeys,
    ) -> Result<Vec<Self::Ciphertext>> {
        steps.iter().map(|&s| self.rotate(a, s, keys)).collect()
    }

    /// Sum of `n` consecutive slots into each slot: slot `i` receives
    /// `a[i] + a[i+1] + ... + a[i+n-1]` (indices modulo the slot count), with
    /// `log2(n)` rotations by 1, 2, 4, ... `n` must be a power of two.
    fn rotate_and_sum(
        &self,
        a: &Self::Ciphertext,
        n: usize,
        keys: &Self::EvalKeys,
    ) -> Result<Self::Ciphertext> {
        if !n.is_power_of_two() {
            return Err(Error::InvalidParameter {
                name: "rotate_and_sum n",
                value: i64::try_from(n).unwrap_or(i64::MAX),
                allowed: "a power of two",
            });
        }
        doubling::rotate_sum(self, a, 1, n as u64, keys)
    }

    /// Sum of ciphertexts (at least one).
    fn sum(&self, terms: &[&Self::Ciphertext]) -> Result<Self::Ciphertext> {
        let (first, rest) = terms.split_first().ok_or(Error::EmptyOperands {
            op: OpKind::CtCtAdd,
        })?;
        let mut acc = (*first).clone();
        for t in rest {
            self.add_assign(&mut acc, t)?;
        }
        Ok(acc)
    }

    /// `sum_i cts[i] * pts[i]` (at least one term). Backends override this with
    /// a multiply-accumulate that reduces once per output.
    fn dot_plain(
        &self,
        cts: &[&Self::Ciphertext],
        pts: &[&Self::Plaintext],
    ) -> Result<Self::Ciphertext> {
        check_terms(OpKind::CtPtMul, cts.len(), pts.len())?;
        let mut acc = self.mul_plain(cts[0], pts[0])?;
        for (c, p) in cts.iter().zip(pts).skip(1) {
            let t = self.mul_plain(c, p)?;
            self.add_assign(&mut acc, &t)?;
        }
        Ok(acc)
    }

    /// `sum_i cts[i] * scalars[i]`, every scalar at `scale` (at least one term).
    /// Backends override this with a multiply-accumulate that reduces once per output.
    fn dot_scalar(
        &self,
        cts: &[&Self::Ciphertext],
        scalars: &[Self::Value],
        scale: Scale,
    ) -> Result<Self::Ciphertext> {
        check_terms(OpKind::CtScalarMul, cts.len(), scalars.len())?;
        let mut acc = self.mul_scalar(cts[0], scalars[0], scale)?;
        for (c, &s) in cts.iter().zip(scalars).skip(1) {
            let t = self.mul_scalar(c, s, scale)?;
            self.add_assign(&mut acc, &t)?;
        }
        Ok(acc)
    }

    /// Several [`HeScheme::dot_scalar`]s over one pool of ciphertexts, all
    /// with weights encoded at `scale`: output `r` is
    /// `sum_t cts[rows[r][t].0] * rows[r][t].1`, e.g. every output of a
    /// convolution window. Backends override it to read each input once for
    /// all rows (cache blocking); by default one row at a time. An index
    /// outside `cts` is [`Error::TermIndexOutOfRange`].
    fn dot_scalar_many(
        &self,
        cts: &[&Self::Ciphertext],
        rows: &[Vec<(usize, Self::Value)>],
        scale: Scale,
    ) -> Result<Vec<Self::Ciphertext>> {
        rows.iter()
            .map(|row| {
                let (terms, ws) = checks::row_terms(cts, row)?;
                self.dot_scalar(&terms, &ws, scale)
            })
            .collect()
    }
}

pub(crate) mod checks;

/// Checks the operand counts of a dot product.
pub(crate) fn check_terms(op: OpKind, left: usize, right: usize) -> Result<()> {
    if left == 0 {
        return Err(Error::EmptyOperands { op });
    }
    if left != right {
        return Err(Error::OperandCountMismatch { op, left, right });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_normalizes() {
        assert_eq!(Rotation(-1).normalized(8), 7);
        assert_eq!(Rotation(9).normalized(8), 1);
        assert_eq!(Rotation(0).normalized(8), 0);
    }

    #[test]
    fn scale_bookkeeping() {
        let s = Scale::from_log2(40.0);
        assert!(((s * s).log2() - 80.0).abs() < 1e-12);
        assert!(((s * s / s.value()).log2() - 40.0).abs() < 1e-12);
        assert!(s.approx_eq(Scale::from_log2(40.0)));
        assert!(!s.approx_eq(Scale::from_log2(40.001)));
        assert!(Scale::new(0.0).is_none());
        assert!(Scale::new(f64::NAN).is_none());
    }

    #[test]
    fn key_requirements_normalize() {
        let req = KeyRequirements::new().with_rotations([
            Rotation(1),
            Rotation(-7),
            Rotation(8),
            Rotation(0),
        ]);
        assert_eq!(
            req.normalized_rotations(8).into_iter().collect::<Vec<_>>(),
            vec![1]
        );
    }
}

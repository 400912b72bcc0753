//! [`Counted<S>`]: a wrapper backend that forwards every operation to `S` and
//! counts it by kind and by level, so counting never leaks into the evaluator.
//!
//! Composite operations are counted as the primitive operations they stand
//! for, whichever way the inner backend computes them: a dot product of `n`
//! terms is `n` ct x pt (or ct x scalar) mults and `n - 1` ct + ct adds even
//! when the backend accumulates lazily; `rotate_many` with `k` non-zero steps
//! is `k` rotations even when hoisted. Counts are therefore the same on every
//! backend and comparable to a plan's estimate.

use std::sync::Mutex;

use rand_core::{CryptoRng, RngCore};

use zeroize::Zeroizing;

use super::{HeScheme, HeWire, KeyId, KeyRequirements, Level, OpCounts, OpKind, Rotation, Scale};
use crate::he::error::Result;

/// A backend that forwards to `S` and counts every operation.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    counts: Mutex<OpCounts>,
}

impl<S: HeScheme> Counted<S> {
    /// Wrap a backend.
    pub fn new(inner: S) -> Self {
        Counted {
            inner,
            counts: Mutex::new(OpCounts::default()),
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// A snapshot of the counts so far.
    pub fn counts(&self) -> OpCounts {
        self.counts
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reset the counts to zero, returning what they were.
    pub fn take_counts(&self) -> OpCounts {
        let mut guard = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *guard)
    }

    fn record(&self, kind: OpKind, level: Level, n: u64) {
        let mut guard = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        guard.record(kind, level, n);
    }

    /// Runs `f` and records on success only.
    fn counted<T>(
        &self,
        kind: OpKind,
        level: Level,
        n: u64,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let out = f()?;
        self.record(kind, level, n);
        Ok(out)
    }
}

impl<S: HeScheme> HeScheme for Counted<S> {
    type Params = S::Params;
    type Plaintext = S::Plaintext;
    type Ciphertext = S::Ciphertext;
    type SecretKey = S::SecretKey;
    type PublicKey = S::PublicKey;
    type EvalKeys = S::EvalKeys;
    type Value = S::Value;

    const NAME: &'static str = S::NAME;

    fn params(&self) -> &S::Params {
        self.inner.params()
    }
    fn slot_count(&self) -> usize {
        self.inner.slot_count()
    }
    fn max_level(&self) -> Level {
        self.inner.max_level()
    }
    fn default_scale(&self) -> Scale {
        self.inner.default_scale()
    }
    fn plaintext_modulus(&self) -> Option<u64> {
        self.inner.plaintext_modulus()
    }
    fn rescale_divisor(&self, level: Level) -> Result<f64> {
        self.inner.rescale_divisor(level)
    }
    fn level(&self, ct: &S::Ciphertext) -> Level {
        self.inner.level(ct)
    }
    fn scale(&self, ct: &S::Ciphertext) -> Scale {
        self.inner.scale(ct)
    }
    fn plaintext_level(&self, pt: &S::Plaintext) -> Level {
        self.inner.plaintext_level(pt)
    }
    fn plaintext_scale(&self, pt: &S::Plaintext) -> Scale {
        self.inner.plaintext_scale(pt)
    }

    fn generate_secret_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<S::SecretKey> {
        self.inner.generate_secret_key(rng)
    }
    fn generate_public_key<R: RngCore + CryptoRng>(
        &self,
        sk: &S::SecretKey,
        rng: &mut R,
    ) -> Result<S::PublicKey> {
        self.inner.generate_public_key(sk, rng)
    }
    fn generate_eval_keys<R: RngCore + CryptoRng>(
        &self,
        sk: &S::SecretKey,
        req: &KeyRequirements,
        rng: &mut R,
    ) -> Result<S::EvalKeys> {
        self.inner.generate_eval_keys(sk, req, rng)
    }

    fn encode(&self, values: &[S::Value], level: Level, scale: Scale) -> Result<S::Plaintext> {
        self.counted(OpKind::Encode, level, 1, || {
            self.inner.encode(values, level, scale)
        })
    }
    fn decode(&self, pt: &S::Plaintext) -> Result<Vec<S::Value>> {
        self.inner.decode(pt)
    }
    fn encrypt<R: RngCore + CryptoRng>(
        &self,
        pk: &S::PublicKey,
        pt: &S::Plaintext,
        rng: &mut R,
    ) -> Result<S::Ciphertext> {
        let level = self.inner.plaintext_level(pt);
        self.counted(OpKind::Encrypt, level, 1, || {
            self.inner.encrypt(pk, pt, rng)
        })
    }
    fn encrypt_secret<R: RngCore + CryptoRng>(
        &self,
        sk: &S::SecretKey,
        pt: &S::Plaintext,
        rng: &mut R,
    ) -> Result<S::Ciphertext> {
        let level = self.inner.plaintext_level(pt);
        self.counted(OpKind::Encrypt, level, 1, || {
            self.inner.encrypt_secret(sk, pt, rng)
        })
    }
    fn decrypt(&self, sk: &S::SecretKey, ct: &S::Ciphertext) -> Result<S::Plaintext> {
        self.counted(OpKind::Decrypt, self.inner.level(ct), 1, || {
            self.inner.decrypt(sk, ct)
        })
    }

    fn decrypt_flooded<R: RngCore + CryptoRng>(
        &self,
        sk: &S::SecretKey,
        ct: &S::Ciphertext,
        flooding_bits: u32,
        rng: &mut R,
    ) -> Result<S::Plaintext> {
        self.counted(OpKind::Decrypt, self.inner.level(ct), 1, || {
            self.inner.decrypt_flooded(sk, ct, flooding_bits, rng)
        })
    }
    fn secret_key_id(&self, sk: &S::SecretKey) -> KeyId {
        self.inner.secret_key_id(sk)
    }
    fn public_key_id(&self, pk: &S::PublicKey) -> KeyId {
        self.inner.public_key_id(pk)
    }
    fn ciphertext_key_id(&self, ct: &S::Ciphertext) -> KeyId {
        self.inner.ciphertext_key_id(ct)
    }
    fn check_eval_keys(&self, keys: &S::EvalKeys) -> Result<()> {
        self.inner.check_eval_keys(keys)
    }

    fn add_assign(&self, a: &mut S::Ciphertext, b: &S::Ciphertext) -> Result<()> {
        let level = self.inner.level(a);
        self.counted(OpKind::CtCtAdd, level, 1, || self.inner.add_assign(a, b))
    }
    fn sub_assign(&self, a: &mut S::Ciphertext, b: &S::Ciphertext) -> Result<()> {
        let level = self.inner.level(a);
        self.counted(OpKind::CtCtAdd, level, 1, || self.inner.sub_assign(a, b))
    }
    fn negate_assign(&self, a: &mut S::Ciphertext) -> Result<()> {
        let level = self.inner.level(a);
        self.counted(OpKind::CtCtAdd, level, 1, || self.inner.negate_assign(a))
    }
    fn add_plain_assign(&self, a: &mut S::Ciphertext, p: &S::Plaintext) -> Result<()> {
        let level = self.inner.level(a);
        self.counted(OpKind::CtPtAdd, level, 1, || {
            self.inner.add_plain_assign(a, p)
        })
    }
    fn mul_plain_assign(&self, a: &mut S::Ciphertext, p: &S::Plaintext) -> Result<()> {
        let level = self.inner.level(a);
        self.counted(OpKind::CtPtMul, level, 1, || {
            self.inner.mul_plain_assign(a, p)
        })
    }
    fn mul_scalar_assign(&self, a: &mut S::Ciphertext, c: S::Value, scale: Scale) -> Result<()> {
        let level = self.inner.level(a);
        self.counted(OpKind::CtScalarMul, level, 1, || {
            self.inner.mul_scalar_assign(a, c, scale)
        })
    }
    fn add_scalar_assign(&self, a: &mut S::Ciphertext, c: S::Value) -> Result<()> {
        let level = self.inner.level(a);
        self.counted(OpKind::CtPtAdd, level, 1, || {
            self.inner.add_scalar_assign(a, c)
        })
    }
    fn mul(&self, a: &S::Ciphertext, b: &S::Ciphertext) -> Result<S::Ciphertext> {
        self.counted(OpKind::CtCtMul, self.inner.level(a), 1, || {
            self.inner.mul(a, b)
        })
    }
    fn relinearize_assign(&self, a: &mut S::Ciphertext, keys: &S::EvalKeys) -> Result<()> {
        let level = self.inner.level(a);
        self.counted(OpKind::Relinearize, level, 1, || {
            self.inner.relinearize_assign(a, keys)
        })
    }
    fn rescale_assign(&self, a: &mut S::Ciphertext) -> Result<()> {
        let level = self.inner.level(a);
        self.counted(OpKind::Rescale, level, 1, || self.inner.rescale_assign(a))
    }
    fn drop_level_assign(&self, a: &mut S::Ciphertext, level: Level) -> Result<()> {
        let from = self.inner.level(a);
        let n = u64::from(from != level);
        self.counted(OpKind::LevelDrop, from, n, || {
            self.inner.drop_level_assign(a, level)
        })
    }
    fn rotate(
        &self,
        a: &S::Ciphertext,
        step: Rotation,
        keys: &S::EvalKeys,
    ) -> Result<S::Ciphertext> {
        let n = u64::from(step.normalized(self.inner.slot_count()) != 0);
        self.counted(OpKind::Rotation, self.inner.level(a), n, || {
            self.inner.rotate(a, step, keys)
        })
    }
    fn conjugate(&self, a: &S::Ciphertext, keys: &S::EvalKeys) -> Result<S::Ciphertext> {
        self.counted(OpKind::Rotation, self.inner.level(a), 1, || {
            self.inner.conjugate(a, keys)
        })
    }

    // Provided methods: forward to the inner backend (which may override them
    // for speed) and count the primitive operations they stand for.

    fn add(&self, a: &S::Ciphertext, b: &S::Ciphertext) -> Result<S::Ciphertext> {
        self.counted(OpKind::CtCtAdd, self.inner.level(a), 1, || {
            self.inner.add(a, b)
        })
    }
    fn sub(&self, a: &S::Ciphertext, b: &S::Ciphertext) -> Result<S::Ciphertext> {
        self.counted(OpKind::CtCtAdd, self.inner.level(a), 1, || {
            self.inner.sub(a, b)
        })
    }
    fn add_plain(&self, a: &S::Ciphertext, p: &S::Plaintext) -> Result<S::Ciphertext> {
        self.counted(OpKind::CtPtAdd, self.inner.level(a), 1, || {
            self.inner.add_plain(a, p)
        })
    }
    fn mul_plain(&self, a: &S::Ciphertext, p: &S::Plaintext) -> Result<S::Ciphertext> {
        self.counted(OpKind::CtPtMul, self.inner.level(a), 1, || {
            self.inner.mul_plain(a, p)
        })
    }
    fn mul_scalar(&self, a: &S::Ciphertext, c: S::Value, scale: Scale) -> Result<S::Ciphertext> {
        self.counted(OpKind::CtScalarMul, self.inner.level(a), 1, || {
            self.inner.mul_scalar(a, c, scale)
        })
    }
    fn rescale(&self, a: &S::Ciphertext) -> Result<S::Ciphertext> {
        self.counted(OpKind::Rescale, self.inner.level(a), 1, || {
            self.inner.rescale(a)
        })
    }
    fn mul_relin(
        &self,
        a: &S::Ciphertext,
        b: &S::Ciphertext,
        keys: &S::EvalKeys,
    ) -> Result<S::Ciphertext> {
        let level = self.inner.level(a);
        let out = self.inner.mul_relin(a, b, keys)?;
        self.record(OpKind::CtCtMul, level, 1);
        self.record(OpKind::Relinearize, level, 1);
        Ok(out)
    }
    fn mul_relin_rescale(
        &self,
        a: &S::Ciphertext,
        b: &S::Ciphertext,
        keys: &S::EvalKeys,
    ) -> Result<S::Ciphertext> {
        let level = self.inner.level(a);
        let out = self.inner.mul_relin_rescale(a, b, keys)?;
        self.record(OpKind::CtCtMul, level, 1);
        self.record(OpKind::Relinearize, level, 1);
        self.record(OpKind::Rescale, level, 1);
        Ok(out)
    }
    fn square_relin(&self, a: &S::Ciphertext, keys: &S::EvalKeys) -> Result<S::Ciphertext> {
        let level = self.inner.level(a);
        let out = self.inner.square_relin(a, keys)?;
        self.record(OpKind::CtCtMul, level, 1);
        self.record(OpKind::Relinearize, level, 1);
        Ok(out)
    }
    fn rotate_many(
        &self,
        a: &S::Ciphertext,
        steps: &[Rotation],
        keys: &S::EvalKeys,
    ) -> Result<Vec<S::Ciphertext>> {
        let slots = self.inner.slot_count();
        let n = steps.iter().filter(|s| s.normalized(slots) != 0).count() as u64;
        self.counted(OpKind::Rotation, self.inner.level(a), n, || {
            self.inner.rotate_many(a, steps, keys)
        })
    }
    fn rotate_and_sum(
        &self,
        a: &S::Ciphertext,
        n: usize,
        keys: &S::EvalKeys,
    ) -> Result<S::Ciphertext> {
        let level = self.inner.level(a);
        let out = self.inner.rotate_and_sum(a, n, keys)?;
        let k = u64::from(n.max(1).trailing_zeros());
        self.record(OpKind::Rotation, level, k);
        self.record(OpKind::CtCtAdd, level, k);
        Ok(out)
    }
    fn sum(&self, terms: &[&S::Ciphertext]) -> Result<S::Ciphertext> {
        let level = terms
            .first()
            .map(|c| self.inner.level(c))
            .unwrap_or_default();
        let n = terms.len().saturating_sub(1) as u64;
        self.counted(OpKind::CtCtAdd, level, n, || self.inner.sum(terms))
    }
    fn dot_plain(&self, cts: &[&S::Ciphertext], pts: &[&S::Plaintext]) -> Result<S::Ciphertext> {
        let level = cts.first().map(|c| self.inner.level(c)).unwrap_or_default();
        let out = self.inner.dot_plain(cts, pts)?;
        self.record(OpKind::CtPtMul, level, cts.len() as u64);
        self.record(OpKind::CtCtAdd, level, cts.len().saturating_sub(1) as u64);
        Ok(out)
    }
    fn dot_scalar(
        &self,
        cts: &[&S::Ciphertext],
        scalars: &[S::Value],
        scale: Scale,
    ) -> Result<S::Ciphertext> {
        let level = cts.first().map(|c| self.inner.level(c)).unwrap_or_default();
        let out = self.inner.dot_scalar(cts, scalars, scale)?;
        self.record(OpKind::CtScalarMul, level, cts.len() as u64);
        self.record(OpKind::CtCtAdd, level, cts.len().saturating_sub(1) as u64);
        Ok(out)
    }
    fn dot_scalar_many(
        &self,
        cts: &[&S::Ciphertext],
        rows: &[Vec<(usize, S::Value)>],
        scale: Scale,
    ) -> Result<Vec<S::Ciphertext>> {
        let out = self.inner.dot_scalar_many(cts, rows, scale)?;
        for (row, ct) in rows.iter().zip(&out) {
            let level = self.inner.level(ct);
            self.record(OpKind::CtScalarMul, level, row.len() as u64);
            self.record(OpKind::CtCtAdd, level, row.len().saturating_sub(1) as u64);
        }
        Ok(out)
    }
}

/// Serialisation forwards to the wrapped backend (counting the encryption
/// of [`HeWire::encrypt_secret_to_bytes`]).
impl<S: HeWire> HeWire for Counted<S> {
    fn fingerprint(&self) -> u64 {
        self.inner.fingerprint()
    }
    fn params_to_bytes(&self) -> Result<Vec<u8>> {
        self.inner.params_to_bytes()
    }
    fn from_params_bytes(bytes: &[u8]) -> Result<Self> {
        S::from_params_bytes(bytes).map(Counted::new)
    }
    fn secret_key_to_bytes(&self, sk: &S::SecretKey) -> Result<Zeroizing<Vec<u8>>> {
        self.inner.secret_key_to_bytes(sk)
    }
    fn secret_key_from_bytes(&self, bytes: &[u8]) -> Result<S::SecretKey> {
        self.inner.secret_key_from_bytes(bytes)
    }
    fn public_key_to_bytes(&self, pk: &S::PublicKey) -> Result<Vec<u8>> {
        self.inner.public_key_to_bytes(pk)
    }
    fn public_key_from_bytes(&self, bytes: &[u8]) -> Result<S::PublicKey> {
        self.inner.public_key_from_bytes(bytes)
    }
    fn eval_keys_to_bytes(&self, keys: &S::EvalKeys) -> Result<Vec<u8>> {
        self.inner.eval_keys_to_bytes(keys)
    }
    fn eval_keys_from_bytes(&self, bytes: &[u8], req: &KeyRequirements) -> Result<S::EvalKeys> {
        self.inner.eval_keys_from_bytes(bytes, req)
    }
    fn eval_keys_size_limit(&self, req: &KeyRequirements) -> u64 {
        self.inner.eval_keys_size_limit(req)
    }
    fn ciphertext_size_limit(&self) -> u64 {
        self.inner.ciphertext_size_limit()
    }
    fn ciphertext_to_bytes(&self, ct: &S::Ciphertext) -> Result<Vec<u8>> {
        self.inner.ciphertext_to_bytes(ct)
    }
    fn ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<S::Ciphertext> {
        self.inner.ciphertext_from_bytes(bytes)
    }
    fn has_seeded_ciphertexts(&self) -> bool {
        self.inner.has_seeded_ciphertexts()
    }
    fn encrypt_secret_to_bytes<R: RngCore + CryptoRng>(
        &self,
        sk: &S::SecretKey,
        pt: &S::Plaintext,
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        let level = self.inner.plaintext_level(pt);
        self.counted(OpKind::Encrypt, level, 1, || {
            self.inner.encrypt_secret_to_bytes(sk, pt, rng)
        })
    }
    fn fresh_ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<S::Ciphertext> {
        self.inner.fresh_ciphertext_from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::he::sim::{Sim, SimParams};
    use rand::SeedableRng;

    #[test]
    fn counts_and_json() {
        let s = Counted::new(Sim::new(SimParams::new(8, &[60, 40, 40], 40).unwrap()));
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let sk = s.generate_secret_key(&mut rng).unwrap();
        let pk = s.generate_public_key(&sk, &mut rng).unwrap();
        let keys = s
            .generate_eval_keys(
                &sk,
                &KeyRequirements::new()
                    .with_relinearization()
                    .with_rotations([Rotation(1)]),
                &mut rng,
            )
            .unwrap();
        let pt = s
            .encode(&[1.0, 2.0], s.max_level(), s.default_scale())
            .unwrap();
        let ct = s.encrypt(&pk, &pt, &mut rng).unwrap();
        let p = s.mul_relin_rescale(&ct, &ct, &keys).unwrap();
        let _ = s.rotate(&ct, Rotation(1), &keys).unwrap();
        let _ = s
            .dot_scalar(&[&ct, &ct, &ct], &[1.0, 2.0, 3.0], s.default_scale())
            .unwrap();
        let c = s.counts();
        assert_eq!(c.get(OpKind::CtCtMul), 1);
        assert_eq!(c.get(OpKind::Relinearize), 1);
        assert_eq!(c.get(OpKind::Rescale), 1);
        assert_eq!(c.get(OpKind::Rotation), 1);
        assert_eq!(c.get(OpKind::CtScalarMul), 3);
        assert_eq!(c.get(OpKind::CtCtAdd), 2);
        assert_eq!(c.by_level[&2][&OpKind::CtCtMul], 1);
        assert_eq!(s.level(&p), Level(1));
        let json = c.to_json();
        assert!(json.contains("\"ct_ct_mul\": 1"), "{json}");
        let back: OpCounts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        // A failed op is not counted.
        assert!(s.rotate(&ct, Rotation(2), &keys).is_err());
        assert_eq!(s.counts().get(OpKind::Rotation), 1);
    }
}

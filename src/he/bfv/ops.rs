//! [`HeScheme`] for [`Bfv`]: keys, encoding, encryption and the
//! homomorphic operations, each checked before `fhe` is called.

use fhe::bfv::{
    Ciphertext, Encoding, EvaluationKeyBuilder, Plaintext, PublicKey, RelinearizationKey, SecretKey,
};
use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder, FheEncrypter};
use num_bigint::BigUint;
use rand_core::{CryptoRng, RngCore};

use super::{
    Bfv, BfvCiphertext, BfvEvalKeys, BfvParams, BfvPlaintext, BfvPublicKey, BfvSecretKey, NAME,
    fhe_error,
};
use crate::he::checks::same_key;
use crate::he::error::{Error, Result};
use crate::he::{
    EvaluationKeys, HeScheme, KeyId, KeyRequirements, Level, OpKind, Rotation, Scale, check_terms,
};

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

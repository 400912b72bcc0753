//! A plaintext simulator backend: f64 slots, no cryptography, exact
//! bookkeeping of level, scale, ciphertext size and keys.
//!
//! It reports the same errors a real backend does (level exhausted, scale or
//! level mismatch, missing rotation or relinearisation key, too many values,
//! scale overflow), so programs that run on the simulator run on CKKS. It is
//! what fast tests and cost estimates use.
//!
//! The simulator mirrors a modulus chain `q_0, q_1, ..., q_L`: a ciphertext
//! at level `l` lives modulo `Q_l = q_0 * ... * q_l`, and a rescale at level
//! `l` divides the scale by `q_l`. A value `v` at scale `s` overflows (and
//! would decrypt to garbage in CKKS) once `|v| * s >= Q_l / 2`; the simulator
//! reports that as [`Error::ScaleOverflow`].

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::{EvaluationKeys, HeScheme, KeyId, KeyRequirements, Level, Rotation, Scale};
use crate::he::OpKind;
use crate::he::checks::same_key;
use crate::he::error::{Error, Result};

/// Parameters of the simulator: slot count, the modulus chain (values, not
/// bits) and the default scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimParams {
    slots: usize,
    moduli: Vec<f64>,
    default_scale: Scale,
}

impl SimParams {
    /// Parameters with `slots` slots (a power of two), a chain of moduli given
    /// by their bit sizes (`q_0` first; `2^bits` each) and a default scale of
    /// `2^scale_bits`.
    pub fn new(slots: usize, moduli_bits: &[u32], scale_bits: u32) -> Result<SimParams> {
        let moduli: Vec<f64> = moduli_bits.iter().map(|&b| f64::from(b).exp2()).collect();
        SimParams::with_moduli(slots, moduli, Scale::from_log2(f64::from(scale_bits)))
    }

    /// Parameters with an explicit modulus chain (e.g. the exact primes of a CKKS
    /// parameter set, so scales are tracked exactly as CKKS tracks them).
    pub fn with_moduli(slots: usize, moduli: Vec<f64>, default_scale: Scale) -> Result<SimParams> {
        if slots == 0 || !slots.is_power_of_two() {
            return Err(Error::InvalidParameter {
                name: "slots",
                value: slots as i64,
                allowed: "a power of two",
            });
        }
        if moduli.is_empty() {
            return Err(Error::InvalidParameter {
                name: "moduli",
                value: 0,
                allowed: "at least one modulus",
            });
        }
        if let Some(bad) = moduli.iter().find(|q| !(q.is_finite() && **q >= 2.0)) {
            return Err(Error::InvalidParameter {
                name: "modulus",
                value: *bad as i64,
                allowed: ">= 2",
            });
        }
        Ok(SimParams {
            slots,
            moduli,
            default_scale,
        })
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The modulus chain, `q_0` first.
    pub fn moduli(&self) -> &[f64] {
        &self.moduli
    }

    /// The default scale.
    pub fn default_scale(&self) -> Scale {
        self.default_scale
    }

    /// The highest level (`moduli.len() - 1`).
    pub fn max_level(&self) -> Level {
        Level((self.moduli.len() - 1) as u32)
    }

    /// log2 of `Q_l`.
    pub fn log_modulus_at(&self, level: Level) -> f64 {
        self.moduli
            .iter()
            .take(level.0 as usize + 1)
            .map(|q| q.log2())
            .sum()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The simulator backend.
#[derive(Debug)]
pub struct Sim {
    params: SimParams,
    id: u64,
}

impl Sim {
    /// A fresh ciphertext of `pt` under key `key` (what either encryption gives).
    fn fresh(&self, pt: &SimPlaintext, key: KeyId) -> Result<SimCiphertext> {
        self.check_id(pt.id, OpKind::Encrypt)?;
        Ok(SimCiphertext {
            values: pt.values.clone(),
            level: pt.level,
            scale: pt.scale,
            size: 2,
            id: self.id,
            key,
        })
    }

    /// A simulator for these parameters. Keys and ciphertexts of one `Sim`
    /// are refused by another (as a real backend refuses foreign parameters).
    pub fn new(params: SimParams) -> Sim {
        Sim {
            params,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn check_id(&self, id: u64, op: OpKind) -> Result<()> {
        if id == self.id {
            Ok(())
        } else {
            Err(Error::ParameterMismatch { op })
        }
    }

    fn check_pair(
        &self,
        op: OpKind,
        a: &SimCiphertext,
        level: Level,
        scale: Scale,
        id: u64,
        key: Option<KeyId>,
    ) -> Result<()> {
        self.check_id(a.id, op)?;
        self.check_id(id, op)?;
        if let Some(key) = key {
            same_key(op, a.key, key)?;
        }
        crate::he::checks::same_level_scale(op, (a.level, a.scale), (level, scale))
    }

    /// Errors if some value times the scale reaches half the modulus at this level.
    fn check_room(&self, op: OpKind, values: &[f64], level: Level, scale: Scale) -> Result<()> {
        let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if !max.is_finite() {
            return Err(Error::ValueOutOfRange { op, value: max });
        }
        let log_q = self.params.log_modulus_at(level);
        crate::he::checks::scale_room(op, level, scale, max.max(1.0).log2(), log_q)
    }
}

/// A simulated plaintext: the slot values with their level and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct SimPlaintext {
    values: Vec<f64>,
    level: Level,
    scale: Scale,
    id: u64,
}

/// A simulated ciphertext: slot values, level, scale and size (2 after
/// relinearisation, 3 after an unrelinearised product).
#[derive(Debug, Clone, PartialEq)]
pub struct SimCiphertext {
    values: Vec<f64>,
    level: Level,
    scale: Scale,
    size: usize,
    id: u64,
    /// The secret key it is encrypted under.
    key: KeyId,
}

impl SimCiphertext {
    /// Number of polynomials a real ciphertext would have.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// The simulator's secret key (holds nothing secret; it binds to its `Sim`
/// and has a random [`KeyId`], so wrong-key misuse is caught as a real
/// backend catches it).
pub struct SimSecretKey {
    id: u64,
    key: KeyId,
}

impl std::fmt::Debug for SimSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimSecretKey(..)")
    }
}

/// The simulator's public key.
#[derive(Debug, Clone)]
pub struct SimPublicKey {
    id: u64,
    key: KeyId,
}

/// The simulator's evaluation keys: which rotations, relinearisation, conjugation.
#[derive(Debug, Clone)]
pub struct SimEvalKeys {
    id: u64,
    key: KeyId,
    slots: usize,
    relin: bool,
    conj: bool,
    rotations: BTreeSet<usize>,
}

impl EvaluationKeys for SimEvalKeys {
    fn supports_relinearization(&self) -> bool {
        self.relin
    }
    fn supports_rotation(&self, step: Rotation) -> bool {
        let s = step.normalized(self.slots);
        s == 0 || self.rotations.contains(&s)
    }
    fn supports_conjugation(&self) -> bool {
        self.conj
    }
    fn key_id(&self) -> KeyId {
        self.key
    }
}

impl HeScheme for Sim {
    type Params = SimParams;
    type Plaintext = SimPlaintext;
    type Ciphertext = SimCiphertext;
    type SecretKey = SimSecretKey;
    type PublicKey = SimPublicKey;
    type EvalKeys = SimEvalKeys;
    type Value = f64;

    const NAME: &'static str = "sim";

    fn params(&self) -> &SimParams {
        &self.params
    }
    fn slot_count(&self) -> usize {
        self.params.slots
    }
    fn max_level(&self) -> Level {
        self.params.max_level()
    }
    fn default_scale(&self) -> Scale {
        self.params.default_scale
    }
    fn rescale_divisor(&self, level: Level) -> Result<f64> {
        if level.0 == 0 || level > self.max_level() {
            return Err(Error::LevelExhausted {
                op: OpKind::Rescale,
                level,
                needed: Level(1),
            });
        }
        Ok(self.params.moduli[level.0 as usize])
    }
    fn level(&self, ct: &SimCiphertext) -> Level {
        ct.level
    }
    fn scale(&self, ct: &SimCiphertext) -> Scale {
        ct.scale
    }
    fn plaintext_level(&self, pt: &SimPlaintext) -> Level {
        pt.level
    }
    fn plaintext_scale(&self, pt: &SimPlaintext) -> Scale {
        pt.scale
    }

    fn generate_secret_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<SimSecretKey> {
        let mut nonce = [0u8; 32];
        rng.fill_bytes(&mut nonce);
        Ok(SimSecretKey {
            id: self.id,
            key: KeyId::derive("sim", &self.id.to_le_bytes(), nonce),
        })
    }
    fn generate_public_key<R: RngCore + CryptoRng>(
        &self,
        sk: &SimSecretKey,
        _rng: &mut R,
    ) -> Result<SimPublicKey> {
        self.check_id(sk.id, OpKind::KeyGen)?;
        Ok(SimPublicKey {
            id: self.id,
            key: sk.key,
        })
    }
    fn generate_eval_keys<R: RngCore + CryptoRng>(
        &self,
        sk: &SimSecretKey,
        req: &KeyRequirements,
        _rng: &mut R,
    ) -> Result<SimEvalKeys> {
        self.check_id(sk.id, OpKind::KeyGen)?;
        Ok(SimEvalKeys {
            id: self.id,
            key: sk.key,
            slots: self.params.slots,
            relin: req.relinearization(),
            conj: req.conjugation(),
            rotations: req.normalized_rotations(self.params.slots),
        })
    }

    fn encode(&self, values: &[f64], level: Level, scale: Scale) -> Result<SimPlaintext> {
        crate::he::checks::encode_args(values.len(), self.params.slots, level, self.max_level())?;
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::ValueOutOfRange {
                op: OpKind::Encode,
                value: *bad,
            });
        }
        self.check_room(OpKind::Encode, values, level, scale)?;
        let mut v = values.to_vec();
        v.resize(self.params.slots, 0.0);
        Ok(SimPlaintext {
            values: v,
            level,
            scale,
            id: self.id,
        })
    }

    fn decode(&self, pt: &SimPlaintext) -> Result<Vec<f64>> {
        self.check_id(pt.id, OpKind::Encode)?;
        Ok(pt.values.clone())
    }

    fn encrypt<R: RngCore + CryptoRng>(
        &self,
        pk: &SimPublicKey,
        pt: &SimPlaintext,
        _rng: &mut R,
    ) -> Result<SimCiphertext> {
        self.check_id(pk.id, OpKind::Encrypt)?;
        self.fresh(pt, pk.key)
    }

    fn encrypt_secret<R: RngCore + CryptoRng>(
        &self,
        sk: &SimSecretKey,
        pt: &SimPlaintext,
        _rng: &mut R,
    ) -> Result<SimCiphertext> {
        self.check_id(sk.id, OpKind::Encrypt)?;
        self.fresh(pt, sk.key)
    }

    fn decrypt(&self, sk: &SimSecretKey, ct: &SimCiphertext) -> Result<SimPlaintext> {
        self.check_id(sk.id, OpKind::Decrypt)?;
        self.check_id(ct.id, OpKind::Decrypt)?;
        same_key(OpKind::Decrypt, sk.key, ct.key)?;
        Ok(SimPlaintext {
            values: ct.values.clone(),
            level: ct.level,
            scale: ct.scale,
            id: self.id,
        })
    }

    fn add_assign(&self, a: &mut SimCiphertext, b: &SimCiphertext) -> Result<()> {
        self.check_pair(OpKind::CtCtAdd, a, b.level, b.scale, b.id, Some(b.key))?;
        a.values
            .iter_mut()
            .zip(&b.values)
            .for_each(|(x, y)| *x += y);
        a.size = a.size.max(b.size);
        self.check_room(OpKind::CtCtAdd, &a.values, a.level, a.scale)
    }

    fn sub_assign(&self, a: &mut SimCiphertext, b: &SimCiphertext) -> Result<()> {
        self.check_pair(OpKind::CtCtAdd, a, b.level, b.scale, b.id, Some(b.key))?;
        a.values
            .iter_mut()
            .zip(&b.values)
            .for_each(|(x, y)| *x -= y);
        a.size = a.size.max(b.size);
        self.check_room(OpKind::CtCtAdd, &a.values, a.level, a.scale)
    }

    fn negate_assign(&self, a: &mut SimCiphertext) -> Result<()> {
        self.check_id(a.id, OpKind::CtCtAdd)?;
        a.values.iter_mut().for_each(|x| *x = -*x);
        Ok(())
    }

    fn add_plain_assign(&self, a: &mut SimCiphertext, p: &SimPlaintext) -> Result<()> {
        self.check_pair(OpKind::CtPtAdd, a, p.level, p.scale, p.id, None)?;
        a.values
            .iter_mut()
            .zip(&p.values)
            .for_each(|(x, y)| *x += y);
        self.check_room(OpKind::CtPtAdd, &a.values, a.level, a.scale)
    }

    fn mul_plain_assign(&self, a: &mut SimCiphertext, p: &SimPlaintext) -> Result<()> {
        self.check_id(a.id, OpKind::CtPtMul)?;
        self.check_id(p.id, OpKind::CtPtMul)?;
        crate::he::checks::same_level(OpKind::CtPtMul, a.level, p.level)?;
        let scale = a.scale * p.scale;
        a.values
            .iter_mut()
            .zip(&p.values)
            .for_each(|(x, y)| *x *= y);
        a.scale = scale;
        self.check_room(OpKind::CtPtMul, &a.values, a.level, a.scale)
    }

    fn mul_scalar_assign(&self, a: &mut SimCiphertext, c: f64, scale: Scale) -> Result<()> {
        self.check_id(a.id, OpKind::CtScalarMul)?;
        if !c.is_finite() {
            return Err(Error::ValueOutOfRange {
                op: OpKind::CtScalarMul,
                value: c,
            });
        }
        // The scalar is rounded at its scale, exactly as a real backend does.
        let c = (c * scale.value()).round() / scale.value();
        a.values.iter_mut().for_each(|x| *x *= c);
        a.scale = a.scale * scale;
        self.check_room(OpKind::CtScalarMul, &a.values, a.level, a.scale)
    }

    fn add_scalar_assign(&self, a: &mut SimCiphertext, c: f64) -> Result<()> {
        self.check_id(a.id, OpKind::CtPtAdd)?;
        if !c.is_finite() {
            return Err(Error::ValueOutOfRange {
                op: OpKind::CtPtAdd,
                value: c,
            });
        }
        a.values.iter_mut().for_each(|x| *x += c);
        self.check_room(OpKind::CtPtAdd, &a.values, a.level, a.scale)
    }

    fn mul(&self, a: &SimCiphertext, b: &SimCiphertext) -> Result<SimCiphertext> {
        self.check_id(a.id, OpKind::CtCtMul)?;
        self.check_id(b.id, OpKind::CtCtMul)?;
        same_key(OpKind::CtCtMul, a.key, b.key)?;
        for ct in [a, b] {
            if ct.size != 2 {
                return Err(Error::CiphertextSize {
                    op: OpKind::CtCtMul,
                    size: ct.size,
                    expected: 2,
                });
            }
        }
        crate::he::checks::same_level(OpKind::CtCtMul, a.level, b.level)?;
        let values: Vec<f64> = a.values.iter().zip(&b.values).map(|(x, y)| x * y).collect();
        let scale = a.scale * b.scale;
        self.check_room(OpKind::CtCtMul, &values, a.level, scale)?;
        Ok(SimCiphertext {
            values,
            level: a.level,
            scale,
            size: 3,
            id: self.id,
            key: a.key,
        })
    }

    fn relinearize_assign(&self, a: &mut SimCiphertext, keys: &SimEvalKeys) -> Result<()> {
        self.check_id(a.id, OpKind::Relinearize)?;
        self.check_id(keys.id, OpKind::Relinearize)?;
        same_key(OpKind::Relinearize, keys.key, a.key)?;
        if !keys.relin {
            return Err(Error::MissingRelinearizationKey);
        }
        if a.size != 3 {
            return Err(Error::CiphertextSize {
                op: OpKind::Relinearize,
                size: a.size,
                expected: 3,
            });
        }
        a.size = 2;
        Ok(())
    }

    fn rescale_assign(&self, a: &mut SimCiphertext) -> Result<()> {
        self.check_id(a.id, OpKind::Rescale)?;
        let q = self.rescale_divisor(a.level)?;
        a.level = Level(a.level.0 - 1);
        a.scale = a.scale / q;
        Ok(())
    }

    fn drop_level_assign(&self, a: &mut SimCiphertext, level: Level) -> Result<()> {
        self.check_id(a.id, OpKind::LevelDrop)?;
        crate::he::checks::drop_target(a.level, level)?;
        a.level = level;
        self.check_room(OpKind::LevelDrop, &a.values, a.level, a.scale)
    }

    fn rotate(
        &self,
        a: &SimCiphertext,
        step: Rotation,
        keys: &SimEvalKeys,
    ) -> Result<SimCiphertext> {
        self.check_id(a.id, OpKind::Rotation)?;
        self.check_id(keys.id, OpKind::Rotation)?;
        same_key(OpKind::Rotation, keys.key, a.key)?;
        if a.size != 2 {
            return Err(Error::CiphertextSize {
                op: OpKind::Rotation,
                size: a.size,
                expected: 2,
            });
        }
        if !keys.supports_rotation(step) {
            return Err(Error::MissingRotationKey { step });
        }
        let k = step.normalized(self.params.slots);
        let mut out = a.clone();
        out.values.rotate_left(k);
        Ok(out)
    }

    fn secret_key_id(&self, sk: &SimSecretKey) -> KeyId {
        sk.key
    }
    fn public_key_id(&self, pk: &SimPublicKey) -> KeyId {
        pk.key
    }
    fn ciphertext_key_id(&self, ct: &SimCiphertext) -> KeyId {
        ct.key
    }
    fn check_eval_keys(&self, keys: &SimEvalKeys) -> Result<()> {
        self.check_id(keys.id, OpKind::KeyGen)
    }

    fn conjugate(&self, a: &SimCiphertext, keys: &SimEvalKeys) -> Result<SimCiphertext> {
        self.check_id(a.id, OpKind::Conjugate)?;
        self.check_id(keys.id, OpKind::Conjugate)?;
        same_key(OpKind::Conjugate, keys.key, a.key)?;
        if !keys.conj {
            return Err(Error::MissingConjugationKey);
        }
        // Real slots are their own conjugates.
        Ok(a.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rejects_bad_params() {
        assert!(SimParams::new(6, &[60, 40], 40).is_err());
        assert!(SimParams::new(8, &[], 40).is_err());
    }

    #[test]
    fn scale_overflow_is_reported() {
        let sim = Sim::new(SimParams::new(8, &[30], 25).unwrap());
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let sk = sim.generate_secret_key(&mut rng).unwrap();
        let pk = sim.generate_public_key(&sk, &mut rng).unwrap();
        let ct = sim
            .encrypt(
                &pk,
                &sim.encode(&[2.0], Level(0), sim.default_scale()).unwrap(),
                &mut rng,
            )
            .unwrap();
        let err = sim.mul(&ct, &ct).unwrap_err();
        assert!(matches!(err, Error::ScaleOverflow { .. }), "{err}");
    }
}

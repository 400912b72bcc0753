//! Serialisation (serde + bincode) of parameters, public and evaluation keys,
//! ciphertexts and plaintexts.
//!
//! Format: 8 magic bytes `MOFHCKKS`, one byte naming the kind, a little-
//! endian `u32` format version, then the bincode (standard config) payload.
//! Keys are stored compressed: every uniform `a` part is replaced by the
//! 32-byte seed it is expanded from (half the size).
//!
//! Loading never panics: the input size is checked against a limit computed
//! from the parameters, the header is checked, bincode decodes with a limit,
//! and the decoded value is checked against the parameters (fingerprint,
//! level, number and length of polynomials, every word below its prime,
//! Galois elements matching their steps, a finite noise estimate). Any
//! failure is [`Error::Decode`].
//!
//! Public keys, evaluation keys and ciphertexts carry the [`KeyId`] of
//! their secret key, ciphertexts also their noise estimate; both are taken
//! as written (a tag against mistakes, not an authenticator: see
//! `docs/security.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys::{
    CkksEvalKeys, CkksPublicKey, GaloisKey, SwitchingKey, digit_count, expand_public_a,
    expand_switching_a,
};
use super::noise::Noise;
use super::params::{CkksParams, ParamSpec};
use super::{Ckks, CkksCiphertext, CkksPlaintext, CkksSeededCiphertext};
use crate::he::error::{DecodeError, Error, Result};
use crate::he::{HeScheme, KeyId, Level, Scale};

const MAGIC: &[u8; 8] = b"MOFHCKKS";
/// The format version this build writes and reads. Version 2: switching
/// keys are stored divided by P and (on primes of 50 bits or more) in
/// Montgomery form, see the key module. Version 3: keys and ciphertexts
/// carry the [`KeyId`] of their secret key, ciphertexts their noise
/// estimate. Other versions are refused.
pub const FORMAT_VERSION: u32 = 3;
const HEADER_LEN: usize = 13;
/// Backstop limit handed to bincode (the per-kind limits are tighter).
const BINCODE_LIMIT: usize = 1 << 36;

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Params = 1,
    Ciphertext = 2,
    Plaintext = 3,
    PublicKey = 4,
    EvalKeys = 5,
    SeededCiphertext = 6,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Params => "CKKS parameters",
            Kind::Ciphertext => "CKKS ciphertext",
            Kind::Plaintext => "CKKS plaintext",
            Kind::PublicKey => "CKKS public key",
            Kind::EvalKeys => "CKKS evaluation keys",
            Kind::SeededCiphertext => "CKKS seeded ciphertext",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct PolysWire {
    fp: u64,
    level: u32,
    scale: f64,
    polys: Vec<Vec<u64>>,
}

#[derive(Serialize, Deserialize)]
struct CiphertextWire {
    key: [u8; 16],
    noise_var: f64,
    noise_msg: f64,
    body: PolysWire,
}

#[derive(Serialize, Deserialize)]
struct SeededWire {
    key: [u8; 16],
    noise_var: f64,
    noise_msg: f64,
    fp: u64,
    level: u32,
    scale: f64,
    seed: [u8; 32],
    c0: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct PublicKeyWire {
    key: [u8; 16],
    fp: u64,
    seed: [u8; 32],
    b: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct SwitchingWire {
    seed: [u8; 32],
    b: Vec<Vec<u64>>,
}

#[derive(Serialize, Deserialize)]
struct EvalKeysWire {
    key: [u8; 16],
    fp: u64,
    relin: Option<SwitchingWire>,
    conj: Option<SwitchingWire>,
    rotations: Vec<(u64, SwitchingWire)>,
}

fn encode<T: Serialize>(kind: Kind, value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(MAGIC);
    out.push(kind as u8);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|_| Error::Encode { what: kind.what() })?;
    out.extend_from_slice(&body);
    Ok(out)
}

fn decode<T: for<'de> Deserialize<'de>>(kind: Kind, bytes: &[u8], limit: u64) -> Result<T> {
    let fail = |reason| Error::Decode {
        what: kind.what(),
        reason,
    };
    if bytes.len() as u64 > limit {
        return Err(fail(DecodeError::TooLarge {
            len: bytes.len() as u64,
            limit,
        }));
    }
    if bytes.len() < HEADER_LEN {
        return Err(fail(DecodeError::Malformed {
            offset: bytes.len() as u64,
        }));
    }
    if &bytes[..8] != MAGIC || bytes[8] != kind as u8 {
        return Err(fail(DecodeError::BadMagic));
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&bytes[9..13]);
    let version = u32::from_le_bytes(v);
    if version != FORMAT_VERSION {
        return Err(fail(DecodeError::Version {
            found: version,
            supported: FORMAT_VERSION,
        }));
    }
    let config = bincode::config::standard().with_limit::<BINCODE_LIMIT>();
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(&bytes[HEADER_LEN..], config)
        .map_err(|_| {
            fail(DecodeError::Malformed {
                offset: HEADER_LEN as u64,
            })
        })?;
    let rest = bytes.len() - HEADER_LEN - used;
    if rest != 0 {
        return Err(fail(DecodeError::TrailingBytes { count: rest as u64 }));
    }
    Ok(value)
}

impl CkksParams {
    /// The parameters as bytes (the generating spec; primes are regenerated on load).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        encode(Kind::Params, self.spec())
    }

    /// Parameters from bytes. Always enforces 128-bit security: insecure test
    /// parameters cannot be loaded.
    pub fn from_bytes(bytes: &[u8]) -> Result<CkksParams> {
        let spec: ParamSpec = decode(Kind::Params, bytes, 4096)?;
        CkksParams::from_spec(&spec)
    }
}

impl Ckks {
    fn not_conforming(kind: Kind, what: &'static str) -> Error {
        Error::Decode {
            what: kind.what(),
            reason: DecodeError::NotConforming { what },
        }
    }

    /// Upper bound of the encoded size of `words` residues (varints of at most 9 bytes).
    fn limit_for(&self, words: usize) -> u64 {
        // Saturating: `max_keys = usize::MAX` means "no bound", not a wrap.
        (words as u64).saturating_mul(10).saturating_add(1024)
    }

    /// Checks `poly` has `limbs` limbs of `N` words over the given primes, all reduced.
    fn check_poly(&self, kind: Kind, poly: &[u64], primes: &[usize]) -> Result<()> {
        let n = self.n();
        if poly.len() != primes.len() * n {
            return Err(Ckks::not_conforming(kind, "polynomial length"));
        }
        for (limb, &p) in poly.chunks(n).zip(primes) {
            let q = self.ring.moduli[p].value();
            if limb.iter().any(|&x| x >= q) {
                return Err(Ckks::not_conforming(kind, "residue not below its prime"));
            }
        }
        Ok(())
    }

    fn polys_wire(&self, kind: Kind, w: PolysWire, sizes: (usize, usize)) -> Result<PolysWire> {
        if w.fp != self.fp {
            return Err(Ckks::not_conforming(kind, "parameter fingerprint"));
        }
        if Level(w.level) > self.max_level() {
            return Err(Ckks::not_conforming(kind, "level"));
        }
        if Scale::new(w.scale).is_none() {
            return Err(Ckks::not_conforming(kind, "scale"));
        }
        if w.polys.len() < sizes.0 || w.polys.len() > sizes.1 {
            return Err(Ckks::not_conforming(kind, "number of polynomials"));
        }
        let primes: Vec<usize> = (0..=w.level as usize).collect();
        for p in &w.polys {
            self.check_poly(kind, p, &primes)?;
        }
        Ok(w)
    }

    /// A noise estimate from bytes: finite and non-negative.
    fn noise_wire(kind: Kind, var: f64, msg: f64) -> Result<Noise> {
        let noise = Noise { var, msg };
        if noise.is_valid() {
            Ok(noise)
        } else {
            Err(Ckks::not_conforming(kind, "noise estimate"))
        }
    }

    /// Squared 2-norm of a plaintext's centred coefficients.
    fn norm_sq(&self, poly: &[u64], level: Level) -> f64 {
        let l = level.0 as usize;
        let mut coeffs = poly.to_vec();
        let basis: Vec<usize> = (0..=l).collect();
        self.ring.inverse_all(&mut coeffs, &basis);
        self.centred_coeffs(&coeffs, l).iter().map(|c| c * c).sum()
    }

    /// A ciphertext as bytes.
    pub fn ciphertext_to_bytes(&self, ct: &CkksCiphertext) -> Result<Vec<u8>> {
        encode(
            Kind::Ciphertext,
            &CiphertextWire {
                key: ct.key.to_bytes(),
                noise_var: ct.noise.var,
                noise_msg: ct.noise.msg,
                body: PolysWire {
                    fp: ct.fp,
                    level: ct.level.0,
                    scale: ct.scale.value(),
                    polys: ct.polys.clone(),
                },
            },
        )
    }

    /// A ciphertext from bytes, checked against these parameters.
    pub fn ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<CkksCiphertext> {
        let limit = self.limit_for(3 * self.params.moduli().len() * self.n());
        let c: CiphertextWire = decode(Kind::Ciphertext, bytes, limit)?;
        let noise = Ckks::noise_wire(Kind::Ciphertext, c.noise_var, c.noise_msg)?;
        let w = self.polys_wire(Kind::Ciphertext, c.body, (2, 3))?;
        Ok(CkksCiphertext {
            polys: w.polys,
            level: Level(w.level),
            scale: Scale::new(w.scale).unwrap_or(Scale::ONE),
            fp: self.fp,
            key: KeyId::from_bytes(c.key),
            noise,
        })
    }

    /// A seeded ciphertext as bytes: `c_0` and a 32-byte seed, half the size
    /// of [`Ckks::ciphertext_to_bytes`].
    pub fn seeded_ciphertext_to_bytes(&self, ct: &CkksSeededCiphertext) -> Result<Vec<u8>> {
        encode(
            Kind::SeededCiphertext,
            &SeededWire {
                key: ct.key.to_bytes(),
                noise_var: ct.noise.var,
                noise_msg: ct.noise.msg,
                fp: ct.fp,
                level: ct.level.0,
                scale: ct.scale.value(),
                seed: ct.seed,
                c0: ct.c0.clone(),
            },
        )
    }

    /// A seeded ciphertext from bytes, checked against these parameters.
    pub fn seeded_ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<CkksSeededCiphertext> {
        let kind = Kind::SeededCiphertext;
        let limit = self.limit_for(self.params.moduli().len() * self.n());
        let w: SeededWire = decode(kind, bytes, limit)?;
        let seed = w.seed;
        let key = KeyId::from_bytes(w.key);
        let noise = Ckks::noise_wire(kind, w.noise_var, w.noise_msg)?;
        let p = self.polys_wire(
            kind,
            PolysWire {
                fp: w.fp,
                level: w.level,
                scale: w.scale,
                polys: vec![w.c0],
            },
            (1, 1),
        )?;
        Ok(CkksSeededCiphertext {
            c0: p.polys.into_iter().next().unwrap_or_default(),
            seed,
            level: Level(p.level),
            scale: Scale::new(p.scale).unwrap_or(Scale::ONE),
            fp: self.fp,
            key,
            noise,
        })
    }

    /// A plaintext as bytes.
    pub fn plaintext_to_bytes(&self, pt: &CkksPlaintext) -> Result<Vec<u8>> {
        encode(
            Kind::Plaintext,
            &PolysWire {
                fp: pt.fp,
                level: pt.level.0,
                scale: pt.scale.value(),
                polys: vec![pt.poly.clone()],
            },
        )
    }

    /// A plaintext from bytes, checked against these parameters.
    pub fn plaintext_from_bytes(&self, bytes: &[u8]) -> Result<CkksPlaintext> {
        let limit = self.limit_for(self.params.moduli().len() * self.n());
        let w: PolysWire = decode(Kind::Plaintext, bytes, limit)?;
        let mut w = self.polys_wire(Kind::Plaintext, w, (1, 1))?;
        let poly = w.polys.pop().unwrap_or_default();
        let level = Level(w.level);
        Ok(CkksPlaintext {
            norm_sq: self.norm_sq(&poly, level),
            poly,
            level,
            scale: Scale::new(w.scale).unwrap_or(Scale::ONE),
            fp: self.fp,
        })
    }

    fn all_primes(&self) -> Vec<usize> {
        (0..self.ring.num_q + self.ring.num_p).collect()
    }

    /// A public key as bytes (compressed: the seed of `a`, not `a`).
    pub fn public_key_to_bytes(&self, pk: &CkksPublicKey) -> Result<Vec<u8>> {
        encode(
            Kind::PublicKey,
            &PublicKeyWire {
                key: pk.key.to_bytes(),
                fp: pk.fp,
                seed: pk.seed,
                b: pk.b.clone(),
            },
        )
    }

    /// A public key from bytes, checked against these parameters.
    pub fn public_key_from_bytes(&self, bytes: &[u8]) -> Result<CkksPublicKey> {
        let primes = self.all_primes();
        let limit = self.limit_for(primes.len() * self.n());
        let w: PublicKeyWire = decode(Kind::PublicKey, bytes, limit)?;
        if w.fp != self.fp {
            return Err(Ckks::not_conforming(
                Kind::PublicKey,
                "parameter fingerprint",
            ));
        }
        self.check_poly(Kind::PublicKey, &w.b, &primes)?;
        Ok(CkksPublicKey {
            seed: w.seed,
            a: expand_public_a(&self.ring, w.seed),
            b: w.b,
            fp: self.fp,
            key: KeyId::from_bytes(w.key),
        })
    }

    fn switching_from_wire(&self, w: SwitchingWire) -> Result<SwitchingKey> {
        let primes = self.all_primes();
        if w.b.len() != digit_count(&self.ring) {
            return Err(Ckks::not_conforming(Kind::EvalKeys, "number of digits"));
        }
        for b in &w.b {
            self.check_poly(Kind::EvalKeys, b, &primes)?;
        }
        Ok(SwitchingKey {
            seed: w.seed,
            a: expand_switching_a(&self.ring, w.seed),
            b: w.b,
        })
    }

    fn switching_to_wire(key: &SwitchingKey) -> SwitchingWire {
        SwitchingWire {
            seed: key.seed,
            b: key.b.clone(),
        }
    }

    /// Evaluation keys as bytes (compressed: seeds instead of the `a` parts).
    pub fn eval_keys_to_bytes(&self, keys: &CkksEvalKeys) -> Result<Vec<u8>> {
        encode(
            Kind::EvalKeys,
            &EvalKeysWire {
                key: keys.key.to_bytes(),
                fp: keys.fp,
                relin: keys.relin.as_ref().map(Ckks::switching_to_wire),
                conj: keys.conj.as_ref().map(|g| Ckks::switching_to_wire(&g.key)),
                rotations: keys
                    .rotations
                    .iter()
                    .map(|(&k, g)| (k as u64, Ckks::switching_to_wire(&g.key)))
                    .collect(),
            },
        )
    }

    /// Evaluation keys from bytes, checked against these parameters
    /// (`max_keys` bounds the number of switching keys accepted).
    pub fn eval_keys_from_bytes(&self, bytes: &[u8], max_keys: usize) -> Result<CkksEvalKeys> {
        let per_key = digit_count(&self.ring) * self.all_primes().len() * self.n();
        let limit = self.limit_for(per_key.saturating_mul(max_keys));
        let w: EvalKeysWire = decode(Kind::EvalKeys, bytes, limit)?;
        let count = w
            .rotations
            .len()
            .saturating_add(usize::from(w.relin.is_some()) + usize::from(w.conj.is_some()));
        if count > max_keys {
            return Err(Ckks::not_conforming(
                Kind::EvalKeys,
                "more keys than max_keys",
            ));
        }
        if w.fp != self.fp {
            return Err(Ckks::not_conforming(
                Kind::EvalKeys,
                "parameter fingerprint",
            ));
        }
        let n = self.n();
        let slots = self.slot_count();
        let relin = w.relin.map(|k| self.switching_from_wire(k)).transpose()?;
        let conj = match w.conj {
            Some(k) => {
                let g = 2 * n as u64 - 1;
                Some(GaloisKey {
                    key: self.switching_from_wire(k)?,
                    perm: self.ring.galois.permutation(g),
                })
            }
            None => None,
        };
        let mut rotations = BTreeMap::new();
        for (step, k) in w.rotations {
            if step == 0 || step >= slots as u64 || rotations.contains_key(&(step as usize)) {
                return Err(Ckks::not_conforming(Kind::EvalKeys, "rotation step"));
            }
            let g = super::rotate::rotation_element(n, step as usize);
            rotations.insert(
                step as usize,
                GaloisKey {
                    key: self.switching_from_wire(k)?,
                    perm: self.ring.galois.permutation(g),
                },
            );
        }
        Ok(CkksEvalKeys {
            fp: self.fp,
            key: KeyId::from_bytes(w.key),
            slots,
            relin,
            conj,
            rotations,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::he::{KeyRequirements, Rotation};

    fn params() -> CkksParams {
        CkksParams::builder()
            .log_n(12)
            .moduli_bits(&[36, 30])
            .special_bits(&[40])
            .scale_bits(30)
            .build()
            .unwrap()
    }

    #[test]
    fn round_trips() {
        let p = params();
        let ckks = Ckks::new(p.clone()).unwrap();
        assert_eq!(CkksParams::from_bytes(&p.to_bytes().unwrap()).unwrap(), p);
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let sk = ckks.generate_secret_key(&mut rng).unwrap();
        let pk = ckks.generate_public_key(&sk, &mut rng).unwrap();
        let req = KeyRequirements::new()
            .with_relinearization()
            .with_conjugation()
            .with_rotations([Rotation(1), Rotation(-2)]);
        let keys = ckks.generate_eval_keys(&sk, &req, &mut rng).unwrap();
        let pk_bytes = ckks.public_key_to_bytes(&pk).unwrap();
        // compressed: about half of the (b, a) size
        assert!(pk_bytes.len() < pk.b.len() * 8 * 2 * 6 / 10);
        let pk2 = ckks.public_key_from_bytes(&pk_bytes).unwrap();
        assert_eq!(pk2.a, pk.a);
        let kb = ckks.eval_keys_to_bytes(&keys).unwrap();
        let keys2 = ckks.eval_keys_from_bytes(&kb, 8).unwrap();
        let pt = ckks
            .encode(&[0.5, -0.25], ckks.max_level(), ckks.default_scale())
            .unwrap();
        let ct = ckks.encrypt(&pk2, &pt, &mut rng).unwrap();
        let ct = ckks
            .ciphertext_from_bytes(&ckks.ciphertext_to_bytes(&ct).unwrap())
            .unwrap();
        let r = ckks.rotate(&ct, Rotation(1), &keys2).unwrap();
        let out = ckks.decode(&ckks.decrypt(&sk, &r).unwrap()).unwrap();
        assert!((out[0] + 0.25).abs() < 1e-4, "{}", out[0]);
        // Seeded secret-key ciphertexts: about half the bytes, and expanding
        // the decoded one gives the same ciphertext.
        let seeded = ckks.encrypt_secret_seeded(&sk, &pt, &mut rng).unwrap();
        let sb = ckks.seeded_ciphertext_to_bytes(&seeded).unwrap();
        let full = ckks
            .ciphertext_to_bytes(&ckks.expand(&seeded).unwrap())
            .unwrap();
        assert!(
            sb.len() * 10 < full.len() * 6,
            "{} vs {}",
            sb.len(),
            full.len()
        );
        let back = ckks.seeded_ciphertext_from_bytes(&sb).unwrap();
        let expanded = ckks.expand(&back).unwrap();
        assert_eq!(expanded.polys, ckks.expand(&seeded).unwrap().polys);
        let out = ckks.decode(&ckks.decrypt(&sk, &expanded).unwrap()).unwrap();
        assert!((out[0] - 0.5).abs() < 1e-6 && (out[1] + 0.25).abs() < 1e-6);
        assert!(ckks.ciphertext_from_bytes(&sb).is_err());
        let pt2 = ckks
            .plaintext_from_bytes(&ckks.plaintext_to_bytes(&pt).unwrap())
            .unwrap();
        assert_eq!(pt2.poly, pt.poly);
        assert!(matches!(
            ckks.eval_keys_from_bytes(&kb, 1),
            Err(Error::Decode {
                reason: DecodeError::TooLarge { .. },
                ..
            })
        ));
    }

    #[test]
    fn corrupted_inputs_are_errors_not_panics() {
        let ckks = Ckks::new(params()).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let sk = ckks.generate_secret_key(&mut rng).unwrap();
        let pk = ckks.generate_public_key(&sk, &mut rng).unwrap();
        let pt = ckks.encode(&[1.0], Level(1), ckks.default_scale()).unwrap();
        let ct = ckks.encrypt(&pk, &pt, &mut rng).unwrap();
        let mut small = ct.clone();
        ckks.drop_level_assign(&mut small, Level(0)).unwrap();
        let good = ckks.ciphertext_to_bytes(&small).unwrap();
        let pgood = params().to_bytes().unwrap();
        let pt0 = ckks.encode(&[1.0], Level(0), ckks.default_scale()).unwrap();
        let seeded = ckks.encrypt_secret_seeded(&sk, &pt0, &mut rng).unwrap();
        let sgood = ckks.seeded_ciphertext_to_bytes(&seeded).unwrap();
        let mut failures = 0;
        for i in 0..3000 {
            let mut b = match i % 3 {
                0 => good.clone(),
                1 => pgood.clone(),
                _ => sgood.clone(),
            };
            match i % 5 {
                0 => b.truncate(rng.random_range(0..b.len())),
                1 => {
                    let k = rng.random_range(0..b.len());
                    b[k] ^= 1 << rng.random_range(0..8);
                }
                2 => {
                    for _ in 0..8 {
                        let k = rng.random_range(0..b.len());
                        b[k] = rng.random();
                    }
                }
                3 => {
                    let len = rng.random_range(0..64);
                    b = (0..len).map(|_| rng.random()).collect();
                }
                _ => {
                    let k = rng.random_range(HEADER_LEN.min(b.len())..b.len());
                    b[k] = 0xff;
                    b.push(rng.random());
                }
            }
            let r1 = ckks.ciphertext_from_bytes(&b).map(|_| ());
            let r2 = CkksParams::from_bytes(&b).map(|_| ());
            let r3 = ckks.public_key_from_bytes(&b).map(|_| ());
            let r4 = ckks.eval_keys_from_bytes(&b, 4).map(|_| ());
            let r5 = ckks.seeded_ciphertext_from_bytes(&b).map(|_| ());
            for r in [r1, r2, r3, r4, r5] {
                match r {
                    Ok(()) => {}
                    Err(Error::Decode { .. }) => failures += 1,
                    Err(e) => {
                        // Rebuilding parameters from a corrupted but well-formed
                        // spec may fail validation: that is a parameter error.
                        assert!(
                            matches!(
                                e,
                                Error::InvalidParameter { .. } | Error::InsecureParameters { .. }
                            ),
                            "{e}"
                        );
                    }
                }
            }
        }
        assert!(failures > 3000);
    }
}

//! [`HeWire`] for [`Ckks`]: delegates to the formats of the serialisation
//! module (and seeded ciphertexts), and adds the secret key's format for
//! the client's own storage.
//!
//! Secret key: the common envelope (magic `MOFHCKKS`, kind 16, the CKKS
//! format version, the parameter fingerprint) and `N` bytes, coefficient
//! `c` in `{-1, 0, 1}` written as `c + 1`.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::keys::{CkksSecretKey, digit_count};
use super::serialize::FORMAT_VERSION;
use super::{Ckks, CkksCiphertext, CkksEvalKeys, CkksParams, CkksPlaintext, CkksPublicKey};
use crate::he::OpKind;
use crate::he::error::{DecodeError, Error, Result};
use crate::he::wire::{Envelope, HeWire, check_keys_meet, switching_keys_required};
use crate::he::{HeScheme, KeyRequirements};

/// The kind byte of seeded ciphertexts in the serialisation module's header.
const SEEDED_KIND: u8 = 6;

const SECRET_KEY: Envelope = Envelope {
    magic: b"MOFHCKKS",
    kind: 16,
    version: FORMAT_VERSION,
    what: "CKKS secret key",
};

impl HeWire for Ckks {
    fn fingerprint(&self) -> u64 {
        self.fp
    }

    fn params_to_bytes(&self) -> Result<Vec<u8>> {
        self.params.to_bytes()
    }

    fn from_params_bytes(bytes: &[u8]) -> Result<Ckks> {
        Ckks::new(CkksParams::from_bytes(bytes)?)
    }

    fn secret_key_to_bytes(&self, sk: &CkksSecretKey) -> Result<Zeroizing<Vec<u8>>> {
        self.check_fp(sk.fp, OpKind::KeyGen)?;
        let body: Zeroizing<Vec<u8>> = Zeroizing::new(
            sk.coeffs
                .iter()
                .map(|&c| u8::try_from(c + 1).unwrap_or(u8::MAX))
                .collect(),
        );
        Ok(Zeroizing::new(SECRET_KEY.seal(self.fp, &body)))
    }

    fn secret_key_from_bytes(&self, bytes: &[u8]) -> Result<CkksSecretKey> {
        let n = self.n();
        let (fp, body) = SECRET_KEY.open(bytes, (n + 64) as u64)?;
        if fp != self.fp {
            return Err(SECRET_KEY.error(DecodeError::NotConforming {
                what: "parameter fingerprint",
            }));
        }
        if body.len() != n {
            return Err(SECRET_KEY.error(DecodeError::Malformed {
                offset: bytes.len() as u64,
            }));
        }
        if body.iter().any(|&b| b > 2) {
            return Err(SECRET_KEY.error(DecodeError::NotConforming {
                what: "coefficient not in {-1, 0, 1}",
            }));
        }
        let coeffs: Vec<i64> = body.iter().map(|&b| i64::from(b) - 1).collect();
        let basis: Vec<usize> = (0..self.ring.num_q + self.ring.num_p).collect();
        let ntt = self.ring.small_to_ntt(&coeffs, &basis);
        let key = super::keys::secret_key_id(self.fp, &coeffs);
        Ok(CkksSecretKey {
            coeffs,
            ntt,
            fp: self.fp,
            key,
        })
    }

    fn public_key_to_bytes(&self, pk: &CkksPublicKey) -> Result<Vec<u8>> {
        Ckks::public_key_to_bytes(self, pk)
    }

    fn public_key_from_bytes(&self, bytes: &[u8]) -> Result<CkksPublicKey> {
        Ckks::public_key_from_bytes(self, bytes)
    }

    fn eval_keys_to_bytes(&self, keys: &CkksEvalKeys) -> Result<Vec<u8>> {
        Ckks::eval_keys_to_bytes(self, keys)
    }

    fn eval_keys_from_bytes(&self, bytes: &[u8], req: &KeyRequirements) -> Result<CkksEvalKeys> {
        let max_keys = switching_keys_required(req, self.slot_count());
        let keys = Ckks::eval_keys_from_bytes(self, bytes, max_keys)?;
        check_keys_meet(&keys, req)?;
        Ok(keys)
    }

    fn eval_keys_size_limit(&self, req: &KeyRequirements) -> u64 {
        let primes = (self.ring.num_q + self.ring.num_p) as u64;
        let per_key = digit_count(&self.ring) as u64 * primes * self.n() as u64;
        let keys = switching_keys_required(req, self.slot_count()) as u64;
        // As the serialisation module's limit: varints of at most 10 bytes.
        per_key
            .saturating_mul(keys)
            .saturating_mul(10)
            .saturating_add(1024)
    }

    fn ciphertext_size_limit(&self) -> u64 {
        (3 * self.ring.num_q * self.n()) as u64 * 10 + 1024
    }

    fn ciphertext_to_bytes(&self, ct: &CkksCiphertext) -> Result<Vec<u8>> {
        Ckks::ciphertext_to_bytes(self, ct)
    }

    fn ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<CkksCiphertext> {
        Ckks::ciphertext_from_bytes(self, bytes)
    }

    fn has_seeded_ciphertexts(&self) -> bool {
        true
    }

    fn encrypt_secret_to_bytes<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        pt: &CkksPlaintext,
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        let ct = self.encrypt_secret_seeded(sk, pt, rng)?;
        self.seeded_ciphertext_to_bytes(&ct)
    }

    fn fresh_ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<CkksCiphertext> {
        if bytes.get(8) == Some(&SEEDED_KIND) {
            let seeded = self.seeded_ciphertext_from_bytes(bytes)?;
            self.expand(&seeded).map_err(|_| Error::Decode {
                what: "CKKS seeded ciphertext",
                reason: DecodeError::NotConforming {
                    what: "parameter fingerprint",
                },
            })
        } else {
            Ckks::ciphertext_from_bytes(self, bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::he::{Counted, Level, Rotation};

    fn ckks() -> Ckks {
        let p = CkksParams::builder()
            .log_n(12)
            .moduli_bits(&[36, 30])
            .special_bits(&[40])
            .scale_bits(30)
            .build()
            .unwrap();
        Ckks::new(p).unwrap()
    }

    /// The whole round trip through the trait only, and through `Counted`.
    fn round_trip<S: HeWire<Value = f64>>(s: &S) {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let s2 = S::from_params_bytes(&s.params_to_bytes().unwrap()).unwrap();
        assert_eq!(s2.fingerprint(), s.fingerprint());
        let sk = s.generate_secret_key(&mut rng).unwrap();
        let sk_bytes = s.secret_key_to_bytes(&sk).unwrap();
        let sk2 = s2.secret_key_from_bytes(&sk_bytes).unwrap();
        let req = KeyRequirements::new()
            .with_relinearization()
            .with_rotations([Rotation(1), Rotation(3)]);
        let keys = s.generate_eval_keys(&sk, &req, &mut rng).unwrap();
        let kb = s.eval_keys_to_bytes(&keys).unwrap();
        let keys2 = s2.eval_keys_from_bytes(&kb, &req).unwrap();
        // Fewer requirements: the derived limit refuses the extra keys.
        let small = KeyRequirements::new().with_relinearization();
        assert!(matches!(
            s2.eval_keys_from_bytes(&kb, &small),
            Err(Error::Decode {
                reason: DecodeError::TooLarge { .. },
                ..
            })
        ));
        // More requirements than the keys meet: a typed missing-key error.
        let more = req.clone().with_rotations([Rotation(2)]);
        assert!(matches!(
            s2.eval_keys_from_bytes(&kb, &more),
            Err(Error::MissingRotationKey { step: Rotation(2) })
        ));
        let pk = s.generate_public_key(&sk, &mut rng).unwrap();
        let pk2 = s2
            .public_key_from_bytes(&s.public_key_to_bytes(&pk).unwrap())
            .unwrap();
        let pt = s
            .encode(&[0.5, 0.25, -1.0, 2.0], s.max_level(), s.default_scale())
            .unwrap();
        // Encrypted by the original with the loaded secret key, read by the copy.
        let up = s.encrypt_secret_to_bytes(&sk2, &pt, &mut rng).unwrap();
        let full = s
            .ciphertext_to_bytes(&s.encrypt_secret(&sk, &pt, &mut rng).unwrap())
            .unwrap();
        assert!(s.has_seeded_ciphertexts());
        assert!(
            up.len() * 10 < full.len() * 6,
            "{} {}",
            up.len(),
            full.len()
        );
        let ct = s2.fresh_ciphertext_from_bytes(&up).unwrap();
        let ct_full = s2.fresh_ciphertext_from_bytes(&full).unwrap();
        let ct_pk = s2.encrypt(&pk2, &pt, &mut rng).unwrap();
        for c in [ct, ct_full, ct_pk] {
            let r = s2.rotate(&c, Rotation(1), &keys2).unwrap();
            let back = s2
                .ciphertext_from_bytes(&s2.ciphertext_to_bytes(&r).unwrap())
                .unwrap();
            let out = s.decode(&s.decrypt(&sk, &back).unwrap()).unwrap();
            assert!((out[0] - 0.25).abs() < 1e-4 && (out[2] - 2.0).abs() < 1e-4);
        }
    }

    #[test]
    fn round_trips_through_the_trait() {
        let c = ckks();
        round_trip(&c);
        round_trip(&Counted::new(c));
    }

    #[test]
    fn secret_key_bytes_are_checked() {
        let c = ckks();
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let sk = c.generate_secret_key(&mut rng).unwrap();
        let b = c.secret_key_to_bytes(&sk).unwrap();
        let back = c.secret_key_from_bytes(&b).unwrap();
        assert_eq!(back.coeffs, sk.coeffs);
        assert_eq!(back.ntt, sk.ntt);
        let mut bad = b.to_vec();
        let last = bad.len() - 1;
        bad[last] = 3;
        assert!(matches!(
            c.secret_key_from_bytes(&bad),
            Err(Error::Decode {
                reason: DecodeError::NotConforming { .. },
                ..
            })
        ));
        assert!(c.secret_key_from_bytes(&b[..b.len() - 1]).is_err());
        let mut longer = b.to_vec();
        longer.push(1);
        assert!(c.secret_key_from_bytes(&longer).is_err());
        // A seeded ciphertext at a lower level also round-trips.
        let pt = c.encode(&[1.0], Level(0), c.default_scale()).unwrap();
        let up = c.encrypt_secret_to_bytes(&sk, &pt, &mut rng).unwrap();
        assert_eq!(up[8], SEEDED_KIND);
        let ct = c.fresh_ciphertext_from_bytes(&up).unwrap();
        assert_eq!(c.level(&ct), Level(0));
    }
}

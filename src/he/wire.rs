//! Wire formats: [`HeWire`], the serialisation companion of [`HeScheme`].
//!
//! Everything that crosses the wire between a client and a server goes
//! through this one trait, so wrappers ([`Counted`](super::Counted)) forward
//! it and generic code (the evaluator's client, a server) never names a
//! backend: parameters, public and evaluation keys, ciphertexts, seeded
//! (compressed) fresh ciphertexts where the backend has them, and the
//! secret key for the client's own storage.
//!
//! Every object is framed by an envelope: 8 magic bytes naming the scheme
//! (`MOFHCKKS`, `MOFH_BFV`, `MOFHEVAL` for the evaluator's artefacts), one
//! byte naming the kind of object, a little-endian `u32` format version,
//! then the payload, which carries the parameter fingerprint
//! ([`HeWire::fingerprint`]). Loading checks the size against a limit
//! derived from the parameters (and, for evaluation keys, from the
//! [`KeyRequirements`] they must meet) before decoding anything, then the
//! header, then the payload against the parameters. Untrusted bytes give
//! [`Error::Decode`], never a panic.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::{EvaluationKeys, HeScheme, KeyRequirements};
use crate::he::error::{DecodeError, Error, Result};

/// Bytes of the common envelope header: magic (8), kind (1), version (4).
pub const HEADER_LEN: usize = 13;

/// Serialisation of a backend's parameters, keys and ciphertexts.
///
/// `*_from_bytes` take untrusted bytes: sizes are bounded by limits derived
/// from the parameters, every decoded object is checked against them
/// (fingerprint, levels, sizes, every residue reduced), and any failure is
/// [`Error::Decode`].
pub trait HeWire: HeScheme {
    /// A 64-bit fingerprint of the parameter set: equal for two backends
    /// built from the same parameters (in any process), different otherwise.
    fn fingerprint(&self) -> u64;

    /// The parameters as bytes.
    fn params_to_bytes(&self) -> Result<Vec<u8>>;

    /// A backend from parameter bytes (128-bit security enforced).
    fn from_params_bytes(bytes: &[u8]) -> Result<Self>;

    /// The secret key as bytes, for the client's own storage only (never
    /// send them to a server); zeroised when dropped.
    fn secret_key_to_bytes(&self, sk: &Self::SecretKey) -> Result<Zeroizing<Vec<u8>>>;

    /// A secret key from bytes written by [`HeWire::secret_key_to_bytes`].
    fn secret_key_from_bytes(&self, bytes: &[u8]) -> Result<Self::SecretKey>;

    /// The public key as bytes.
    fn public_key_to_bytes(&self, pk: &Self::PublicKey) -> Result<Vec<u8>>;

    /// A public key from bytes.
    fn public_key_from_bytes(&self, bytes: &[u8]) -> Result<Self::PublicKey>;

    /// Evaluation keys as bytes.
    fn eval_keys_to_bytes(&self, keys: &Self::EvalKeys) -> Result<Vec<u8>>;

    /// Evaluation keys from bytes. The size limit is derived from the
    /// parameters and from `req` (at most one switching key per required
    /// rotation, plus relinearisation and conjugation), and the keys must
    /// meet `req` ([`Error::MissingRelinearizationKey`],
    /// [`Error::MissingRotationKey`], [`Error::MissingConjugationKey`]).
    fn eval_keys_from_bytes(&self, bytes: &[u8], req: &KeyRequirements) -> Result<Self::EvalKeys>;

    /// The most bytes [`HeWire::eval_keys_from_bytes`] accepts for `req`
    /// (for a server's request-size limit).
    fn eval_keys_size_limit(&self, req: &KeyRequirements) -> u64;

    /// The most bytes one ciphertext (full or seeded) can take (for a
    /// server's request-size limit).
    fn ciphertext_size_limit(&self) -> u64;

    /// A ciphertext as bytes.
    fn ciphertext_to_bytes(&self, ct: &Self::Ciphertext) -> Result<Vec<u8>>;

    /// A ciphertext from bytes.
    fn ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<Self::Ciphertext>;

    /// Whether [`HeWire::encrypt_secret_to_bytes`] writes seeded (compressed)
    /// ciphertexts, about half the size of full ones.
    fn has_seeded_ciphertexts(&self) -> bool {
        false
    }

    /// Secret-key encryption straight to bytes, in the smallest form the
    /// backend has: a seeded ciphertext (`c_0` and the seed of `c_1`) where
    /// it has them, by default a full ciphertext.
    fn encrypt_secret_to_bytes<R: RngCore + CryptoRng>(
        &self,
        sk: &Self::SecretKey,
        pt: &Self::Plaintext,
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        let ct = self.encrypt_secret(sk, pt, rng)?;
        self.ciphertext_to_bytes(&ct)
    }

    /// A fresh ciphertext from bytes written by
    /// [`HeWire::encrypt_secret_to_bytes`] (seeded ones are expanded) or by
    /// [`HeWire::ciphertext_to_bytes`].
    fn fresh_ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<Self::Ciphertext> {
        self.ciphertext_from_bytes(bytes)
    }
}

/// Checks that evaluation keys meet the requirements they were loaded for.
pub(crate) fn check_keys_meet<K: EvaluationKeys>(keys: &K, req: &KeyRequirements) -> Result<()> {
    if req.relinearization() && !keys.supports_relinearization() {
        return Err(Error::MissingRelinearizationKey);
    }
    if req.conjugation() && !keys.supports_conjugation() {
        return Err(Error::MissingConjugationKey);
    }
    if let Some(step) = req.rotations().find(|&r| !keys.supports_rotation(r)) {
        return Err(Error::MissingRotationKey { step });
    }
    Ok(())
}

/// The number of switching keys `req` asks for with `slots` slots
/// (relinearisation, conjugation, one per distinct non-zero rotation).
pub(crate) fn switching_keys_required(req: &KeyRequirements, slots: usize) -> usize {
    usize::from(req.relinearization())
        + usize::from(req.conjugation())
        + req.normalized_rotations(slots).len()
}

/// One envelope format: magic, kind and version of one kind of object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Envelope {
    /// The 8 magic bytes of the scheme or component.
    pub(crate) magic: &'static [u8; 8],
    /// The kind byte.
    pub(crate) kind: u8,
    /// The format version written and read.
    pub(crate) version: u32,
    /// What the object is, for errors.
    pub(crate) what: &'static str,
}

impl Envelope {
    /// The error for bytes of this kind (an HE-layer error, or the crate's
    /// own for callers above the HE layer).
    pub(crate) fn error<E: From<Error>>(&self, reason: DecodeError) -> E {
        E::from(Error::Decode {
            what: self.what,
            reason,
        })
    }

    /// `header || fingerprint (u64 LE) || body`.
    pub(crate) fn seal(&self, fingerprint: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 8 + body.len());
        out.extend_from_slice(self.magic);
        out.push(self.kind);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&fingerprint.to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Checks the size (against `limit`), magic, kind and version; returns
    /// the fingerprint and the body.
    pub(crate) fn open<'b>(&self, bytes: &'b [u8], limit: u64) -> Result<(u64, &'b [u8])> {
        if bytes.len() as u64 > limit {
            return Err(self.error(DecodeError::TooLarge {
                len: bytes.len() as u64,
                limit,
            }));
        }
        if bytes.len() < HEADER_LEN + 8 {
            return Err(self.error(DecodeError::Malformed {
                offset: bytes.len() as u64,
            }));
        }
        let (head, rest) = bytes.split_at(HEADER_LEN);
        if &head[..8] != self.magic || head[8] != self.kind {
            return Err(self.error(DecodeError::BadMagic));
        }
        let version = u32::from_le_bytes([head[9], head[10], head[11], head[12]]);
        if version != self.version {
            return Err(self.error(DecodeError::Version {
                found: version,
                supported: self.version,
            }));
        }
        let (fp, body) = rest.split_at(8);
        let mut f = [0u8; 8];
        f.copy_from_slice(fp);
        Ok((u64::from_le_bytes(f), body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: Envelope = Envelope {
        magic: b"MOFHTEST",
        kind: 3,
        version: 7,
        what: "test object",
    };

    #[test]
    fn envelope_round_trip_and_refusals() {
        let b = E.seal(0xdead_beef, b"payload");
        let (fp, body) = E.open(&b, 100).unwrap();
        assert_eq!((fp, body), (0xdead_beef, &b"payload"[..]));
        let too = |r: Result<(u64, &[u8])>| match r {
            Err(Error::Decode { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            too(E.open(&b, 10)),
            DecodeError::TooLarge { len: 28, limit: 10 }
        ));
        let mut k = b.clone();
        k[8] = 4;
        assert_eq!(too(E.open(&k, 100)), DecodeError::BadMagic);
        let mut v = b.clone();
        v[9] = 8;
        assert!(matches!(
            too(E.open(&v, 100)),
            DecodeError::Version {
                found: 8,
                supported: 7
            }
        ));
        for cut in 0..HEADER_LEN + 8 {
            assert!(E.open(&b[..cut], 100).is_err());
        }
    }
}

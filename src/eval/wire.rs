//! Wire format of [`EncryptedInput`](super::EncryptedInput) and
//! [`EncryptedOutput`](super::EncryptedOutput): the ciphertexts of one
//! inference, tagged with the plan and parameters they belong to.
//!
//! Format: the common envelope (magic `MOFHEVAL`, kind 2 for inputs or 3
//! for outputs, version 1, the parameter fingerprint), the SHA-256 hash of
//! the plan (32 bytes), the number of samples and of ciphertexts (`u32`
//! LE each), then every ciphertext as a `u32` LE length and the backend's
//! bytes ([`HeWire`]). Ciphertexts come in the plan's order, one after the
//! other, so a reader can take them from a stream one by one.
//!
//! Reading checks, before decoding any ciphertext: the total size against
//! the expected count times the backend's ciphertext limit, the envelope,
//! the plan hash ([`Error::WrongContext`] with [`Context::Plan`]), the
//! fingerprint ([`Context::Parameters`]), the counts, every length.

use crate::error::{Context, DecodeError, Error, Result};
use crate::he::HeWire;
use crate::he::wire::{Envelope, HEADER_LEN};

/// Envelope of an encrypted input.
pub(crate) const INPUT: Envelope = Envelope {
    magic: b"MOFHEVAL",
    kind: 2,
    version: 1,
    what: "encrypted input",
};

/// Envelope of an encrypted output.
pub(crate) const OUTPUT: Envelope = Envelope {
    magic: b"MOFHEVAL",
    kind: 3,
    version: 1,
    what: "encrypted output",
};

/// Bytes before the first ciphertext.
const PREFIX: usize = HEADER_LEN + 8 + 32 + 4 + 4;

/// What a bundle must match.
pub(crate) struct Expect {
    pub(crate) fingerprint: u64,
    pub(crate) plan_hash: [u8; 32],
    pub(crate) count: usize,
    pub(crate) max_samples: usize,
}

/// The most bytes a bundle of `count` ciphertexts of `scheme` can take.
pub(crate) fn bundle_limit<S: HeWire>(scheme: &S, count: usize) -> u64 {
    (scheme.ciphertext_size_limit() + 4)
        .saturating_mul(count as u64)
        .saturating_add(PREFIX as u64)
}

/// Writes a bundle.
pub(crate) fn seal(
    env: &Envelope,
    fingerprint: u64,
    plan_hash: &[u8; 32],
    samples: usize,
    cts: &[Vec<u8>],
) -> Result<Vec<u8>> {
    let too_big = || Error::Encode { what: env.what };
    let samples = u32::try_from(samples).map_err(|_| too_big())?;
    let count = u32::try_from(cts.len()).map_err(|_| too_big())?;
    let total: usize = cts.iter().map(|c| c.len() + 4).sum();
    let mut body = Vec::with_capacity(32 + 8 + total);
    body.extend_from_slice(plan_hash);
    body.extend_from_slice(&samples.to_le_bytes());
    body.extend_from_slice(&count.to_le_bytes());
    for c in cts {
        let len = u32::try_from(c.len()).map_err(|_| too_big())?;
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(c);
    }
    Ok(env.seal(fingerprint, &body))
}

/// Writes a bundle of ciphertexts in the backend's format.
pub(crate) fn seal_ciphertexts<S: HeWire>(
    env: &Envelope,
    scheme: &S,
    plan_hash: &[u8; 32],
    samples: usize,
    cts: &[S::Ciphertext],
) -> Result<Vec<u8>> {
    let bytes = cts
        .iter()
        .map(|c| Ok(scheme.ciphertext_to_bytes(c)?))
        .collect::<Result<Vec<_>>>()?;
    seal(env, scheme.fingerprint(), plan_hash, samples, &bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a bundle's frame: the number of samples and every ciphertext's bytes.
pub(crate) fn open<'b>(
    env: &Envelope,
    bytes: &'b [u8],
    limit: u64,
    expect: &Expect,
) -> Result<(usize, Vec<&'b [u8]>)> {
    let (fp, body) = env.open(bytes, limit)?;
    let malformed = |offset: usize| {
        env.error::<Error>(DecodeError::Malformed {
            offset: (HEADER_LEN + 8 + offset) as u64,
        })
    };
    let hash = body.get(..32).ok_or(malformed(0))?;
    if hash != expect.plan_hash {
        return Err(Error::WrongContext {
            what: env.what,
            context: Context::Plan,
        });
    }
    if fp != expect.fingerprint {
        return Err(Error::WrongContext {
            what: env.what,
            context: Context::Parameters,
        });
    }
    let samples = u32_at(body, 32).ok_or(malformed(32))? as usize;
    let count = u32_at(body, 36).ok_or(malformed(36))? as usize;
    if samples == 0 || samples > expect.max_samples {
        return Err(env.error(DecodeError::NotConforming {
            what: "number of samples",
        }));
    }
    if count != expect.count {
        return Err(env.error(DecodeError::NotConforming {
            what: "number of ciphertexts",
        }));
    }
    let mut at = 40usize;
    let mut cts = Vec::with_capacity(count);
    for _ in 0..count {
        let len = u32_at(body, at).ok_or(malformed(at))? as usize;
        let start = at + 4;
        let end = start.checked_add(len).ok_or(malformed(at))?;
        cts.push(body.get(start..end).ok_or(malformed(start))?);
        at = end;
    }
    if at != body.len() {
        return Err(env.error(DecodeError::TrailingBytes {
            count: (body.len() - at) as u64,
        }));
    }
    Ok((samples, cts))
}

/// The fingerprint and plan hash a bundle claims, without checking them
/// (for routing a request to the right plan or key set).
pub fn peek_bundle(bytes: &[u8]) -> Option<(u64, [u8; 32])> {
    let fp = bytes.get(HEADER_LEN..HEADER_LEN + 8)?;
    let hash = bytes.get(HEADER_LEN + 8..HEADER_LEN + 40)?;
    let mut f = [0u8; 8];
    f.copy_from_slice(fp);
    let mut h = [0u8; 32];
    h.copy_from_slice(hash);
    Some((u64::from_le_bytes(f), h))
}

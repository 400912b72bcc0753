//! Key identity: the [`KeyId`] of a secret key, carried by everything that
//! belongs to that key (public key, evaluation keys, ciphertexts) so that a
//! mismatch is a typed error ([`Error::KeyMismatch`](super::Error::KeyMismatch)) instead of a
//! decryption to garbage.
//!
//! A key id is SHA-256 over a domain tag (naming the scheme and the version
//! of this derivation), the parameter fingerprint and the secret key's
//! coefficients, truncated to 16 bytes. It identifies a key; it reveals
//! nothing about it beyond what a hash of the key reveals (preimage
//! resistance), and the secret is never stored in it. It is a tag against
//! accidents and misuse, not an authenticator: bytes from an untrusted peer
//! can claim any id (see `docs/security.md`).
//!
//! Comparing ids is two word compares: the hash is computed once, at key
//! generation, never per operation.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The fingerprint of a secret key (16 bytes of a domain-separated SHA-256).
/// `Display` and `Debug` print it as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyId([u8; 16]);

impl KeyId {
    /// The id of a secret key: SHA-256 of `"mofhei key id v1"`, the
    /// scheme's `tag`, the parameter fingerprint bytes and the secret's
    /// bytes (each prefixed by its length), truncated to 16 bytes.
    pub fn derive(tag: &str, params: &[u8], secret: impl IntoIterator<Item = u8>) -> KeyId {
        let mut h = Sha256::new();
        h.update(b"mofhei key id v1\0");
        h.update((tag.len() as u64).to_le_bytes());
        h.update(tag.as_bytes());
        h.update((params.len() as u64).to_le_bytes());
        h.update(params);
        // The secret in blocks, so no second copy of it is built.
        let mut block = [0u8; 64];
        let mut len = 0usize;
        let mut total = 0u64;
        for b in secret {
            block[len] = b;
            len += 1;
            total += 1;
            if len == block.len() {
                h.update(block);
                len = 0;
            }
        }
        h.update(&block[..len]);
        h.update(total.to_le_bytes());
        zeroize::Zeroize::zeroize(&mut block);
        let digest = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        KeyId(id)
    }

    /// The id as bytes (what the wire formats store).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// An id from its bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> KeyId {
        KeyId(bytes)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_separate_tags_params_and_secrets() {
        let a = KeyId::derive("ckks", &[1, 2], [0u8, 1, 2]);
        assert_eq!(a, KeyId::derive("ckks", &[1, 2], [0u8, 1, 2]));
        assert_ne!(a, KeyId::derive("bfv", &[1, 2], [0u8, 1, 2]));
        assert_ne!(a, KeyId::derive("ckks", &[1, 3], [0u8, 1, 2]));
        assert_ne!(a, KeyId::derive("ckks", &[1, 2], [0u8, 1, 3]));
        // Length prefixes: moving a byte between fields changes the id.
        assert_ne!(a, KeyId::derive("ckks", &[1], [2u8, 0, 1, 2]));
        // Longer than one block.
        let long: Vec<u8> = (0..200u8).collect();
        let b = KeyId::derive("ckks", &[], long.iter().copied());
        let mut other = long.clone();
        other[150] ^= 1;
        assert_ne!(b, KeyId::derive("ckks", &[], other.iter().copied()));
        assert_eq!(a.to_string().len(), 32);
        assert!(a.to_string().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(KeyId::from_bytes(a.to_bytes()), a);
    }
}

//! [`EncryptedInput`] and [`EncryptedOutput`]: the ciphertexts of one
//! inference, tagged with the hash of their plan.

use crate::error::Result;
use crate::he::{HeScheme, HeWire};

use super::wire;

/// Encrypted inputs of one inference (one ciphertext per input tile/scalar),
/// tagged with the hash of the plan they were made for.
pub struct EncryptedInput<S: HeScheme> {
    pub(super) cts: Vec<S::Ciphertext>,
    pub(super) samples: usize,
    pub(super) plan_hash: [u8; 32],
}

impl<S: HeScheme> EncryptedInput<S> {
    /// Number of samples encrypted.
    pub fn samples(&self) -> usize {
        self.samples
    }
    /// The ciphertexts.
    pub fn ciphertexts(&self) -> &[S::Ciphertext] {
        &self.cts
    }
    /// The hash of the plan they were made for.
    pub fn plan_hash(&self) -> [u8; 32] {
        self.plan_hash
    }
}

impl<S: HeWire> EncryptedInput<S> {
    /// The inputs as bytes (full ciphertexts; a client uploads seeded ones
    /// with [`Client::encrypt_to_bytes`](super::Client::encrypt_to_bytes)).
    pub fn to_bytes(&self, scheme: &S) -> Result<Vec<u8>> {
        wire::seal_ciphertexts(
            &wire::INPUT,
            scheme,
            &self.plan_hash,
            self.samples,
            &self.cts,
        )
    }
}

/// Encrypted outputs of one inference, tagged with the hash of the plan
/// that made them.
pub struct EncryptedOutput<S: HeScheme> {
    pub(super) cts: Vec<S::Ciphertext>,
    pub(super) samples: usize,
    pub(super) plan_hash: [u8; 32],
}

impl<S: HeScheme> EncryptedOutput<S> {
    /// Number of samples.
    pub fn samples(&self) -> usize {
        self.samples
    }
    /// The ciphertexts.
    pub fn ciphertexts(&self) -> &[S::Ciphertext] {
        &self.cts
    }
    /// The hash of the plan that made them.
    pub fn plan_hash(&self) -> [u8; 32] {
        self.plan_hash
    }
}

impl<S: HeWire> EncryptedOutput<S> {
    /// The outputs as bytes.
    pub fn to_bytes(&self, scheme: &S) -> Result<Vec<u8>> {
        wire::seal_ciphertexts(
            &wire::OUTPUT,
            scheme,
            &self.plan_hash,
            self.samples,
            &self.cts,
        )
    }
}

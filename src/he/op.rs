//! One vocabulary for the operations of the HE layer: [`OpKind`], and
//! [`OpCounts`], operation counts by kind and by level (measured by
//! [`Counted`](super::Counted), estimated by a plan's cost model).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Level;

/// The operations of the HE layer: what [`Counted`](super::Counted) counts,
/// what the cost model estimates and what an error names as the step that
/// failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpKind {
    /// Ciphertext x ciphertext multiplication.
    CtCtMul,
    /// Ciphertext x plaintext multiplication.
    CtPtMul,
    /// Ciphertext x scalar multiplication (no plaintext encoded).
    CtScalarMul,
    /// Ciphertext + ciphertext (or -, or negation).
    CtCtAdd,
    /// Ciphertext + plaintext or + scalar.
    CtPtAdd,
    /// Slot rotation (or conjugation).
    Rotation,
    /// Rescale.
    Rescale,
    /// Relinearisation.
    Relinearize,
    /// Dropping levels without a rescale.
    LevelDrop,
    /// Encoding a plaintext.
    Encode,
    /// Encryption.
    Encrypt,
    /// Decryption.
    Decrypt,
    /// Complex conjugation (counted as a [`OpKind::Rotation`]).
    Conjugate,
    /// Key generation (not counted).
    KeyGen,
}

impl OpKind {
    /// Every kind that is counted, in a fixed order (conjugation is counted
    /// as a rotation, key generation is not counted).
    pub const ALL: [OpKind; 12] = [
        OpKind::CtCtMul,
        OpKind::CtPtMul,
        OpKind::CtScalarMul,
        OpKind::CtCtAdd,
        OpKind::CtPtAdd,
        OpKind::Rotation,
        OpKind::Rescale,
        OpKind::Relinearize,
        OpKind::LevelDrop,
        OpKind::Encode,
        OpKind::Encrypt,
        OpKind::Decrypt,
    ];

    /// Whether this is a homomorphic operation on a ciphertext (as opposed to
    /// client-side encoding, encryption, decryption).
    pub fn is_homomorphic(self) -> bool {
        !matches!(
            self,
            OpKind::Encode | OpKind::Encrypt | OpKind::Decrypt | OpKind::KeyGen
        )
    }
}

/// The operation's name as errors print it (`"mul_plain"`, `"rotate"`, ...).
impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpKind::CtCtMul => "mul",
            OpKind::CtPtMul => "mul_plain",
            OpKind::CtScalarMul => "mul_scalar",
            OpKind::CtCtAdd => "add",
            OpKind::CtPtAdd => "add_plain",
            OpKind::Rotation => "rotate",
            OpKind::Rescale => "rescale",
            OpKind::Relinearize => "relinearize",
            OpKind::LevelDrop => "drop_level",
            OpKind::Encode => "encode",
            OpKind::Encrypt => "encrypt",
            OpKind::Decrypt => "decrypt",
            OpKind::Conjugate => "conjugate",
            OpKind::KeyGen => "keygen",
        })
    }
}

/// Operation counts: totals by kind and a breakdown by the operand's level.
/// Serialises to JSON with snake_case kind names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// Total per kind.
    pub total: BTreeMap<OpKind, u64>,
    /// Per level (of the input operand), per kind.
    pub by_level: BTreeMap<u32, BTreeMap<OpKind, u64>>,
}

impl OpCounts {
    /// The total of one kind.
    pub fn get(&self, kind: OpKind) -> u64 {
        self.total.get(&kind).copied().unwrap_or(0)
    }

    /// Record `n` operations of `kind` at `level`.
    pub fn record(&mut self, kind: OpKind, level: Level, n: u64) {
        if n == 0 {
            return;
        }
        *self.total.entry(kind).or_default() += n;
        *self
            .by_level
            .entry(level.0)
            .or_default()
            .entry(kind)
            .or_default() += n;
    }

    /// Sum of all homomorphic operations (excluding encode/encrypt/decrypt).
    pub fn homomorphic_total(&self) -> u64 {
        self.total
            .iter()
            .filter(|(k, _)| k.is_homomorphic())
            .map(|(_, v)| v)
            .sum()
    }

    /// Add another set of counts into this one.
    pub fn merge(&mut self, other: &OpCounts) {
        for (lvl, kinds) in &other.by_level {
            for (k, n) in kinds {
                self.record(*k, Level(*lvl), *n);
            }
        }
    }

    /// The counts as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising maps with unit-variant keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

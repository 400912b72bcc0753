//! Plaintext constants stored in a plan (the encoded model) and how each
//! is used.

use serde::{Deserialize, Serialize};

/// How a plaintext constant is used (decides its encoding scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlainUse {
    /// Multiplied (encoded at the dropped prime so the scale survives the rescale).
    Mul,
    /// Added (encoded at the ciphertext's scale).
    Add,
}

/// A plaintext constant: slot values (the rest zero; repeated every
/// [`crate::plan::Plan::period`] slots when the layout is replicated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plain {
    /// The slot values.
    pub values: Vec<f64>,
    /// How it is used.
    pub usage: PlainUse,
}

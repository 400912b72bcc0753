//! The client's side of a plan: where input elements go in the input
//! ciphertexts ([`InputLayout`]) and where output elements are read after
//! decryption ([`OutputElem`]).

use serde::{Deserialize, Serialize};

/// Where the client puts input elements: per input ciphertext, the
/// `(slot, element)` pairs (element = index into the flattened sample).
/// Sample `s` of a batch goes to `slot + s`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputLayout {
    /// Per input ciphertext, its `(slot, element)` pairs.
    pub cts: Vec<Vec<(u32, u32)>>,
}

/// Where an output element is found after decryption.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum OutputElem {
    /// A constant (the unit was culled or its weights were all zero).
    Const(f64),
    /// `alpha * slot_value + beta` of output ciphertext `ct`, sample `s` at `slot + s`.
    Slot {
        /// Index into the plan's output ciphertexts.
        ct: u32,
        /// Slot of sample 0.
        slot: u32,
        /// Factor applied by the client (a pending folded scale).
        alpha: f64,
        /// Offset applied by the client.
        beta: f64,
    },
}

//! The small value types every HE operation talks about: [`Level`] (rescales
//! left), [`Rotation`] (a slot rotation step) and [`Scale`] (the CKKS encoding
//! factor). Conventions are in `docs/conventions.md`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The number of rescales a ciphertext still has: a fresh ciphertext is at the
/// parameters' maximum level; level 0 cannot be rescaled again.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Level(pub u32);

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A slot rotation step. `Rotation(k)` moves slot `i + k` to slot `i`
/// (left rotation for positive `k`); negative steps rotate right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rotation(pub i64);

impl Rotation {
    /// The equivalent left rotation in `0..slots` (`slots` must be non-zero).
    pub fn normalized(self, slots: usize) -> usize {
        let s = slots as i64;
        (((self.0 % s) + s) % s) as usize
    }
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A CKKS-style scale: the real factor by which slot values are multiplied
/// before rounding to integers. Stored as an `f64` value (not log2).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct Scale(f64);

impl Scale {
    /// Scale 1: values are encoded as they are (integer schemes, exact integer factors).
    pub const ONE: Scale = Scale(1.0);

    /// A scale from its value; `None` unless finite and positive.
    pub fn new(value: f64) -> Option<Scale> {
        (value.is_finite() && value > 0.0).then_some(Scale(value))
    }

    /// The scale `2^bits`.
    pub fn from_log2(bits: f64) -> Scale {
        Scale(bits.exp2())
    }

    /// The factor itself.
    pub fn value(self) -> f64 {
        self.0
    }

    /// log2 of the factor.
    pub fn log2(self) -> f64 {
        self.0.log2()
    }

    /// Whether two scales are equal up to a relative 1e-9 (floating bookkeeping).
    pub fn approx_eq(self, other: Scale) -> bool {
        ((self.0 - other.0) / self.0.max(other.0)).abs() < 1e-9
    }
}

/// Product of two scales (the scale of a product of ciphertexts).
impl std::ops::Mul for Scale {
    type Output = Scale;
    fn mul(self, other: Scale) -> Scale {
        Scale(self.0 * other.0)
    }
}

/// The scale divided by a modulus (the scale after a rescale).
impl std::ops::Div<f64> for Scale {
    type Output = Scale;
    fn div(self, divisor: f64) -> Scale {
        Scale(self.0 / divisor)
    }
}

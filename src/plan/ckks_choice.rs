//! The CKKS parameters a plan records ([`CkksChoice`]): chosen by the
//! compiler ([`crate::compile::choose_params`]), read by the backends.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::he::Level;
use crate::he::sim::SimParams;

/// Chosen CKKS parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CkksChoice {
    /// log2 of the ring degree N.
    pub log_n: u32,
    /// log2 of the scale.
    pub scale_bits: u32,
    /// Ciphertext primes, `q_0` first (`depth + 1` of them).
    pub moduli_bits: Vec<u32>,
    /// Special primes for key switching.
    pub special_bits: Vec<u32>,
}

impl CkksChoice {
    /// Number of slots (N / 2).
    pub fn slots(&self) -> usize {
        // 0 for a nonsensical degree (a tampered plan; validation refuses it).
        1usize
            .checked_shl(self.log_n.saturating_sub(1))
            .filter(|_| self.log_n > 0)
            .unwrap_or(0)
    }
    /// The highest level (number of rescales available).
    pub fn max_level(&self) -> Level {
        Level(self.moduli_bits.len().saturating_sub(1) as u32)
    }
    /// Total modulus bits, special primes included.
    pub fn log_qp(&self) -> u32 {
        self.moduli_bits
            .iter()
            .chain(&self.special_bits)
            .fold(0u32, |acc, &b| acc.saturating_add(b))
    }
    /// The CKKS backend's parameters for this choice (128-bit checked).
    pub fn ckks_params(&self) -> Result<crate::he::ckks::CkksParams> {
        crate::he::ckks::CkksParams::builder()
            .log_n(self.log_n)
            .moduli_bits(&self.moduli_bits)
            .special_bits(&self.special_bits)
            .scale_bits(self.scale_bits)
            .build()
            .map_err(Error::from)
    }

    /// Fractional bits the outputs keep against an exact evaluation of the
    /// plan (before noise flooding): the scale minus the noise estimate of
    /// this module for this degree and depth ([`noise_bits`]).
    pub fn expected_precision_bits(&self) -> u32 {
        let depth = self.moduli_bits.len().saturating_sub(1) as u32;
        self.scale_bits
            .saturating_sub(noise_bits(self.log_n, depth))
    }

    /// The largest absolute error the outputs may have against an exact
    /// evaluation of the plan (before noise flooding), for outputs of
    /// magnitude up to 1 after layers whose weights are at most 1:
    /// `2^-expected_precision_bits`.
    pub fn expected_error(&self) -> f64 {
        (-f64::from(self.expected_precision_bits())).exp2()
    }

    /// Simulator parameters with the same modulus chain and scale, and
    /// `slots` slots (fewer than N / 2 keeps tests fast).
    pub fn sim_params(&self, slots: usize) -> Result<SimParams> {
        Ok(SimParams::new(slots, &self.moduli_bits, self.scale_bits)?)
    }
}

/// Bits of the scale the evaluation's noise takes at ring degree `2^log_n`
/// and `depth` levels (the analysis is in the documentation of [`crate::compile::choose_params`]'s module, src/compile/params.rs).
pub fn noise_bits(log_n: u32, depth: u32) -> u32 {
    let rounding = log_n.saturating_sub(2);
    // ceil(log2(depth + 1)) = the bit length of depth.
    let levels = 32 - depth.leading_zeros();
    rounding.saturating_add(levels).saturating_add(2)
}

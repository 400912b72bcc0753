//! Parameter selection: the smallest 128-bit-secure CKKS parameters that fit
//! a plan's depth, the requested precision and the layout's slot count.
//!
//! The modulus chain is `q_0` (holds the output: scale + integer bits), `L =
//! depth` primes of `scale` bits (one dropped per rescale), and one special
//! prime for hybrid key switching (at least as large as every other prime).
//! The scale is the requested precision plus a noise margin. The ring degree
//! is the smallest `N` whose HomomorphicEncryption.org 128-bit limit admits
//! `log2(QP)` and whose `N / 2` slots hold the layout.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::he::security::{check_128_bit, max_log_qp_128, min_log_n_for};
use crate::plan::CkksChoice;

/// What the parameters must deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamRequest {
    /// Bits of precision wanted after the fractional point of every output.
    pub precision_bits: u32,
    /// Bits for the integer part of the largest intermediate value (log2 of
    /// its magnitude, rounded up, plus a sign bit).
    pub integer_bits: u32,
    /// Bits lost to encoding/encryption/rescale noise (CKKS at N <= 2^16
    /// loses about 10-12 bits).
    pub noise_bits: u32,
    /// Largest prime size the backend supports.
    pub max_prime_bits: u32,
}

impl Default for ParamRequest {
    /// 20 bits of precision, values up to 2^15 in magnitude, 12 bits of noise
    /// margin: scale 2^32, `q_0` of 48 bits.
    fn default() -> Self {
        ParamRequest {
            precision_bits: 20,
            integer_bits: 16,
            noise_bits: 12,
            max_prime_bits: 60,
        }
    }
}

/// The smallest secure parameters for `depth` rescales and at least
/// `min_slots` slots.
pub fn choose_params(depth: u32, min_slots: usize, req: &ParamRequest) -> Result<CkksChoice> {
    let scale_bits = req.precision_bits.saturating_add(req.noise_bits);
    let q0 = scale_bits.saturating_add(req.integer_bits);
    if q0 > req.max_prime_bits || scale_bits < 10 {
        return Err(Error::InvalidParameter {
            name: "scale + integer bits",
            value: i64::from(q0),
            allowed: "at most the largest prime size, scale of at least 10 bits",
        });
    }
    let special = q0.max(scale_bits);
    // log2(QP) with checked arithmetic: a depth no secure set can hold is
    // refused before the chain is built.
    let log_qp = u64::from(scale_bits) * u64::from(depth) + u64::from(q0) + u64::from(special);
    let log_qp = u32::try_from(log_qp).unwrap_or(u32::MAX);
    let for_security = min_log_n_for(log_qp).ok_or(Error::InsecureParameters {
        log_n: 16,
        log_qp,
        max_log_qp: max_log_qp_128(16).unwrap_or(0),
    })?;
    let for_slots = (2 * min_slots.max(1)).next_power_of_two().trailing_zeros();
    let log_n = for_security.max(for_slots);
    check_128_bit(log_n, log_qp)?;
    let mut moduli_bits = vec![q0];
    moduli_bits.extend(std::iter::repeat_n(scale_bits, depth as usize));
    Ok(CkksChoice {
        log_n,
        scale_bits,
        moduli_bits,
        special_bits: vec![special],
    })
}

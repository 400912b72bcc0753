//! Parameter selection: the smallest 128-bit-secure CKKS parameters that fit
//! a plan's depth, the requested precision and the layout's slot count.
//!
//! The modulus chain is `q_0` (holds the output: scale + integer bits), `L =
//! depth` primes of `scale` bits (one dropped per rescale), and one special
//! prime for hybrid key switching of the backend's largest size. The ring
//! degree is the smallest `N` whose HomomorphicEncryption.org 128-bit limit
//! admits `log2(QP)` and whose `N / 2` slots hold the layout.
//!
//! **Precision.** The scale is the requested precision plus the noise the
//! evaluation adds, in bits of the scale ([`noise_bits`]):
//! - a rescale (and the mod-down ending a key switch) rounds every
//!   coefficient of `c_0 + c_1 s` by up to `1/2`; with a ternary secret of
//!   `~2N/3` nonzero coefficients that is a coefficient error of standard
//!   deviation `sqrt(N/18)`, and a slot (a sum of `N` coefficients times
//!   roots of unity) `sqrt(N)` times that: `~2^(log N - 2)` in units of the
//!   scale;
//! - the rounding errors of the `depth` levels add up (at most `depth + 1`
//!   of them reach an output): `ceil(log2(depth + 1))` bits;
//! - weights up to 1 summed over a layer, encoding, encryption and the key
//!   switches (whose noise the special prime of the largest size keeps
//!   below the rounding above): 2 bits of margin.
//!
//! The measured error against an exact run of the same plan is in
//! `tests/precision.rs` (batch, tile and interleaved plans). A scale that
//! does not fit in one prime with the integer bits is refused
//! ([`Error::PrecisionUnreachable`]). Noise flooding on decryption
//! (`Client::set_flooding`, on by default) costs its bits on top: the
//! plan's [`CkksChoice::expected_precision_bits`] is before flooding.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::he::security::{check_128_bit, max_log_qp_128, min_log_n_for};
use crate::plan::{CkksChoice, noise_bits};

/// What the parameters must deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamRequest {
    /// Bits of precision wanted after the fractional point of every output.
    pub precision_bits: u32,
    /// Bits for the integer part of the largest intermediate value (log2 of
    /// its magnitude, rounded up, plus a sign bit).
    pub integer_bits: u32,
    /// The least number of bits the scale has above the precision: the
    /// chosen noise margin is the larger of this and the module's noise
    /// estimate for the ring degree and depth ([`noise_bits`]).
    pub noise_bits: u32,
    /// Largest prime size the backend supports.
    pub max_prime_bits: u32,
}

impl Default for ParamRequest {
    /// 14 bits of precision, values up to 2^15 in magnitude, at least 18
    /// bits of noise margin: scale 2^32 (primes below `2^32`, the backend's
    /// fastest kernels) and `q_0` of 48 bits for every plan up to `N = 2^14`
    /// (depth 10; the main job's LeNet has depth 9) and up to depth 7 at
    /// `N = 2^15`; deeper plans at `N = 2^15` get 33-bit primes.
    fn default() -> Self {
        ParamRequest {
            precision_bits: 14,
            integer_bits: 16,
            noise_bits: 18,
            max_prime_bits: 60,
        }
    }
}

/// The smallest secure parameters for `depth` rescales and at least
/// `min_slots` slots that deliver `req.precision_bits`.
///
/// Errors: [`Error::PrecisionUnreachable`] when the scale the precision
/// needs and the integer bits do not fit in one prime;
/// [`Error::InsecureParameters`] when no degree up to `2^16` holds the
/// chain securely.
pub fn choose_params(depth: u32, min_slots: usize, req: &ParamRequest) -> Result<CkksChoice> {
    let for_slots = (2 * min_slots.max(1)).next_power_of_two().trailing_zeros();
    let mut log_n = for_slots.max(10);
    loop {
        let noise = noise_bits(log_n, depth).max(req.noise_bits);
        let scale_bits = req.precision_bits.saturating_add(noise);
        let q0 = scale_bits.saturating_add(req.integer_bits);
        if q0 > req.max_prime_bits || scale_bits < 10 {
            return Err(Error::PrecisionUnreachable {
                requested_bits: req.precision_bits,
                max_bits: req
                    .max_prime_bits
                    .saturating_sub(req.integer_bits)
                    .saturating_sub(noise),
                log_n,
                depth,
            });
        }
        let special = req.max_prime_bits.max(q0);
        // log2(QP) with checked arithmetic: a depth no secure set can hold
        // is refused before the chain is built.
        let log_qp = u64::from(scale_bits) * u64::from(depth) + u64::from(q0) + u64::from(special);
        let log_qp = u32::try_from(log_qp).unwrap_or(u32::MAX);
        match min_log_n_for(log_qp) {
            Some(secure) if secure <= log_n => {
                check_128_bit(log_n, log_qp)?;
                let mut moduli_bits = vec![q0];
                moduli_bits.extend(std::iter::repeat_n(scale_bits, depth as usize));
                return Ok(CkksChoice {
                    log_n,
                    scale_bits,
                    moduli_bits,
                    special_bits: vec![special],
                });
            }
            Some(secure) => log_n = secure,
            None => {
                return Err(Error::InsecureParameters {
                    log_n: 16,
                    log_qp,
                    max_log_qp: max_log_qp_128(16).unwrap_or(0),
                });
            }
        }
    }
}

//! Choosing 128-bit BFV parameters for a plan from what it records: the
//! plaintext modulus its accumulators need ([`IntegerPlan`]), its depth and
//! the slot count of its layout.
//!
//! The rule, in bits (`log t` = bits of the plaintext modulus `t`):
//! - the ring degree starts at the plan's (so the layout, and the samples
//!   per inference, are the same as on CKKS) and doubles while the moduli
//!   below exceed the HomomorphicEncryption.org 128-bit limit;
//! - `t` is the smallest prime `= 1 mod 2N` above the accumulators' need;
//! - `q_0` has `log t + 20` bits ([`Q0_ROOM_BITS`]): a ciphertext at level
//!   0 keeps the fresh and rounding noise (`~2^13` at `N <= 2^16`) below
//!   `Delta / 2 = q_0 / 2t`;
//! - one prime per level of `log t + log N + 8` bits: a plaintext or
//!   ciphertext product multiplies the noise by about `t * N` (a SIMD
//!   plaintext's coefficients are as large as `t`), a sum of a few hundred
//!   terms by at most `2^8`, and dropping the level's prime divides it back.

use super::params::{BfvParams, Q0_ROOM_BITS};
use crate::error::{Error, Result};
use crate::he::primes::smallest_simd_plaintext_modulus;
use crate::he::security::max_log_qp_128;
use crate::plan::Plan;

/// Bits each level's prime has above `log t + log N`.
const LEVEL_MARGIN_BITS: u32 = 8;
/// The largest prime `fhe` generates.
const MAX_PRIME_BITS: u32 = 62;
/// The largest ring degree of the 128-bit table.
const MAX_LOG_N: u32 = 16;

/// Bits of `x` (`x > 0`).
fn bits(x: u64) -> u32 {
    64 - x.leading_zeros()
}

impl BfvParams {
    /// The smallest 128-bit-secure BFV parameters for a plan compiled from a
    /// quantised network (`compile::compile_quantized`): its slot count, a
    /// plaintext modulus its accumulators cannot overflow, and one modulus
    /// per level of its depth above `q_0` (rule in this module's source).
    ///
    /// Errors: a real-valued plan ([`Error::InvalidParameter`]); a plaintext
    /// modulus too large for one 62-bit prime per level
    /// ([`Error::InvalidParameter`]); a depth that no degree up to `2^16`
    /// holds securely ([`Error::InsecureParameters`]).
    pub fn for_plan(plan: &Plan) -> Result<BfvParams> {
        let integer = plan.integer().ok_or(Error::InvalidParameter {
            name: "plan for BFV",
            value: 0,
            allowed: "a plan compiled from a quantised network (compile_quantized)",
        })?;
        let need_t = integer.min_plaintext_modulus()?;
        let levels = plan.depth().max(1);
        let mut log_n = plan.params().log_n;
        loop {
            let degree = 1usize << log_n;
            let t =
                smallest_simd_plaintext_modulus(need_t, degree).ok_or(Error::InvalidParameter {
                    name: "plaintext modulus needed",
                    value: i64::try_from(need_t).unwrap_or(i64::MAX),
                    allowed: "below 2^61",
                })?;
            let q0 = bits(t) + Q0_ROOM_BITS;
            let level = bits(t) + log_n + LEVEL_MARGIN_BITS;
            if q0.max(level) > MAX_PRIME_BITS {
                return Err(Error::InvalidParameter {
                    name: "plaintext modulus bits for BFV",
                    value: i64::from(bits(t)),
                    allowed: "small enough for one 62-bit prime per level (about 40 bits)",
                });
            }
            let log_q = q0 + levels * level;
            let max = max_log_qp_128(log_n).unwrap_or(0);
            if log_q <= max {
                let mut sizes = vec![q0 as usize];
                sizes.extend(std::iter::repeat_n(level as usize, levels as usize));
                return BfvParams::builder()
                    .degree(degree)
                    .plaintext_modulus(t)
                    .moduli_sizes(&sizes)
                    .build()
                    .map_err(Error::from);
            }
            if log_n >= MAX_LOG_N {
                return Err(Error::InsecureParameters {
                    log_n,
                    log_qp: log_q,
                    max_log_qp: max,
                });
            }
            log_n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test set-up")]
    use crate::compile::{CompileOptions, compile_quantized};
    use crate::model::{Activation, zoo};
    use crate::packing::Batch;
    use crate::quant::{QuantConfig, QuantizedNetwork};

    /// The chosen parameters decrypt a quantised plan's exact integers.
    #[test]
    fn chosen_parameters_run_the_plan_exactly() {
        use crate::eval::{Client, Server};
        use crate::he::bfv::Bfv;
        use rand::SeedableRng;
        let net = zoo::mlp(&[16, 8, 4], Activation::Square, 6).unwrap();
        let cfg = QuantConfig {
            weight_bits: 5,
            input_bits: 5,
            ..QuantConfig::int8(1.0)
        };
        let q = QuantizedNetwork::quantize(&net, &cfg).unwrap();
        let plan = compile_quantized(&q, &Batch, &CompileOptions::default()).unwrap();
        let he = std::sync::Arc::new(Bfv::for_plan(&plan).unwrap());
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let (client, keys) = Client::new(he.clone(), &plan, &mut rng).unwrap();
        let server = Server::new(he.clone(), plan.clone(), keys).unwrap();
        let x = crate::testutil::rand_tensor(&mut rng, vec![6, 16], 1.0);
        let (out, _) = server.run(client.encrypt(&x, &mut rng).unwrap()).unwrap();
        let got = client.decrypt_values(&out).unwrap();
        let want: Vec<Vec<i64>> = x
            .data()
            .chunks(16)
            .map(|s| q.forward(&q.quantize_input(s).unwrap()).unwrap())
            .collect();
        assert_eq!(got, want);
    }
}

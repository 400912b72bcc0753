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
//! - one prime per level of `log t + ceil(log N / 2) + 8` bits
//!   (`level_prime_bits`), from the invariant-noise analysis of BFV
//!   (Fan-Vercauteren 2012; the average-case form of Costache, Laine and
//!   Player 2020). A ciphertext decrypts while its invariant noise `v`
//!   (`t/q * (c_0 + c_1 s) = m + v mod t`) stays below `1/2`; `v` does not
//!   depend on `q`, so every bit of `q` buys one bit of budget. Per
//!   multiplicative level `v` grows by:
//!   - a ciphertext product: the new noise is dominated by `t * (v_1 * m_2
//!     + v_2 * m_1)` times powers of `s`, products of independent ring
//!     elements of degree `N`; a coefficient of such a
//!     product is a sum of `N` terms of random sign, so (central limit) it
//!     has `sqrt(N)` times the magnitude of the factors, not `N`: the factor
//!     is `t * sqrt(N) * c` with a small constant `c` (the secret's
//!     ternary/binomial coefficients, `sqrt(12)` for a uniform `m`);
//!   - a SIMD plaintext product: a plaintext's coefficients are uniform in
//!     `[-t/2, t/2)`, so again `t/sqrt(12) * sqrt(N)` times;
//!   - relinearisation and the modulus switch that drops the level's prime
//!     add terms `t * sqrt(N) * ||s||` / `q_i` at most as large as the above;
//!   - the sums of a layer (a few hundred to a few thousand terms) grow it
//!     by `sqrt(terms)` on average, `2^5` for 1024 terms.
//!
//!   So a level costs `log t + log N / 2` bits plus a margin for the
//!   constants, the sums and the tail of the distribution (6 sigma is below
//!   `2^3`): 8 bits (`LEVEL_MARGIN_BITS`). The test
//!   `noise_budget_left_on_the_deepest_quantised_plan` decrypts the output
//!   of a depth-3 digits plan with the key and measures the budget left.
//!   The earlier rule (`log t + log N + 8`, the worst-case `N` instead of
//!   the average `sqrt(N)`) took the digits plan to `N = 2^14`.
//! - a plan that rotates (diagonal and tile packings) gets
//!   `ROTATION_MARGIN_BITS` = 12 more bits per level: `fhe`'s key switching
//!   decomposes a ciphertext by its RNS primes with no special prime, so a
//!   rotation adds noise about one prime's size larger than a modulus
//!   switch's rounding, and a diagonal packing rotates *before* the
//!   plaintext product that multiplies that noise by `t * sqrt(N)`.
//!   Measured on the conformance suite's quantised diagonal-packed plan
//!   (`tests/plan_conformance.rs`, depth 3-4, `log t` = 29): wrong values
//!   with 4 extra bits, exact with 8; 12 keeps a margin. Batch plans (no
//!   rotation, the digits plan) keep the rule above.

use super::params::{BfvParams, Q0_ROOM_BITS};
use crate::he::error::{Error, Result};
use crate::he::primes::smallest_simd_plaintext_modulus;
use crate::he::security::max_log_qp_128;

/// Bits each level's prime has above `log t + ceil(log N / 2)`.
const LEVEL_MARGIN_BITS: u32 = 8;
/// Bits each level's prime gets on top when the plan rotates (see the
/// module documentation: key switching without a special prime).
const ROTATION_MARGIN_BITS: u32 = 12;
/// The largest prime `fhe` generates.
const MAX_PRIME_BITS: u32 = 62;
/// The largest ring degree of the 128-bit table.
const MAX_LOG_N: u32 = 16;

/// Bits of one level's prime for plaintext modulus bits `log_t` at ring
/// degree `2^log_n` (rule in this module's documentation).
pub(crate) fn level_prime_bits(log_t: u32, log_n: u32) -> u32 {
    log_t + log_n.div_ceil(2) + LEVEL_MARGIN_BITS
}

/// Bits of `x` (`x > 0`).
fn bits(x: u64) -> u32 {
    64 - x.leading_zeros()
}

impl BfvParams {
    /// The smallest 128-bit-secure BFV parameters for what a plan compiled
    /// from a quantised network records (`Bfv::for_plan` reads them from
    /// the plan): `need_t`, the smallest plaintext modulus its accumulators
    /// cannot overflow; `depth`, its multiplicative depth; `min_log_n`, the
    /// ring degree of its layout (so the samples per inference are those of
    /// CKKS); `rotates`, whether it rotates (its key requirements name a
    /// rotation). One modulus per level above `q_0` (rule in this module's
    /// documentation).
    ///
    /// Errors: a plaintext modulus too large for one 62-bit prime per level
    /// ([`Error::InvalidParameter`]); a depth that no degree up to `2^16`
    /// holds securely ([`Error::InsecureParameters`]).
    pub fn for_requirements(
        need_t: u64,
        depth: u32,
        min_log_n: u32,
        rotates: bool,
    ) -> Result<BfvParams> {
        let levels = depth.max(1);
        let mut log_n = min_log_n;
        loop {
            let degree = 1usize << log_n;
            let t =
                smallest_simd_plaintext_modulus(need_t, degree).ok_or(Error::InvalidParameter {
                    name: "plaintext modulus needed",
                    value: i64::try_from(need_t).unwrap_or(i64::MAX),
                    allowed: "below 2^61",
                })?;
            let q0 = bits(t) + Q0_ROOM_BITS;
            let level =
                level_prime_bits(bits(t), log_n) + if rotates { ROTATION_MARGIN_BITS } else { 0 };
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
                    .build();
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
        let want = crate::testutil::integer_outputs(&q, &x, 16);
        assert_eq!(got, want);
    }

    /// Bits of noise budget left in a level-0 ciphertext: `log2(q_0 / 2 e)`
    /// with `e` the largest `|t x - q_0 round(t x / q_0)|` over the
    /// coefficients of `x = c_0 + c_1 s (+ c_2 s^2)` (the invariant noise of
    /// the module documentation times `q_0`). Decryption is correct while it
    /// is positive.
    fn noise_budget_bits(
        he: &crate::he::bfv::Bfv,
        sk: &crate::he::bfv::BfvSecretKey,
        ct: &crate::he::bfv::BfvCiphertext,
    ) -> f64 {
        use fhe_math::rq::traits::TryConvertFrom;
        use fhe_math::rq::{Poly, Representation};
        use fhe_traits::Serialize as _;
        use prost::Message;
        let coeffs = fhe::proto::bfv::SecretKey::decode(sk.inner.to_bytes().as_slice())
            .unwrap()
            .coeffs;
        let ctx = ct.inner[0].ctx();
        assert_eq!(ctx.moduli().len(), 1, "measured at level 0");
        let q0 = i128::from(ctx.moduli()[0]);
        let mut s =
            Poly::try_convert_from(coeffs.as_slice(), ctx, false, Representation::PowerBasis)
                .unwrap();
        s.change_representation(Representation::Ntt);
        let mut x = ct.inner[0].clone();
        let mut si = s.clone();
        for c in ct.inner.iter().skip(1) {
            let mut term = c.clone();
            term *= &si;
            x += &term;
            si *= &s;
        }
        x.change_representation(Representation::PowerBasis);
        let t = i128::from(he.params.plaintext_modulus());
        let worst = x
            .coefficients()
            .row(0)
            .iter()
            .map(|&c| {
                let c = i128::from(c);
                let centred = if c > q0 / 2 { c - q0 } else { c };
                let tx = t * centred;
                let m = (2 * tx + q0).div_euclid(2 * q0);
                (tx - q0 * m).abs()
            })
            .max()
            .unwrap();
        (q0 as f64).log2() - 1.0 - (worst.max(1) as f64).log2()
    }

    /// The deepest quantised plan of the tests (the 64-16-10 square MLP of
    /// tests/bfv_digits.rs on the digits test split, depth 3) gets the
    /// smallest secure degree its slots allow (`N = 2^13`, as on CKKS) and
    /// its output keeps a measured noise budget of several bits at level 0.
    #[test]
    fn noise_budget_left_on_the_deepest_quantised_plan() {
        use crate::data::Dataset;
        use crate::eval::{Client, Server};
        use crate::he::bfv::Bfv;
        use crate::he::{HeScheme, HeWire};
        use rand::SeedableRng;
        let data = Dataset::digits_8x8().flatten();
        let (_, test_set) = data.split(0.25, 1).unwrap();
        let net = zoo::mlp(&[64, 16, 10], Activation::Square, 2).unwrap();
        let cfg = QuantConfig {
            weight_bits: 5,
            input_bits: 5,
            ..QuantConfig::int8(1.0)
        };
        let q = QuantizedNetwork::quantize(&net, &cfg).unwrap();
        let opts = CompileOptions {
            min_slots: test_set.len(),
            ..CompileOptions::default()
        };
        let plan = compile_quantized(&q, &Batch, &opts).unwrap();
        assert_eq!(plan.depth(), 3);
        let he = std::sync::Arc::new(Bfv::for_plan(&plan).unwrap());
        let p = he.params();
        assert_eq!(p.degree(), 8192, "{p:?}");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let (client, keys) = Client::new(he.clone(), &plan, &mut rng).unwrap();
        let server = Server::new(he.clone(), plan.clone(), keys).unwrap();
        let (out, _) = server
            .run(client.encrypt(test_set.inputs(), &mut rng).unwrap())
            .unwrap();
        let sk = he
            .secret_key_from_bytes(&client.export_secret_key().unwrap())
            .unwrap();
        let budget = out
            .ciphertexts()
            .iter()
            .map(|ct| noise_budget_bits(&he, &sk, ct))
            .fold(f64::INFINITY, f64::min);
        eprintln!(
            "digits plan: N = {}, log t = {:.1}, moduli bits {:?}: {budget:.1} bits of noise budget left",
            p.degree(),
            (p.plaintext_modulus() as f64).log2(),
            p.moduli_sizes()
        );
        assert!(budget >= 4.0, "{budget:.1} bits left");
        // And the outputs are exact.
        let got = client.decrypt_values(&out).unwrap();
        let want: Vec<Vec<i64>> = test_set
            .inputs()
            .data()
            .chunks(64)
            .map(|s| q.forward(&q.quantize_input(s).unwrap()).unwrap())
            .collect();
        assert_eq!(got, want);
    }
}

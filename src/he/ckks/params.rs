//! CKKS parameters: ring degree, the modulus chain `q_0 .. q_L`, the special
//! primes `p_0 .. p_{K-1}` of hybrid key switching, and the default scale.
//!
//! Primes are generated deterministically from their requested bit sizes:
//! for each size, in order, the largest prime `q < 2^bits` with
//! `q = 1 mod 2N` not already taken (NTT-friendly, all distinct). The builder
//! checks 128-bit security (HomomorphicEncryption.org table, ternary secret)
//! on the sum of the requested bit sizes, an upper bound of log2(QP).

use serde::{Deserialize, Serialize};

use crate::he::error::{Error, Result};
use crate::he::primes::is_prime;
use crate::he::security::check_128_bit;
use crate::he::sim::SimParams;
use crate::he::{Level, Scale};

/// Smallest and largest bit size of one prime.
const PRIME_BITS: (u32, u32) = (20, 60);

/// Parameters of the CKKS backend. Build them with [`CkksParams::builder`];
/// fields are private and always consistent.
#[derive(Debug, Clone, PartialEq)]
pub struct CkksParams {
    spec: ParamSpec,
    moduli: Vec<u64>,
    special: Vec<u64>,
}

/// What a parameter set is generated from (this is what is serialised).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ParamSpec {
    pub(crate) log_n: u32,
    pub(crate) moduli_bits: Vec<u32>,
    pub(crate) special_bits: Vec<u32>,
    pub(crate) scale_bits: u32,
}

/// Builder of [`CkksParams`]; see [`CkksParams::builder`].
#[derive(Debug, Clone)]
pub struct CkksParamsBuilder {
    log_n: u32,
    moduli_bits: Vec<u32>,
    special_bits: Vec<u32>,
    scale_bits: u32,
}

impl Default for CkksParamsBuilder {
    fn default() -> Self {
        CkksParamsBuilder {
            log_n: 14,
            moduli_bits: vec![60, 40, 40, 40, 40, 40, 40],
            special_bits: vec![60],
            scale_bits: 40,
        }
    }
}

impl CkksParamsBuilder {
    /// log2 of the ring degree N (12..=16). Slots: N/2.
    pub fn log_n(mut self, log_n: u32) -> Self {
        self.log_n = log_n;
        self
    }

    /// Bit sizes of the ciphertext moduli `q_0, q_1, ..., q_L` (`q_0` first;
    /// fresh ciphertexts are at level L; the rescale at level `l` divides by `q_l`).
    pub fn moduli_bits(mut self, bits: &[u32]) -> Self {
        self.moduli_bits = bits.to_vec();
        self
    }

    /// Bit sizes of the special primes used only in key switching (at least
    /// one; each should be at least as large as the largest ciphertext prime).
    /// With K special primes, key switching decomposes in digits of K primes.
    pub fn special_bits(mut self, bits: &[u32]) -> Self {
        self.special_bits = bits.to_vec();
        self
    }

    /// log2 of the default scale.
    pub fn scale_bits(mut self, bits: u32) -> Self {
        self.scale_bits = bits;
        self
    }

    /// Checks the sizes and 128-bit security, then generates the primes.
    pub fn build(self) -> Result<CkksParams> {
        let spec = self.spec();
        if !(12..=16).contains(&spec.log_n) {
            return Err(Error::InvalidParameter {
                name: "log2(N)",
                value: i64::from(spec.log_n),
                allowed: "12..=16",
            });
        }
        // Checked: bit sizes come from untrusted bytes in `from_bytes`; a
        // sum past u32 is refused as insecure rather than wrapped.
        let log_qp = spec
            .moduli_bits
            .iter()
            .chain(&spec.special_bits)
            .try_fold(0u32, |acc, &b| acc.checked_add(b))
            .unwrap_or(u32::MAX);
        check_128_bit(spec.log_n, log_qp)?;
        CkksParams::generate(spec)
    }

    fn spec(&self) -> ParamSpec {
        ParamSpec {
            log_n: self.log_n,
            moduli_bits: self.moduli_bits.clone(),
            special_bits: self.special_bits.clone(),
            scale_bits: self.scale_bits,
        }
    }
}

impl CkksParams {
    /// A builder, defaulting to N = 2^14, moduli `[60, 40 x 6]`, special `[60]`, scale 2^40.
    pub fn builder() -> CkksParamsBuilder {
        CkksParamsBuilder::default()
    }

    /// **Insecure** parameters for tests only: no 128-bit check, ring degree
    /// down to 2^4. Never use these for data that matters.
    pub fn insecure_for_tests(
        log_n: u32,
        moduli_bits: &[u32],
        special_bits: &[u32],
        scale_bits: u32,
    ) -> Result<CkksParams> {
        if !(4..=16).contains(&log_n) {
            return Err(Error::InvalidParameter {
                name: "log2(N)",
                value: i64::from(log_n),
                allowed: "4..=16",
            });
        }
        CkksParams::generate(ParamSpec {
            log_n,
            moduli_bits: moduli_bits.to_vec(),
            special_bits: special_bits.to_vec(),
            scale_bits,
        })
    }

    /// Rebuilds secure parameters from a spec (used when loading bytes).
    pub(crate) fn from_spec(spec: &ParamSpec) -> Result<CkksParams> {
        CkksParamsBuilder {
            log_n: spec.log_n,
            moduli_bits: spec.moduli_bits.clone(),
            special_bits: spec.special_bits.clone(),
            scale_bits: spec.scale_bits,
        }
        .build()
    }

    fn generate(spec: ParamSpec) -> Result<CkksParams> {
        if spec.moduli_bits.is_empty() {
            return Err(Error::InvalidParameter {
                name: "moduli",
                value: 0,
                allowed: "at least one modulus",
            });
        }
        if spec.special_bits.is_empty() {
            return Err(Error::InvalidParameter {
                name: "special primes",
                value: 0,
                allowed: "at least one special prime",
            });
        }
        let min_bits = PRIME_BITS.0.max(spec.log_n + 3);
        for &b in spec.moduli_bits.iter().chain(&spec.special_bits) {
            if !(min_bits..=PRIME_BITS.1).contains(&b) {
                return Err(Error::InvalidParameter {
                    name: "prime bits",
                    value: i64::from(b),
                    allowed: "log2(N)+3 ..= 60 (and >= 20)",
                });
            }
        }
        let top: u32 = *spec.moduli_bits.iter().max().unwrap_or(&0);
        if spec.scale_bits == 0 || spec.scale_bits > top.max(spec.moduli_bits[0]) {
            return Err(Error::InvalidParameter {
                name: "scale bits",
                value: i64::from(spec.scale_bits),
                allowed: "1 ..= the largest modulus",
            });
        }
        let two_n = 2u64 << spec.log_n;
        let mut taken: Vec<u64> = Vec::new();
        let next = |bits: u32, taken: &mut Vec<u64>| -> Result<u64> {
            let mut k = ((1u64 << bits) - 1) / two_n;
            while k > 0 {
                let q = k * two_n + 1;
                if q < (1u64 << (bits - 1)) {
                    break;
                }
                if !taken.contains(&q) && is_prime(q) {
                    taken.push(q);
                    return Ok(q);
                }
                k -= 1;
            }
            Err(Error::InvalidParameter {
                name: "prime bits (not enough NTT-friendly primes)",
                value: i64::from(bits),
                allowed: "sizes with enough primes = 1 mod 2N",
            })
        };
        let mut moduli = Vec::with_capacity(spec.moduli_bits.len());
        for &b in &spec.moduli_bits {
            moduli.push(next(b, &mut taken)?);
        }
        let mut special = Vec::with_capacity(spec.special_bits.len());
        for &b in &spec.special_bits {
            special.push(next(b, &mut taken)?);
        }
        Ok(CkksParams {
            spec,
            moduli,
            special,
        })
    }

    pub(crate) fn spec(&self) -> &ParamSpec {
        &self.spec
    }

    /// log2 of the ring degree.
    pub fn log_n(&self) -> u32 {
        self.spec.log_n
    }

    /// The ring degree N.
    pub fn degree(&self) -> usize {
        1 << self.spec.log_n
    }

    /// Number of slots, N/2.
    pub fn slots(&self) -> usize {
        self.degree() / 2
    }

    /// The ciphertext primes `q_0 .. q_L`.
    pub fn moduli(&self) -> &[u64] {
        &self.moduli
    }

    /// The special primes of key switching.
    pub fn special_moduli(&self) -> &[u64] {
        &self.special
    }

    /// The highest level L (fresh ciphertexts).
    pub fn max_level(&self) -> Level {
        Level((self.moduli.len() - 1) as u32)
    }

    /// The default scale, `2^scale_bits`.
    pub fn default_scale(&self) -> Scale {
        Scale::from_log2(f64::from(self.spec.scale_bits))
    }

    /// log2 of `Q_l = q_0 * ... * q_l`.
    pub fn log_modulus_at(&self, level: Level) -> f64 {
        self.moduli
            .iter()
            .take(level.0 as usize + 1)
            .map(|&q| (q as f64).log2())
            .sum()
    }

    /// Simulator parameters that mirror this set exactly: same slot count,
    /// the exact primes as modulus chain, same default scale. Cost and scale
    /// estimates on [`Sim`](crate::he::sim::Sim) then track CKKS exactly.
    pub fn sim_params(&self) -> Result<SimParams> {
        SimParams::with_moduli(
            self.slots(),
            self.moduli.iter().map(|&q| q as f64).collect(),
            self.default_scale(),
        )
    }

    /// A 64-bit fingerprint of the parameter set (ring degree and primes);
    /// ciphertexts and keys carry it and are refused by other parameters.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |x: u64| {
            for b in x.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        eat(u64::from(self.spec.log_n));
        eat(self.moduli.len() as u64);
        self.moduli.iter().for_each(|&q| eat(q));
        eat(self.special.len() as u64);
        self.special.iter().for_each(|&q| eat(q));
        eat(u64::from(self.spec.scale_bits));
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_ntt_friendly_distinct_primes() {
        let p = CkksParams::builder()
            .log_n(13)
            .moduli_bits(&[60, 40, 40])
            .special_bits(&[60])
            .scale_bits(40)
            .build()
            .unwrap();
        let all: Vec<u64> = p
            .moduli()
            .iter()
            .chain(p.special_moduli())
            .copied()
            .collect();
        for (i, &q) in all.iter().enumerate() {
            assert!(is_prime(q));
            assert_eq!(q % (2 << 13), 1);
            assert!(!all[..i].contains(&q));
        }
        assert_eq!(64 - p.moduli()[1].leading_zeros(), 40);
        assert!(p.moduli()[1] > p.moduli()[2]);
        assert_eq!(p.max_level(), Level(2));
        assert_eq!(p.slots(), 4096);
        let sim = p.sim_params().unwrap();
        assert_eq!(sim.moduli()[1], p.moduli()[1] as f64);
    }

    #[test]
    fn rejects_insecure_with_the_limit() {
        let e = CkksParams::builder()
            .log_n(13)
            .moduli_bits(&[60, 40, 40, 40])
            .special_bits(&[60])
            .build()
            .unwrap_err();
        assert!(matches!(
            e,
            Error::InsecureParameters {
                log_n: 13,
                log_qp: 240,
                max_log_qp: 218
            }
        ));
        assert!(CkksParams::builder().log_n(11).build().is_err());
        assert!(CkksParams::builder().special_bits(&[]).build().is_err());
        assert!(CkksParams::builder().moduli_bits(&[61]).build().is_err());
        assert!(CkksParams::insecure_for_tests(5, &[30, 30], &[30], 20).is_ok());
    }
}

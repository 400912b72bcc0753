//! Native RNS-CKKS: the main real backend, implementing
//! [`HeScheme`](crate::he::HeScheme) with `f64` slots.
//!
//! Design notes (RNS layout, NTT order, key switching, slot order,
//! security): `docs/ckks.md`.
//!
//! - [`CkksParams`]: ring degree 2^12..2^16, NTT-friendly primes generated
//!   from bit sizes, special primes for hybrid key switching; the builder
//!   refuses anything below 128-bit security
//!   ([`Error::InsecureParameters`]).
//! - Polynomials live in NTT form over `q_0 .. q_l` (one limb per prime);
//!   the NTT is our own (Harvey butterflies, AVX2 / AVX-512 through `pulp`).
//! - Slot `i` holds `m(zeta^(5^i))`, so `rotate(Rotation(k))` moves slot
//!   `i + k` to slot `i`, as the [`Sim`](crate::he::sim::Sim) does.
//! - Errors mirror the simulator's for the same misuse.
//!
//! ```
//! use mofhei::he::ckks::{Ckks, CkksParams};
//! use mofhei::he::{HeScheme, KeyRequirements, Rotation};
//! use rand::SeedableRng;
//!
//! let params = CkksParams::builder()
//!     .log_n(13)
//!     .moduli_bits(&[60, 40, 40])
//!     .special_bits(&[60])
//!     .scale_bits(40)
//!     .build()?;
//! let ckks = Ckks::new(params)?;
//! let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
//! let sk = ckks.generate_secret_key(&mut rng)?;
//! let pk = ckks.generate_public_key(&sk, &mut rng)?;
//! let req = KeyRequirements::new().with_relinearization().with_rotations([Rotation(1)]);
//! let keys = ckks.generate_eval_keys(&sk, &req, &mut rng)?;
//! let pt = ckks.encode(&[1.0, 2.0, 3.0], ckks.max_level(), ckks.default_scale())?;
//! let ct = ckks.encrypt(&pk, &pt, &mut rng)?;
//! let sq = ckks.mul_relin_rescale(&ct, &ct, &keys)?;
//! let rot = ckks.rotate(&sq, Rotation(1), &keys)?;
//! let out = ckks.decode(&ckks.decrypt(&sk, &rot)?)?;
//! assert!((out[0] - 4.0).abs() < 1e-4 && (out[1] - 9.0).abs() < 1e-4);
//! # Ok::<(), mofhei::Error>(())
//! ```

use std::sync::Arc;

use crate::he::OpKind;
use crate::he::error::{Error, Result};
use crate::he::{KeyId, Level, Scale};

mod dot;
mod encoder;
mod kernels;
mod kernels_mac;
mod kernels_rescale;
mod keys;
mod keyswitch;
mod modulus;
mod noise;
mod ntt;
mod ops;
mod params;
mod poly;
mod rns;
mod rotate;
mod seeded;
mod serialize;
mod simd;
mod wire;

pub use keys::{CkksEvalKeys, CkksPublicKey, CkksSecretKey};
#[doc(hidden)]
pub use ntt::bench as ntt_bench;
pub use params::{CkksParams, CkksParamsBuilder};

use encoder::Encoder;
use modulus::{Modulus, Shoup};
use noise::Noise;
use rns::{BaseConverter, Ring};

/// The CKKS backend for one parameter set (holds the precomputed tables;
/// cheap to clone).
#[derive(Clone)]
pub struct Ckks {
    params: CkksParams,
    fp: u64,
    ring: Arc<Ring>,
    encoder: Arc<Encoder>,
    /// Per level `l`: base conversion from the special primes to `q_0..q_l`.
    moddown_conv: Arc<Vec<BaseConverter>>,
    /// `P^-1 mod q_j`.
    p_inv: Arc<Vec<Shoup>>,
    /// `(P - 1) / 2` modulo every prime (q's and specials): added before the
    /// mod-down so that it rounds instead of flooring (no bias).
    p_half: Arc<Vec<u64>>,
    /// `[l][j] = q_l^-1 mod q_j` for `j < l`.
    rescale_inv: Arc<Vec<Vec<Shoup>>>,
    /// Garner tables: `[i][j] = q_j mod q_i` (j < i) and `[i] = (q_0...q_{i-1})^-1 mod q_i`.
    garner_q: Arc<Vec<Vec<u64>>>,
    garner_inv: Arc<Vec<Shoup>>,
    /// Variance a key switch adds to a ciphertext's error (`noise` module).
    ks_var: f64,
}

impl std::fmt::Debug for Ckks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ckks")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// An encoded plaintext: one polynomial in NTT form at a level and scale.
#[derive(Clone, Debug)]
pub struct CkksPlaintext {
    pub(crate) poly: Vec<u64>,
    pub(crate) level: Level,
    pub(crate) scale: Scale,
    pub(crate) fp: u64,
    /// Squared 2-norm of the coefficients (for the noise estimate of products).
    pub(crate) norm_sq: f64,
}

/// A ciphertext: 2 polynomials (3 after an unrelinearised product) in NTT
/// form, with the parameter fingerprint, the [`KeyId`] of its secret key
/// and its noise estimate.
#[derive(Clone, Debug)]
pub struct CkksCiphertext {
    pub(crate) polys: Vec<Vec<u64>>,
    pub(crate) level: Level,
    pub(crate) scale: Scale,
    pub(crate) fp: u64,
    pub(crate) key: KeyId,
    pub(crate) noise: Noise,
}

impl CkksCiphertext {
    /// Number of polynomials (2, or 3 after an unrelinearised product).
    pub fn size(&self) -> usize {
        self.polys.len()
    }

    /// The [`KeyId`] of the secret key it is encrypted under.
    pub fn key_id(&self) -> KeyId {
        self.key
    }

    /// log2 of the estimated standard deviation of each coefficient of its
    /// error, in units of one at its scale (what decryption with flooding
    /// multiplies; `docs/security.md`).
    pub fn noise_log2(&self) -> f64 {
        0.5 * self.noise.var.log2()
    }
}

/// A fresh secret-key ciphertext in compressed form: `c_0` and the 32-byte
/// seed its uniform `c_1 = a` is expanded from, half the size of a
/// [`CkksCiphertext`] on the wire ([`Ckks::seeded_ciphertext_to_bytes`]).
/// Made by [`Ckks::encrypt_secret_seeded`]; [`Ckks::expand`] restores the
/// ciphertext (the server expands what a client uploads).
#[derive(Clone, Debug)]
pub struct CkksSeededCiphertext {
    pub(crate) c0: Vec<u64>,
    pub(crate) seed: [u8; 32],
    pub(crate) level: Level,
    pub(crate) scale: Scale,
    pub(crate) fp: u64,
    pub(crate) key: KeyId,
    pub(crate) noise: Noise,
}

impl Ckks {
    /// The backend for these parameters (builds NTT plans and tables).
    pub fn new(params: CkksParams) -> Result<Ckks> {
        let ring = Ring::new(&params)?;
        let n = ring.n;
        let num_q = ring.num_q;
        let specials: Vec<usize> = (0..ring.num_p).map(|k| ring.special(k)).collect();
        let moddown_conv = (0..num_q)
            .map(|l| BaseConverter::new(&ring, &specials, &(0..=l).collect::<Vec<_>>()))
            .collect();
        let p_inv = (0..num_q)
            .map(|j| {
                let m = &ring.moduli[j];
                let p = specials
                    .iter()
                    .fold(1u64, |acc, &s| m.mul(acc, m.reduce(ring.moduli[s].value())));
                m.shoup(m.inv(p))
            })
            .collect();
        let p_half = ring
            .moduli
            .iter()
            .map(|m| {
                let p = specials
                    .iter()
                    .fold(1u64, |acc, &s| m.mul(acc, m.reduce(ring.moduli[s].value())));
                m.mul(m.sub(p, 1 % m.value()), m.inv(2))
            })
            .collect();
        let rescale_inv = (0..num_q)
            .map(|l| {
                (0..l)
                    .map(|j| {
                        let m = &ring.moduli[j];
                        m.shoup(m.inv(m.reduce(ring.moduli[l].value())))
                    })
                    .collect()
            })
            .collect();
        let garner_q = (0..num_q)
            .map(|i| {
                let m = &ring.moduli[i];
                (0..i).map(|j| m.reduce(ring.moduli[j].value())).collect()
            })
            .collect();
        let garner_inv = (0..num_q)
            .map(|i| {
                let m = &ring.moduli[i];
                let prod = (0..i).fold(1u64, |acc, j| m.mul(acc, m.reduce(ring.moduli[j].value())));
                m.shoup(m.inv(prod))
            })
            .collect();
        let ks_var = noise::key_switch_var(&ring);
        Ok(Ckks {
            ks_var,
            fp: params.fingerprint(),
            encoder: Arc::new(Encoder::new(n)),
            params,
            ring: Arc::new(ring),
            moddown_conv: Arc::new(moddown_conv),
            p_inv: Arc::new(p_inv),
            p_half: Arc::new(p_half),
            rescale_inv: Arc::new(rescale_inv),
            garner_q: Arc::new(garner_q),
            garner_inv: Arc::new(garner_inv),
        })
    }

    fn n(&self) -> usize {
        self.ring.n
    }

    fn modulus(&self, i: usize) -> &Modulus {
        &self.ring.moduli[i]
    }

    /// `expected` and `found` are the same secret key's ([`Error::KeyMismatch`]).
    fn check_key(&self, op: OpKind, expected: KeyId, found: KeyId) -> Result<()> {
        crate::he::checks::same_key(op, expected, found)
    }

    fn check_fp(&self, fp: u64, op: OpKind) -> Result<()> {
        if fp == self.fp {
            Ok(())
        } else {
            Err(Error::ParameterMismatch { op })
        }
    }

    /// Errors as the simulator would when `scale` alone leaves no room at
    /// `level` (the simulator's bound for values of magnitude <= 1).
    fn check_scale_room(&self, op: OpKind, level: Level, scale: Scale) -> Result<()> {
        let log_q = self.params.log_modulus_at(level);
        crate::he::checks::scale_room(op, level, scale, 0.0, log_q)
    }

    /// Centred coefficients of a coefficient-form polynomial at `level`, as `f64`
    /// (mixed-radix / Garner reconstruction, exact up to the final rounding).
    fn centred_coeffs(&self, coeffs: &[u64], level: usize) -> Vec<f64> {
        let n = self.n();
        let q: Vec<u64> = (0..=level).map(|i| self.modulus(i).value()).collect();
        let mut digits = vec![0u64; level + 1];
        (0..n)
            .map(|k| {
                digits[0] = coeffs[k];
                for i in 1..=level {
                    let m = self.modulus(i);
                    let gq = &self.garner_q[i];
                    let mut v = m.reduce(digits[i - 1]);
                    for j in (0..i - 1).rev() {
                        v = m.add(m.mul(v, gq[j]), m.reduce(digits[j]));
                    }
                    digits[i] = m.mul_shoup(m.sub(coeffs[i * n + k], v), self.garner_inv[i]);
                }
                let negative = digits[level] > (q[level] - 1) / 2;
                let digit = |i: usize| {
                    if negative {
                        (q[i] - 1 - digits[i]) as f64
                    } else {
                        digits[i] as f64
                    }
                };
                let mut v = digit(level);
                for i in (0..level).rev() {
                    v = v * q[i] as f64 + digit(i);
                }
                if negative { -(v + 1.0) } else { v }
            })
            .collect()
    }
}

#[cfg(test)]
mod security_tests;
#[cfg(test)]
mod tests;

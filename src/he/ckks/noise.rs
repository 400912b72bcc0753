//! The noise estimate every CKKS ciphertext carries, and noise flooding.
//!
//! [`Noise`] is an average-case (central-limit) estimate in the coefficient
//! embedding, the usual heuristic of CKKS noise analyses (e.g. Costache,
//! Curtis, Hales, Murphy, Ogilvie and Player, "On the precision loss in
//! approximate homomorphic encryption", 2022): `var` is the variance of
//! each coefficient of the error `e` in `c_0 + c_1 s = m + e` (at the
//! ciphertext's scale, in units of one), `msg` an estimate of `||m||_2^2`,
//! the squared norm of the message polynomial (needed for products, where
//! the message multiplies the other operand's error). Only noise that
//! depends on secret randomness (encryption errors, `s` in rounding and
//! key-switching terms) is tracked: the rounding of encoded values is a
//! public function of public data and leaks nothing.
//!
//! Updates (N the ring degree, ternary `s` with `Var(s_i) = 2/3`, error
//! `sigma = 3.2`):
//! - secret-key encryption: `sigma^2`; public-key encryption (noise divided
//!   by P, then rounded): `R + (2 N 2/3 sigma^2 + sigma^2) / P^2` with
//!   `R = (1 + 2N/3) / 12` the variance of a rounding `tau_0 + tau_1 s`;
//! - add: variances add (and squared message norms: the heuristic treats
//!   operands as independent, as the analyses above do); plaintext and
//!   constant additions leave the error as it is;
//! - times an integer `k` or a plaintext `p`: `var k^2`, `var ||p||^2`;
//! - ct x ct: `||m_a||^2 var_b + ||m_b||^2 var_a + N var_a var_b`;
//! - key switching (relinearise, rotate, conjugate): `+ sum_d N Q_d^2 / 12
//!   sigma^2 / P^2 + R` (digits uniform below `Q_d`, divided by P, rounded);
//! - rescale by `q`: `var / q^2 + R`.
//!
//! [`flood`] adds to a decrypted polynomial a fresh rounded Gaussian of
//! standard deviation `2^bits sqrt(var)` per coefficient (see
//! `docs/security.md` for the choice of `bits` and its precision cost).

use rand_core::{CryptoRng, RngCore};

use super::rns::{Ring, SIGMA};

/// The estimated error of a ciphertext (module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Noise {
    /// Variance of one coefficient of the error.
    pub(crate) var: f64,
    /// Estimate of the squared 2-norm of the message polynomial.
    pub(crate) msg: f64,
}

/// Variance of a rounding `tau_0 + tau_1 s` (uniform `tau` in [-1/2, 1/2]).
pub(crate) fn rounding_var(n: usize) -> f64 {
    (1.0 + 2.0 * n as f64 / 3.0) / 12.0
}

/// The variance a key switch adds (module docs), for the ring's digits.
pub(crate) fn key_switch_var(ring: &Ring) -> f64 {
    let n = ring.n as f64;
    let log_p: f64 = (0..ring.num_p)
        .map(|k| (ring.moduli[ring.special(k)].value() as f64).log2())
        .sum();
    let digits = super::keys::digit_count(ring);
    let sum: f64 = (0..digits)
        .map(|d| {
            let log_qd: f64 = super::keys::digit_primes(ring, d)
                .map(|j| (ring.moduli[j].value() as f64).log2())
                .sum();
            (2.0 * (log_qd - log_p)).exp2() * n / 12.0 * SIGMA * SIGMA
        })
        .sum();
    sum + rounding_var(ring.n)
}

impl Noise {
    /// A secret-key encryption of a plaintext of squared norm `msg`.
    pub(crate) fn fresh_secret(msg: f64) -> Noise {
        Noise {
            var: SIGMA * SIGMA,
            msg,
        }
    }

    /// A public-key encryption (encrypted modulo `Q P`, divided by `P`).
    pub(crate) fn fresh_public(ring: &Ring, msg: f64) -> Noise {
        let n = ring.n as f64;
        let log_p: f64 = (0..ring.num_p)
            .map(|k| (ring.moduli[ring.special(k)].value() as f64).log2())
            .sum();
        let before = (2.0 * n * 2.0 / 3.0 + 1.0) * SIGMA * SIGMA;
        Noise {
            var: rounding_var(ring.n) + before * (-2.0 * log_p).exp2(),
            msg,
        }
    }

    /// The sum (or difference) of two ciphertexts.
    pub(crate) fn add(self, o: Noise) -> Noise {
        Noise {
            var: self.var + o.var,
            msg: self.msg + o.msg,
        }
    }

    /// Plus a plaintext (or constant) of squared norm `p`: the message grows.
    pub(crate) fn add_plain(self, p: f64) -> Noise {
        Noise {
            var: self.var,
            msg: self.msg + p,
        }
    }

    /// Times a plaintext of squared norm `p` (an integer `k`: `p = k^2`).
    pub(crate) fn mul_plain(self, p: f64) -> Noise {
        Noise {
            var: self.var * p,
            msg: self.msg * p,
        }
    }

    /// The product of two ciphertexts in a ring of degree `n`.
    pub(crate) fn mul(self, o: Noise, n: usize) -> Noise {
        Noise {
            var: self.msg * o.var + o.msg * self.var + n as f64 * self.var * o.var,
            msg: self.msg * o.msg,
        }
    }

    /// After a key switch adding variance `ks`.
    pub(crate) fn key_switch(self, ks: f64) -> Noise {
        Noise {
            var: self.var + ks,
            msg: self.msg,
        }
    }

    /// After a rescale by `q` in a ring of degree `n`.
    pub(crate) fn rescale(self, q: f64, n: usize) -> Noise {
        Noise {
            var: self.var / (q * q) + rounding_var(n),
            msg: self.msg / (q * q),
        }
    }

    /// Whether both figures are finite and non-negative (checked on bytes).
    pub(crate) fn is_valid(self) -> bool {
        self.var.is_finite() && self.var >= 0.0 && self.msg.is_finite() && self.msg >= 0.0
    }
}

/// Adds flooding noise to `poly`, a decrypted polynomial in NTT form over
/// `q_0 .. q_l`: a rounded Gaussian of standard deviation `2^bits *
/// sqrt(var)` per coefficient, `var` at least 1 (so a ciphertext claiming
/// no noise is flooded too; every real ciphertext but a trivial zero has
/// more). Returns the standard deviation used.
pub(crate) fn flood<R: RngCore + CryptoRng + ?Sized>(
    ring: &Ring,
    poly: &mut [u64],
    l: usize,
    var: f64,
    bits: u32,
    rng: &mut R,
) -> f64 {
    let n = ring.n;
    let std = f64::from(bits).exp2() * var.max(1.0).sqrt();
    let mut f = gaussian(n, std, rng);
    let mut limb = vec![0u64; n];
    for j in 0..=l {
        let m = &ring.moduli[j];
        for (o, &x) in limb.iter_mut().zip(&f) {
            *o = m.reduce_f64_integer(x);
        }
        ring.forward(j, &mut limb);
        for (p, &y) in poly[j * n..(j + 1) * n].iter_mut().zip(&limb) {
            *p = m.add(*p, y);
        }
    }
    zeroize::Zeroize::zeroize(&mut f);
    zeroize::Zeroize::zeroize(&mut limb);
    std
}

/// `n` rounded Gaussian samples of standard deviation `std` (Box-Muller on
/// 53-bit uniforms; no tail cut: flooding wants the full distribution).
fn gaussian<R: RngCore + CryptoRng + ?Sized>(n: usize, std: f64, rng: &mut R) -> Vec<f64> {
    let unit = |rng: &mut R| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let (u1, u2) = (unit(rng), unit(rng));
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let t = 2.0 * std::f64::consts::PI * u2;
        out.push((r * t.cos()).round());
        out.push((r * t.sin()).round());
    }
    out.truncate(n);
    out
}

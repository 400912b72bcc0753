//! Keys: the ternary secret key, the public key, and key-switching keys
//! (relinearisation, Galois rotations, conjugation).
//!
//! Every uniform `a` part is expanded from a 32-byte seed with ChaCha20, so
//! the serialised (compressed) form of a public or switching key stores the
//! seed instead of `a`: half the size.
//!
//! A switching key from `s'` to `s` has one component per digit `d` of the
//! hybrid decomposition (digits of K consecutive ciphertext primes, K the
//! number of special primes), over the full basis `q_0..q_L, p_0..p_{K-1}`:
//! `b_d = -a_d s + e_d + P * g_d * s'`, with `g_d = 1 mod` the digit's primes
//! and `0 mod` the others.
//!
//! Switching keys are stored in the form the key switch consumes: on every
//! ciphertext prime `q_j` the key holds `(b_d, a_d) * P^-1 * R_j mod q_j`,
//! on every special prime `(b_d, a_d) * R_j` (the seed expands to the stored
//! `a_d` directly, which is as uniform as `a_d`). `R_j = 2^64` (the
//! Montgomery radix) for primes of 50 bits or more: there the inner product
//! sums `digit * key` in 128 bits and one Montgomery reduction per
//! coefficient removes `R_j` (`kernels::MontInnerProduct`); smaller primes
//! have `R_j = 1` and use the NTT crate's IFMA multiply-accumulate. The
//! factor `P^-1` makes the inner product come out already divided by P on
//! the `q_j`, so the mod-down is a subtraction instead of a subtraction and
//! a multiplication per coefficient.

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use zeroize::Zeroize;

use super::modulus::Shoup;
use super::rns::{Ring, sample_error, sample_uniform};
use crate::he::{EvaluationKeys, KeyId, Rotation};

/// The secret key: a ternary polynomial (and its NTT form over every prime).
/// Zeroised on drop; `Debug` prints `SecretKey(..)`.
pub struct CkksSecretKey {
    pub(crate) coeffs: Vec<i64>,
    /// NTT form over `q_0 .. q_L, p_0 .. p_{K-1}`.
    pub(crate) ntt: Vec<u64>,
    pub(crate) fp: u64,
    /// SHA-256 fingerprint of `coeffs` and the parameters ([`secret_key_id`]).
    pub(crate) key: KeyId,
}

/// The [`KeyId`] of a CKKS secret key: the domain tag `ckks`, the
/// parameter fingerprint and the ternary coefficients (one byte each).
pub(crate) fn secret_key_id(fp: u64, coeffs: &[i64]) -> KeyId {
    KeyId::derive("ckks", &fp.to_le_bytes(), coeffs.iter().map(|&c| c as u8))
}

impl Drop for CkksSecretKey {
    fn drop(&mut self) {
        self.coeffs.zeroize();
        self.ntt.zeroize();
    }
}

impl std::fmt::Debug for CkksSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// The public key `(b, a) = (-a s + e, a)` over every prime (the special
/// primes too, so encryption can divide its noise by P).
#[derive(Clone)]
pub struct CkksPublicKey {
    pub(crate) seed: [u8; 32],
    pub(crate) b: Vec<u64>,
    pub(crate) a: Vec<u64>,
    pub(crate) fp: u64,
    pub(crate) key: KeyId,
}

impl std::fmt::Debug for CkksPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CkksPublicKey")
            .field("fingerprint", &self.fp)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A key-switching key: per digit, `(b_d, a_d)` over every prime.
#[derive(Clone)]
pub(crate) struct SwitchingKey {
    pub(crate) seed: [u8; 32],
    pub(crate) b: Vec<Vec<u64>>,
    pub(crate) a: Vec<Vec<u64>>,
}

/// A Galois key with its NTT-domain permutation.
#[derive(Clone)]
pub(crate) struct GaloisKey {
    pub(crate) key: SwitchingKey,
    pub(crate) perm: Vec<u32>,
}

/// Evaluation keys: relinearisation, rotations (by normalised left step),
/// conjugation.
#[derive(Clone)]
pub struct CkksEvalKeys {
    pub(crate) fp: u64,
    pub(crate) key: KeyId,
    pub(crate) slots: usize,
    pub(crate) relin: Option<SwitchingKey>,
    pub(crate) conj: Option<GaloisKey>,
    pub(crate) rotations: BTreeMap<usize, GaloisKey>,
}

impl std::fmt::Debug for CkksEvalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CkksEvalKeys")
            .field("key", &self.key)
            .field("relinearization", &self.relin.is_some())
            .field("conjugation", &self.conj.is_some())
            .field("rotations", &self.rotations.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl EvaluationKeys for CkksEvalKeys {
    fn supports_relinearization(&self) -> bool {
        self.relin.is_some()
    }
    fn supports_rotation(&self, step: Rotation) -> bool {
        let s = step.normalized(self.slots);
        s == 0 || self.rotations.contains_key(&s)
    }
    fn supports_conjugation(&self) -> bool {
        self.conj.is_some()
    }
    fn key_id(&self) -> KeyId {
        self.key
    }
}

/// Number of digits of the hybrid decomposition.
pub(crate) fn digit_count(ring: &Ring) -> usize {
    ring.num_q.div_ceil(ring.num_p)
}

/// The prime indices of digit `d` (before truncation to a level).
pub(crate) fn digit_primes(ring: &Ring, d: usize) -> std::ops::Range<usize> {
    let alpha = ring.num_p;
    d * alpha..((d + 1) * alpha).min(ring.num_q)
}

/// A fresh random seed.
pub(crate) fn fresh_seed<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> [u8; 32] {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    seed
}

/// The `a` parts of a switching key (one per digit) expanded from its seed.
pub(crate) fn expand_switching_a(ring: &Ring, seed: [u8; 32]) -> Vec<Vec<u64>> {
    let basis: Vec<usize> = (0..ring.num_q + ring.num_p).collect();
    let mut prg = ChaCha20Rng::from_seed(seed);
    (0..digit_count(ring))
        .map(|_| sample_uniform(ring, &basis, &mut prg))
        .collect()
}

/// The `a` part of a public key expanded from its seed.
pub(crate) fn expand_public_a(ring: &Ring, seed: [u8; 32]) -> Vec<u64> {
    let basis: Vec<usize> = (0..ring.num_q + ring.num_p).collect();
    let mut prg = ChaCha20Rng::from_seed(seed);
    prg.set_stream(1);
    sample_uniform(ring, &basis, &mut prg)
}

/// `-a * s + e` over every prime; with `e_scale`, the error on each prime
/// `j` is multiplied by `e_scale[j]` (the stored form of switching keys).
fn rlwe_b<R: RngCore + CryptoRng + ?Sized>(
    ring: &Ring,
    a: &[u64],
    s: &[u64],
    e_scale: Option<&[Shoup]>,
    rng: &mut R,
) -> Vec<u64> {
    let basis: Vec<usize> = (0..ring.num_q + ring.num_p).collect();
    let mut e = sample_error(ring.n, rng);
    let mut b = ring.small_to_ntt(&e, &basis);
    e.zeroize();
    let n = ring.n;
    if let Some(scale) = e_scale {
        for (j, (limb, w)) in b.chunks_mut(n).zip(scale).enumerate() {
            let m = &ring.moduli[j];
            limb.iter_mut().for_each(|x| *x = m.mul_shoup(*x, *w));
        }
    }
    let mut prod = vec![0u64; n];
    for (((bl, al), sl), &p) in b
        .chunks_mut(n)
        .zip(a.chunks(n))
        .zip(s.chunks(n))
        .zip(&basis)
    {
        prod.iter_mut().for_each(|x| *x = 0);
        ring.mul_acc(p, &mut prod, al, sl);
        let m = &ring.moduli[p];
        for (x, &y) in bl.iter_mut().zip(&prod) {
            *x = m.sub(*x, y);
        }
    }
    prod.zeroize();
    b
}

/// A public key for `s` (NTT form over every prime).
pub(crate) fn public_key<R: RngCore + CryptoRng + ?Sized>(
    ring: &Ring,
    s: &[u64],
    fp: u64,
    key: KeyId,
    rng: &mut R,
) -> CkksPublicKey {
    let seed = fresh_seed(rng);
    let a = expand_public_a(ring, seed);
    let b = rlwe_b(ring, &a, s, None, rng);
    CkksPublicKey {
        seed,
        b,
        a,
        fp,
        key,
    }
}

/// Whether keys modulo `q` carry the Montgomery radix (module docs).
pub(crate) fn montgomery_form(q: u64) -> bool {
    q >= 1 << 50
}

/// The factors of the stored form (module docs): per prime of the full
/// basis, `P^-1 R_j mod q_j` (ciphertext primes, `p_inv[j] = P^-1 mod q_j`)
/// or `R_j mod p` (special primes), and `R_j mod q_j` for the ciphertext
/// primes.
fn stored_form_factors(ring: &Ring, p_inv: &[Shoup]) -> (Vec<Shoup>, Vec<Shoup>) {
    let mut scale = Vec::with_capacity(ring.num_q + ring.num_p);
    let mut r_q = Vec::with_capacity(ring.num_q);
    for (j, m) in ring.moduli.iter().enumerate() {
        let r = if montgomery_form(m.value()) {
            m.reduce_u128(1u128 << 64)
        } else {
            1
        };
        match p_inv.get(j) {
            Some(w) => {
                scale.push(m.shoup(m.mul(w.w, r)));
                r_q.push(m.shoup(r));
            }
            None => scale.push(m.shoup(r)),
        }
    }
    (scale, r_q)
}

/// A switching key from `s_from` to `s` (both NTT form over every prime), in
/// the stored form of the module docs: on `q_j`, `b_d = -a_d s + e_d P^-1
/// R_j + g_d s' R_j`; on the special primes `b_d = -a_d s + e_d R_j`
/// (`p_inv[j] = P^-1 mod q_j` for the ciphertext primes).
pub(crate) fn switching_key<R: RngCore + CryptoRng + ?Sized>(
    ring: &Ring,
    s_from: &[u64],
    s: &[u64],
    p_inv: &[Shoup],
    rng: &mut R,
) -> SwitchingKey {
    let n = ring.n;
    let seed = fresh_seed(rng);
    let a = expand_switching_a(ring, seed);
    let (scale, r_q) = stored_form_factors(ring, p_inv);
    let b = a
        .iter()
        .enumerate()
        .map(|(d, ad)| {
            let mut bd = rlwe_b(ring, ad, s, Some(&scale), rng);
            // P g_d s' in stored form: s' R_j on the digit's primes.
            for j in digit_primes(ring, d) {
                let m = &ring.moduli[j];
                for (x, &y) in bd[j * n..(j + 1) * n]
                    .iter_mut()
                    .zip(&s_from[j * n..(j + 1) * n])
                {
                    *x = m.add(*x, m.mul_shoup(y, r_q[j]));
                }
            }
            bd
        })
        .collect();
    SwitchingKey { seed, b, a }
}

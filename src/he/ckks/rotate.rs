//! Slot rotations: Galois elements, rotation keys, and hoisted rotations
//! (one decomposition of `c_1` shared by every step).

use rand_core::{CryptoRng, RngCore};

use super::keys::{self, CkksEvalKeys, CkksSecretKey, GaloisKey};
use super::ntt::permute;
use super::poly::for_limbs;
use super::rns::{recycle, take_scratch};
use super::{Ckks, CkksCiphertext};
use crate::he::error::{Error, Result};
use crate::he::{EvaluationKeys, HeScheme, OpKind, Rotation};

/// Galois element of the left rotation by `k` slots: `5^k mod 2N`.
pub(crate) fn rotation_element(n: usize, k: usize) -> u64 {
    let two_n = 2 * n as u64;
    let mut g = 1u64;
    for _ in 0..k {
        g = (g * 5) % two_n;
    }
    g
}

impl Ckks {
    /// Hoisted rotations: one decomposition of `c1`, then per step an inner
    /// product and a mod-down with that step's key (which switches from `s`
    /// to `sigma^-1(s)`), giving `(e0, e1)` with `e0 + e1 sigma^-1(s) ~ c1 s`;
    /// applying `sigma` (an NTT-domain permutation) to `c0 + e0` and `e1`
    /// gives the rotation `(sigma(c0) + sigma(e0), sigma(e1))` under `s`.
    pub(super) fn rotate_hoisted(
        &self,
        a: &CkksCiphertext,
        keys: &[Option<&GaloisKey>],
    ) -> Vec<CkksCiphertext> {
        let l = a.level.0 as usize;
        let n = self.n();
        let dec = if keys.iter().any(Option::is_some) {
            Some(self.decompose(&a.polys[1], l))
        } else {
            None
        };
        keys.iter()
            .map(|key| match (key, &dec) {
                (Some(gk), Some(dec)) => {
                    let [e0, e1] = self.switch(dec, &gk.key, [Some(&a.polys[0]), None]);
                    // permute writes every word
                    let mut d0 = take_scratch(e0.len());
                    let mut d1 = take_scratch(e1.len());
                    for_limbs(&mut d0, n, |j, limb| {
                        permute(limb, &e0[j * n..(j + 1) * n], &gk.perm);
                    });
                    for_limbs(&mut d1, n, |j, limb| {
                        permute(limb, &e1[j * n..(j + 1) * n], &gk.perm);
                    });
                    recycle(e0);
                    recycle(e1);
                    CkksCiphertext {
                        polys: vec![d0, d1],
                        level: a.level,
                        scale: a.scale,
                        fp: self.fp,
                        key: a.key,
                        noise: a.noise.key_switch(self.ks_var),
                    }
                }
                _ => a.clone(),
            })
            .collect()
    }

    pub(super) fn rotation_checks<'k>(
        &self,
        a: &CkksCiphertext,
        step: Rotation,
        keys: &'k CkksEvalKeys,
    ) -> Result<Option<&'k GaloisKey>> {
        self.check_fp(a.fp, OpKind::Rotation)?;
        self.check_fp(keys.fp, OpKind::Rotation)?;
        self.check_key(OpKind::Rotation, keys.key, a.key)?;
        if a.size() != 2 {
            return Err(Error::CiphertextSize {
                op: OpKind::Rotation,
                size: a.size(),
                expected: 2,
            });
        }
        if !keys.supports_rotation(step) {
            return Err(Error::MissingRotationKey { step });
        }
        let k = step.normalized(self.slot_count());
        Ok(keys.rotations.get(&k))
    }

    pub(super) fn galois_key<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        g: u64,
        rng: &mut R,
    ) -> GaloisKey {
        let ring = &*self.ring;
        let n = ring.n;
        // The key switches from s to sigma^-1(s): the rotation key-switches
        // c_1 itself and applies sigma once to the results (see rotate_hoisted).
        let two_n = 2 * n as u64;
        let mut g_inv = 1u64;
        for _ in 0..n - 1 {
            g_inv = (g_inv * g) % two_n;
        }
        let perm_inv = ring.galois.permutation(g_inv);
        let mut s_inv = vec![0u64; sk.ntt.len()];
        for (o, i) in s_inv.chunks_mut(n).zip(sk.ntt.chunks(n)) {
            permute(o, i, &perm_inv);
        }
        let key = keys::switching_key(ring, &sk.ntt, &s_inv, &self.p_inv, rng);
        zeroize::Zeroize::zeroize(&mut s_inv);
        GaloisKey {
            key,
            perm: ring.galois.permutation(g),
        }
    }
}

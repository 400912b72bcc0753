//! Seeded (compressed) secret-key ciphertexts: the uniform part `a` of a
//! fresh symmetric encryption is expanded from a 32-byte seed, so a client
//! uploads `c_0` and the seed — half the bytes — and the server expands it.
//! Same construction as the compressed keys (`keys::expand_public_a`), on
//! its own ChaCha20 stream.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use zeroize::Zeroize;

use super::noise::Noise;
use super::rns::{Ring, recycle, sample_error, sample_uniform, take_zeroed};
use super::{Ckks, CkksCiphertext, CkksPlaintext, CkksSecretKey, CkksSeededCiphertext};
use crate::he::OpKind;
use crate::he::error::Result;

/// ChaCha20 stream of ciphertext `a` parts (keys use streams 0 and 1).
const CIPHERTEXT_STREAM: u64 = 2;

/// The uniform `a` of a seeded ciphertext at `level` (NTT form, `level + 1` limbs).
pub(crate) fn expand_ciphertext_a(ring: &Ring, seed: [u8; 32], level: usize) -> Vec<u64> {
    let basis: Vec<usize> = (0..=level).collect();
    let mut prg = ChaCha20Rng::from_seed(seed);
    prg.set_stream(CIPHERTEXT_STREAM);
    sample_uniform(ring, &basis, &mut prg)
}

impl Ckks {
    /// Secret-key encryption in compressed form: `c_0 = -a s + e + m` with
    /// `a` expanded from a fresh seed drawn from `rng`.
    pub fn encrypt_secret_seeded<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        pt: &CkksPlaintext,
        rng: &mut R,
    ) -> Result<CkksSeededCiphertext> {
        self.check_fp(sk.fp, OpKind::Encrypt)?;
        self.check_fp(pt.fp, OpKind::Encrypt)?;
        let ring = &*self.ring;
        let n = ring.n;
        let l = pt.level.0 as usize;
        let basis: Vec<usize> = (0..=l).collect();
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut e = sample_error(n, rng);
        let a = expand_ciphertext_a(ring, seed, l);
        let mut c0 = ring.small_to_ntt(&e, &basis);
        // The error decides the noise (with it, c_0 gives the message):
        // zeroised before it is freed, as is each limb of a * s below.
        e.zeroize();
        for (j, ((c, al), pl)) in c0
            .chunks_mut(n)
            .zip(a.chunks(n))
            .zip(pt.poly.chunks(n))
            .enumerate()
        {
            let mut a_s = take_zeroed(n);
            ring.mul_acc(j, &mut a_s, al, &sk.ntt[j * n..(j + 1) * n]);
            let m = &ring.moduli[j];
            for ((x, &y), &p) in c.iter_mut().zip(&a_s).zip(pl) {
                *x = m.add(m.sub(*x, y), p);
            }
            a_s.as_mut_slice().zeroize();
            recycle(a_s);
        }
        Ok(CkksSeededCiphertext {
            c0,
            seed,
            level: pt.level,
            scale: pt.scale,
            fp: self.fp,
            key: sk.key,
            noise: Noise::fresh_secret(pt.norm_sq),
        })
    }

    /// The ciphertext a seeded one stands for (`a` re-expanded from its seed).
    pub fn expand(&self, ct: &CkksSeededCiphertext) -> Result<CkksCiphertext> {
        self.check_fp(ct.fp, OpKind::Encrypt)?;
        let a = expand_ciphertext_a(&self.ring, ct.seed, ct.level.0 as usize);
        Ok(CkksCiphertext {
            polys: vec![ct.c0.clone(), a],
            level: ct.level,
            scale: ct.scale,
            fp: self.fp,
            key: ct.key,
            noise: ct.noise,
        })
    }
}

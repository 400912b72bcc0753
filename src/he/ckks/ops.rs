//! [`HeScheme`] for [`Ckks`]: keys, encoding, encryption and the
//! homomorphic operations, with the simulator's error behaviour.

use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;

use super::keys::{self, CkksEvalKeys, CkksPublicKey, CkksSecretKey};
use super::modulus::Shoup;
use super::noise::{self, Noise};
use super::poly::{add_assign_poly, for_limbs, mul_assign_poly, mul_poly, sub_assign_poly};
use super::rns::{join, parallel, recycle, sample_error, sample_ternary, take_zeroed};
use super::rotate::rotation_element;
use super::{Ckks, CkksCiphertext, CkksParams, CkksPlaintext};
use crate::he::OpKind;
use crate::he::error::{Error, Result};
use crate::he::{HeScheme, KeyId, KeyRequirements, Level, Rotation, Scale, check_terms};

/// The integer `round(c * scale)` as an exact integral `f64`.
pub(super) fn scaled_integer(op: OpKind, c: f64, scale: Scale) -> Result<f64> {
    let k = (c * scale.value()).round();
    if !c.is_finite() || !k.is_finite() {
        return Err(Error::ValueOutOfRange { op, value: c });
    }
    Ok(k)
}

impl Ckks {
    pub(super) fn check_same(
        &self,
        op: OpKind,
        a: &CkksCiphertext,
        level: Level,
        scale: Scale,
        fp: u64,
    ) -> Result<()> {
        self.check_fp(a.fp, op)?;
        self.check_fp(fp, op)?;
        crate::he::checks::same_level_scale(op, (a.level, a.scale), (level, scale))
    }
}

impl HeScheme for Ckks {
    type Params = CkksParams;
    type Plaintext = CkksPlaintext;
    type Ciphertext = CkksCiphertext;
    type SecretKey = CkksSecretKey;
    type PublicKey = CkksPublicKey;
    type EvalKeys = CkksEvalKeys;
    type Value = f64;

    const NAME: &'static str = "ckks";

    fn params(&self) -> &CkksParams {
        &self.params
    }
    fn slot_count(&self) -> usize {
        self.params.slots()
    }
    fn max_level(&self) -> Level {
        self.params.max_level()
    }
    fn default_scale(&self) -> Scale {
        self.params.default_scale()
    }
    fn rescale_divisor(&self, level: Level) -> Result<f64> {
        if level.0 == 0 || level > self.max_level() {
            return Err(Error::LevelExhausted {
                op: OpKind::Rescale,
                level,
                needed: Level(1),
            });
        }
        Ok(self.params.moduli()[level.0 as usize] as f64)
    }
    fn level(&self, ct: &CkksCiphertext) -> Level {
        ct.level
    }
    fn scale(&self, ct: &CkksCiphertext) -> Scale {
        ct.scale
    }
    fn plaintext_level(&self, pt: &CkksPlaintext) -> Level {
        pt.level
    }
    fn plaintext_scale(&self, pt: &CkksPlaintext) -> Scale {
        pt.scale
    }

    fn generate_secret_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<CkksSecretKey> {
        let ring = &*self.ring;
        let coeffs = sample_ternary(ring.n, rng);
        let basis: Vec<usize> = (0..ring.num_q + ring.num_p).collect();
        let ntt = ring.small_to_ntt(&coeffs, &basis);
        let key = keys::secret_key_id(self.fp, &coeffs);
        Ok(CkksSecretKey {
            coeffs,
            ntt,
            fp: self.fp,
            key,
        })
    }

    fn generate_public_key<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        rng: &mut R,
    ) -> Result<CkksPublicKey> {
        self.check_fp(sk.fp, OpKind::KeyGen)?;
        Ok(keys::public_key(&self.ring, &sk.ntt, self.fp, sk.key, rng))
    }

    fn generate_eval_keys<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        req: &KeyRequirements,
        rng: &mut R,
    ) -> Result<CkksEvalKeys> {
        self.check_fp(sk.fp, OpKind::KeyGen)?;
        let ring = &*self.ring;
        let n = ring.n;
        let relin = if req.relinearization() {
            let mut s2 = vec![0u64; sk.ntt.len()];
            for (p, (o, s)) in s2.chunks_mut(n).zip(sk.ntt.chunks(n)).enumerate() {
                ring.mul_acc(p, o, s, s);
            }
            let key = keys::switching_key(ring, &s2, &sk.ntt, &self.p_inv, rng);
            zeroize::Zeroize::zeroize(&mut s2);
            Some(key)
        } else {
            None
        };
        let conj = if req.conjugation() {
            Some(self.galois_key(sk, 2 * n as u64 - 1, rng))
        } else {
            None
        };
        let mut rotations = std::collections::BTreeMap::new();
        for k in req.normalized_rotations(self.slot_count()) {
            let g = rotation_element(n, k);
            rotations.insert(k, self.galois_key(sk, g, rng));
        }
        Ok(CkksEvalKeys {
            fp: self.fp,
            key: sk.key,
            slots: self.slot_count(),
            relin,
            conj,
            rotations,
        })
    }

    fn encode(&self, values: &[f64], level: Level, scale: Scale) -> Result<CkksPlaintext> {
        let slots = self.slot_count();
        crate::he::checks::encode_args(values.len(), slots, level, self.max_level())?;
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::ValueOutOfRange {
                op: OpKind::Encode,
                value: *bad,
            });
        }
        let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let log_q = self.params.log_modulus_at(level);
        if scale.log2() + max.max(1.0).log2() + 1.0 >= log_q {
            return Err(Error::ScaleOverflow {
                op: OpKind::Encode,
                scale_log2: scale.log2(),
                modulus_log2: log_q,
                level,
            });
        }
        let coeffs = self.encoder.encode(values, scale.value());
        let norm_sq = coeffs.iter().map(|c| c * c).sum();
        let n = self.n();
        let l = level.0 as usize;
        let mut poly = vec![0u64; (l + 1) * n];
        let ring = &*self.ring;
        let small = coeffs.iter().all(|c| c.abs() < 9.2e18);
        let ints: Vec<i64> = if small {
            coeffs.iter().map(|&c| c as i64).collect()
        } else {
            Vec::new()
        };
        for_limbs(&mut poly, n, |j, limb| {
            let m = &ring.moduli[j];
            if small {
                for (o, &c) in limb.iter_mut().zip(&ints) {
                    *o = m.reduce_i64(c);
                }
            } else {
                for (o, &c) in limb.iter_mut().zip(&coeffs) {
                    *o = m.reduce_f64_integer(c);
                }
            }
            ring.forward(j, limb);
        });
        Ok(CkksPlaintext {
            poly,
            level,
            scale,
            fp: self.fp,
            norm_sq,
        })
    }

    fn decode(&self, pt: &CkksPlaintext) -> Result<Vec<f64>> {
        self.check_fp(pt.fp, OpKind::Encode)?;
        let l = pt.level.0 as usize;
        let mut coeffs = pt.poly.clone();
        let basis: Vec<usize> = (0..=l).collect();
        self.ring.inverse_all(&mut coeffs, &basis);
        let m = self.centred_coeffs(&coeffs, l);
        Ok(self.encoder.decode(&m, pt.scale.value()))
    }

    fn encrypt<R: RngCore + CryptoRng>(
        &self,
        pk: &CkksPublicKey,
        pt: &CkksPlaintext,
        rng: &mut R,
    ) -> Result<CkksCiphertext> {
        self.check_fp(pk.fp, OpKind::Encrypt)?;
        self.check_fp(pt.fp, OpKind::Encrypt)?;
        let ring = &*self.ring;
        let n = ring.n;
        let l = pt.level.0 as usize;
        let basis = ring.extended_basis(l);
        // The randomness (u, e0, e1) decides the noise: whoever holds it and
        // the ciphertext learns the message, so every copy is zeroised
        // before it is freed.
        let mut u_small = sample_ternary(n, rng);
        let mut e0 = sample_error(n, rng);
        let mut e1 = sample_error(n, rng);
        let mut u = ring.small_to_ntt(&u_small, &basis);
        zeroize::Zeroize::zeroize(&mut u_small);
        // Encrypt modulo Q_l * P, then divide by P: the noise u*e + e0 + e1*s
        // shrinks by P, leaving only the rounding error.
        let mut c0 = ring.small_to_ntt(&e0, &basis);
        let mut c1 = ring.small_to_ntt(&e1, &basis);
        zeroize::Zeroize::zeroize(&mut e0);
        zeroize::Zeroize::zeroize(&mut e1);
        for (e, (x0, x1)) in c0.chunks_mut(n).zip(c1.chunks_mut(n)).enumerate() {
            let p = basis[e];
            let ul = &u[e * n..(e + 1) * n];
            ring.mul_acc(p, x0, ul, &pk.b[p * n..(p + 1) * n]);
            ring.mul_acc(p, x1, ul, &pk.a[p * n..(p + 1) * n]);
        }
        zeroize::Zeroize::zeroize(&mut u);
        let words = c0.len();
        let (mut c0, c1) = join(words, || self.mod_down(c0, l), || self.mod_down(c1, l));
        add_assign_poly(ring, &mut c0, &pt.poly);
        Ok(CkksCiphertext {
            polys: vec![c0, c1],
            level: pt.level,
            scale: pt.scale,
            fp: self.fp,
            key: pk.key,
            noise: Noise::fresh_public(ring, pt.norm_sq),
        })
    }

    /// `c1 = a` uniform (expanded from a fresh seed, directly in NTT form),
    /// `c0 = -a s + e + m`: one NTT per limb (for `e`) instead of
    /// public-key encryption's four. See [`Ckks::encrypt_secret_seeded`].
    fn encrypt_secret<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        pt: &CkksPlaintext,
        rng: &mut R,
    ) -> Result<CkksCiphertext> {
        let seeded = self.encrypt_secret_seeded(sk, pt, rng)?;
        self.expand(&seeded)
    }

    fn decrypt(&self, sk: &CkksSecretKey, ct: &CkksCiphertext) -> Result<CkksPlaintext> {
        self.check_fp(sk.fp, OpKind::Decrypt)?;
        self.check_fp(ct.fp, OpKind::Decrypt)?;
        self.check_key(OpKind::Decrypt, sk.key, ct.key)?;
        let ring = &*self.ring;
        let n = ring.n;
        let l = ct.level.0 as usize;
        let mut m = ct.polys[0].clone();
        let s = &sk.ntt[..(l + 1) * n];
        // Horner: c0 + s (c1 + s (c2 + ...)).
        let mut acc: Option<Vec<u64>> = None;
        for c in ct.polys[1..].iter().rev() {
            let mut t = c.clone();
            if let Some(prev) = acc.take() {
                let prod = mul_poly(ring, &prev, s);
                add_assign_poly(ring, &mut t, &prod);
            }
            acc = Some(t);
        }
        if let Some(top) = acc {
            let prod = mul_poly(ring, &top, s);
            add_assign_poly(ring, &mut m, &prod);
        }
        Ok(CkksPlaintext {
            poly: m,
            level: ct.level,
            scale: ct.scale,
            fp: self.fp,
            norm_sq: ct.noise.msg + n as f64 * ct.noise.var,
        })
    }

    /// Exact decryption, then a rounded Gaussian of standard deviation
    /// `2^flooding_bits` times the ciphertext's estimated error
    /// ([`CkksCiphertext::noise_log2`]) added to every coefficient.
    fn decrypt_flooded<R: RngCore + CryptoRng>(
        &self,
        sk: &CkksSecretKey,
        ct: &CkksCiphertext,
        flooding_bits: u32,
        rng: &mut R,
    ) -> Result<CkksPlaintext> {
        let mut pt = self.decrypt(sk, ct)?;
        let std = noise::flood(
            &self.ring,
            &mut pt.poly,
            ct.level.0 as usize,
            ct.noise.var,
            flooding_bits,
            rng,
        );

        pt.norm_sq += self.n() as f64 * std * std;
        Ok(pt)
    }

    fn secret_key_id(&self, sk: &CkksSecretKey) -> KeyId {
        sk.key
    }

    fn public_key_id(&self, pk: &CkksPublicKey) -> KeyId {
        pk.key
    }

    fn ciphertext_key_id(&self, ct: &CkksCiphertext) -> KeyId {
        ct.key
    }

    fn check_eval_keys(&self, keys: &CkksEvalKeys) -> Result<()> {
        self.check_fp(keys.fp, OpKind::KeyGen)
    }

    fn add_assign(&self, a: &mut CkksCiphertext, b: &CkksCiphertext) -> Result<()> {
        self.check_same(OpKind::CtCtAdd, a, b.level, b.scale, b.fp)?;
        self.check_key(OpKind::CtCtAdd, a.key, b.key)?;
        a.noise = a.noise.add(b.noise);
        for (x, y) in a.polys.iter_mut().zip(&b.polys) {
            add_assign_poly(&self.ring, x, y);
        }
        if b.size() > a.size() {
            a.polys.extend(b.polys[a.size()..].iter().cloned());
        }
        Ok(())
    }

    fn sub_assign(&self, a: &mut CkksCiphertext, b: &CkksCiphertext) -> Result<()> {
        self.check_same(OpKind::CtCtAdd, a, b.level, b.scale, b.fp)?;
        self.check_key(OpKind::CtCtAdd, a.key, b.key)?;
        a.noise = a.noise.add(b.noise);
        for (x, y) in a.polys.iter_mut().zip(&b.polys) {
            sub_assign_poly(&self.ring, x, y);
        }
        for y in b.polys.iter().skip(a.size()) {
            let mut z = vec![0u64; y.len()];
            sub_assign_poly(&self.ring, &mut z, y);
            a.polys.push(z);
        }
        Ok(())
    }

    fn negate_assign(&self, a: &mut CkksCiphertext) -> Result<()> {
        self.check_fp(a.fp, OpKind::CtCtAdd)?;
        let ring = &*self.ring;
        for p in &mut a.polys {
            for_limbs(p, ring.n, |j, limb| {
                let m = &ring.moduli[j];
                limb.iter_mut().for_each(|x| *x = m.neg(*x));
            });
        }
        Ok(())
    }

    fn add_plain_assign(&self, a: &mut CkksCiphertext, p: &CkksPlaintext) -> Result<()> {
        self.check_same(OpKind::CtPtAdd, a, p.level, p.scale, p.fp)?;
        add_assign_poly(&self.ring, &mut a.polys[0], &p.poly);
        a.noise = a.noise.add_plain(p.norm_sq);
        Ok(())
    }

    fn mul_plain_assign(&self, a: &mut CkksCiphertext, p: &CkksPlaintext) -> Result<()> {
        self.check_fp(a.fp, OpKind::CtPtMul)?;
        self.check_fp(p.fp, OpKind::CtPtMul)?;
        crate::he::checks::same_level(OpKind::CtPtMul, a.level, p.level)?;
        let scale = a.scale * p.scale;
        self.check_scale_room(OpKind::CtPtMul, a.level, scale)?;
        for x in &mut a.polys {
            mul_assign_poly(&self.ring, x, &p.poly);
        }
        a.scale = scale;
        a.noise = a.noise.mul_plain(p.norm_sq);
        Ok(())
    }

    fn mul_scalar_assign(&self, a: &mut CkksCiphertext, c: f64, scale: Scale) -> Result<()> {
        self.check_fp(a.fp, OpKind::CtScalarMul)?;
        let k = scaled_integer(OpKind::CtScalarMul, c, scale)?;
        let new_scale = a.scale * scale;
        self.check_scale_room(OpKind::CtScalarMul, a.level, new_scale)?;
        let ring = &*self.ring;
        let ws: Vec<Shoup> = (0..=a.level.0 as usize)
            .map(|j| {
                let m = &ring.moduli[j];
                m.shoup(m.reduce_f64_integer(k))
            })
            .collect();
        for x in &mut a.polys {
            for_limbs(x, ring.n, |j, limb| {
                let m = &ring.moduli[j];
                let w = ws[j];
                limb.iter_mut().for_each(|v| *v = m.mul_shoup(*v, w));
            });
        }
        a.scale = new_scale;
        a.noise = a.noise.mul_plain(k * k);
        Ok(())
    }

    fn add_scalar_assign(&self, a: &mut CkksCiphertext, c: f64) -> Result<()> {
        self.check_fp(a.fp, OpKind::CtPtAdd)?;
        let k = scaled_integer(OpKind::CtPtAdd, c, a.scale)?;
        let log_q = self.params.log_modulus_at(a.level);
        if a.scale.log2() + c.abs().max(1.0).log2() + 1.0 >= log_q {
            return Err(Error::ScaleOverflow {
                op: OpKind::CtPtAdd,
                scale_log2: a.scale.log2(),
                modulus_log2: log_q,
                level: a.level,
            });
        }
        let ring = &*self.ring;
        // The constant polynomial k evaluates to k at every NTT point.
        for_limbs(&mut a.polys[0], ring.n, |j, limb| {
            let m = &ring.moduli[j];
            let w = m.reduce_f64_integer(k);
            limb.iter_mut().for_each(|v| *v = m.add(*v, w));
        });
        a.noise = a.noise.add_plain(k * k);
        Ok(())
    }

    fn mul(&self, a: &CkksCiphertext, b: &CkksCiphertext) -> Result<CkksCiphertext> {
        self.check_fp(a.fp, OpKind::CtCtMul)?;
        self.check_fp(b.fp, OpKind::CtCtMul)?;
        self.check_key(OpKind::CtCtMul, a.key, b.key)?;
        for ct in [a, b] {
            if ct.size() != 2 {
                return Err(Error::CiphertextSize {
                    op: OpKind::CtCtMul,
                    size: ct.size(),
                    expected: 2,
                });
            }
        }
        crate::he::checks::same_level(OpKind::CtCtMul, a.level, b.level)?;
        let scale = a.scale * b.scale;
        self.check_scale_room(OpKind::CtCtMul, a.level, scale)?;
        let ring = &*self.ring;
        let n = ring.n;
        let (a0, a1, b0, b1) = (&a.polys[0], &a.polys[1], &b.polys[0], &b.polys[1]);
        let len = a0.len();
        let mut d0 = take_zeroed(len);
        let mut d1 = take_zeroed(len);
        let mut d2 = take_zeroed(len);
        type Limbs<'a> = (usize, ((&'a mut [u64], &'a mut [u64]), &'a mut [u64]));
        let work = |(j, ((o0, o1), o2)): Limbs<'_>| {
            let r = j * n..(j + 1) * n;
            ring.mul_acc(j, o0, &a0[r.clone()], &b0[r.clone()]);
            ring.mul_acc(j, o1, &a0[r.clone()], &b1[r.clone()]);
            ring.mul_acc(j, o1, &a1[r.clone()], &b0[r.clone()]);
            ring.mul_acc(j, o2, &a1[r.clone()], &b1[r]);
        };
        if parallel(len) {
            d0.par_chunks_mut(n)
                .zip(d1.par_chunks_mut(n))
                .zip(d2.par_chunks_mut(n))
                .enumerate()
                .for_each(work);
        } else {
            d0.chunks_mut(n)
                .zip(d1.chunks_mut(n))
                .zip(d2.chunks_mut(n))
                .enumerate()
                .for_each(work);
        }
        Ok(CkksCiphertext {
            polys: vec![d0, d1, d2],
            level: a.level,
            scale,
            fp: self.fp,
            key: a.key,
            noise: a.noise.mul(b.noise, n),
        })
    }

    fn relinearize_assign(&self, a: &mut CkksCiphertext, keys: &CkksEvalKeys) -> Result<()> {
        self.check_fp(a.fp, OpKind::Relinearize)?;
        self.check_fp(keys.fp, OpKind::Relinearize)?;
        self.check_key(OpKind::Relinearize, keys.key, a.key)?;
        let key = keys
            .relin
            .as_ref()
            .ok_or(Error::MissingRelinearizationKey)?;
        if a.size() != 3 {
            return Err(Error::CiphertextSize {
                op: OpKind::Relinearize,
                size: a.size(),
                expected: 3,
            });
        }
        let l = a.level.0 as usize;
        let c2 = a.polys.pop().unwrap_or_default();
        let dec = self.decompose(&c2, l);
        recycle(c2);
        let [d0, d1] = self.switch(&dec, key, [Some(&a.polys[0]), Some(&a.polys[1])]);
        recycle(std::mem::replace(&mut a.polys[0], d0));
        recycle(std::mem::replace(&mut a.polys[1], d1));
        a.noise = a.noise.key_switch(self.ks_var);
        Ok(())
    }

    fn rescale_assign(&self, a: &mut CkksCiphertext) -> Result<()> {
        self.check_fp(a.fp, OpKind::Rescale)?;
        let q = self.rescale_divisor(a.level)?;
        let l = a.level.0 as usize;
        if parallel(a.polys.len() * a.polys[0].len() / 2) {
            a.polys.par_iter_mut().for_each(|p| self.rescale_poly(p, l));
        } else {
            a.polys.iter_mut().for_each(|p| self.rescale_poly(p, l));
        }
        a.level = Level(a.level.0 - 1);
        a.scale = a.scale / q;
        a.noise = a.noise.rescale(q, self.n());
        Ok(())
    }

    fn drop_level_assign(&self, a: &mut CkksCiphertext, level: Level) -> Result<()> {
        self.check_fp(a.fp, OpKind::LevelDrop)?;
        crate::he::checks::drop_target(a.level, level)?;
        self.check_scale_room(OpKind::LevelDrop, level, a.scale)?;
        let len = (level.0 as usize + 1) * self.n();
        a.polys.iter_mut().for_each(|p| p.truncate(len));
        a.level = level;
        Ok(())
    }

    fn rotate(
        &self,
        a: &CkksCiphertext,
        step: Rotation,
        keys: &CkksEvalKeys,
    ) -> Result<CkksCiphertext> {
        let key = self.rotation_checks(a, step, keys)?;
        Ok(self
            .rotate_hoisted(a, &[key])
            .pop()
            .unwrap_or_else(|| a.clone()))
    }

    fn conjugate(&self, a: &CkksCiphertext, keys: &CkksEvalKeys) -> Result<CkksCiphertext> {
        self.check_fp(a.fp, OpKind::Conjugate)?;
        self.check_fp(keys.fp, OpKind::Conjugate)?;
        self.check_key(OpKind::Conjugate, keys.key, a.key)?;
        let key = keys.conj.as_ref().ok_or(Error::MissingConjugationKey)?;
        if a.size() != 2 {
            return Err(Error::CiphertextSize {
                op: OpKind::Conjugate,
                size: a.size(),
                expected: 2,
            });
        }
        Ok(self
            .rotate_hoisted(a, &[Some(key)])
            .pop()
            .unwrap_or_else(|| a.clone()))
    }

    fn rotate_many(
        &self,
        a: &CkksCiphertext,
        steps: &[Rotation],
        keys: &CkksEvalKeys,
    ) -> Result<Vec<CkksCiphertext>> {
        let ks = steps
            .iter()
            .map(|&s| self.rotation_checks(a, s, keys))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.rotate_hoisted(a, &ks))
    }

    fn dot_plain(&self, cts: &[&CkksCiphertext], pts: &[&CkksPlaintext]) -> Result<CkksCiphertext> {
        self.dot_plain_lazy(cts, pts)
    }

    fn dot_scalar(
        &self,
        cts: &[&CkksCiphertext],
        scalars: &[f64],
        scale: Scale,
    ) -> Result<CkksCiphertext> {
        // One row of the blocked multiply-accumulate: a single scalar path.
        check_terms(OpKind::CtScalarMul, cts.len(), scalars.len())?;
        let row: Vec<(usize, f64)> = scalars.iter().copied().enumerate().collect();
        self.dot_scalar_many(cts, &[row], scale)?
            .pop()
            .ok_or(Error::Internal {
                invariant: "dot_scalar_many returns one output per row",
            })
    }

    fn dot_scalar_many(
        &self,
        cts: &[&CkksCiphertext],
        rows: &[Vec<(usize, f64)>],
        scale: Scale,
    ) -> Result<Vec<CkksCiphertext>> {
        self.dot_scalar_blocked(cts, rows, scale)
    }
}

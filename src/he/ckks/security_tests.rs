//! Tests of key identity, the noise estimate, noise flooding and the
//! key-recovery attack on shared exact decryptions (IND-CPA^D).

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::ntt::permute;
use super::tests::small_params;
use super::*;
use crate::he::{HeScheme, KeyRequirements, Rotation};

struct Setup {
    ckks: Ckks,
    sk: CkksSecretKey,
    pk: CkksPublicKey,
    keys: CkksEvalKeys,
    rng: ChaCha20Rng,
}

fn setup(seed: u64) -> Setup {
    let ckks = Ckks::new(small_params()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let sk = ckks.generate_secret_key(&mut rng).unwrap();
    let pk = ckks.generate_public_key(&sk, &mut rng).unwrap();
    let req = KeyRequirements::new()
        .with_relinearization()
        .with_rotations([Rotation(1)]);
    let keys = ckks.generate_eval_keys(&sk, &req, &mut rng).unwrap();
    Setup {
        ckks,
        sk,
        pk,
        keys,
        rng,
    }
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (rand::RngCore::next_u64(&mut rng) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        .collect()
}

impl Ckks {
    /// Centred coefficients of an NTT-form polynomial at `level`.
    fn coeffs_of(&self, poly: &[u64], level: Level) -> Vec<f64> {
        let l = level.0 as usize;
        let mut c = poly.to_vec();
        self.ring.inverse_all(&mut c, &(0..=l).collect::<Vec<_>>());
        self.centred_coeffs(&c, l)
    }

    /// `a * b` (NTT form, pointwise) over `q_0..q_l`.
    fn poly_mul(&self, a: &[u64], b: &[u64]) -> Vec<u64> {
        let n = self.n();
        let mut out = vec![0u64; a.len()];
        for (j, o) in out.chunks_mut(n).enumerate() {
            self.ring
                .mul_acc(j, o, &a[j * n..(j + 1) * n], &b[j * n..(j + 1) * n]);
        }
        out
    }

    /// `a + b` over `q_0..q_l`.
    fn poly_add(&self, a: &[u64], b: &[u64]) -> Vec<u64> {
        let n = self.n();
        a.iter()
            .zip(b)
            .enumerate()
            .map(|(i, (&x, &y))| self.ring.moduli[i / n].add(x, y))
            .collect()
    }

    /// Empirical variance of the error of `ct` whose message is the
    /// polynomial `want` (computed by the same ring operations on the
    /// plaintexts), from an exact decryption.
    fn measured_var(&self, sk: &CkksSecretKey, ct: &CkksCiphertext, want: &[u64]) -> f64 {
        let got = self.decrypt(sk, ct).unwrap();
        let n = self.n();
        let diff: Vec<u64> = got
            .poly
            .iter()
            .zip(want)
            .enumerate()
            .map(|(i, (&x, &y))| self.ring.moduli[i / n].sub(x, y))
            .collect();
        let c = self.coeffs_of(&diff, ct.level);
        c.iter().map(|x| x * x).sum::<f64>() / c.len() as f64
    }
}

/// The estimate is neither below the measured error variance (flooding
/// would be too weak) nor far above it (flooding would cost needless
/// precision), through encryption, additions, products by plaintexts and
/// scalars, ct x ct products with relinearisation, rescales and rotations.
#[test]
fn noise_estimate_tracks_measured_noise() {
    let mut s = setup(31);
    let c = &s.ckks;
    let (top, scale) = (c.max_level(), c.default_scale());
    let px = c.encode(&values(4096, 1), top, scale).unwrap();
    let py = c.encode(&values(4096, 2), top, scale).unwrap();
    let pw = c.encode(&values(4096, 3), top, scale).unwrap();
    let x = c.encrypt(&s.pk, &px, &mut s.rng).unwrap();
    let y = c.encrypt_secret(&s.sk, &py, &mut s.rng).unwrap();
    let mut cases: Vec<(&str, CkksCiphertext, Vec<u64>)> = vec![
        ("public-key encryption", x.clone(), px.poly.clone()),
        ("secret-key encryption", y.clone(), py.poly.clone()),
        (
            "add",
            c.add(&x, &y).unwrap(),
            c.poly_add(&px.poly, &py.poly),
        ),
    ];
    let xw = c.mul_plain(&x, &pw).unwrap();
    let xw_want = c.poly_mul(&px.poly, &pw.poly);
    cases.push(("mul_plain", xw.clone(), xw_want.clone()));
    let mut xw_r = xw_want.clone();
    c.rescale_poly(&mut xw_r, top.0 as usize);
    cases.push(("mul_plain + rescale", c.rescale(&xw).unwrap(), xw_r));
    let xy = c.mul_relin(&x, &y, &s.keys).unwrap();
    let xy_want = c.poly_mul(&px.poly, &py.poly);
    cases.push(("mul + relinearize", xy.clone(), xy_want.clone()));
    let mut xy_r = xy_want;
    c.rescale_poly(&mut xy_r, top.0 as usize);
    let xy = c.rescale(&xy).unwrap();
    cases.push(("mul + relinearize + rescale", xy.clone(), xy_r.clone()));
    let k = 12345.0;
    let x3 = c.mul_scalar(&xy, k / scale.value(), scale).unwrap();
    let n = c.n();
    let k_ntt: Vec<u64> = (0..xy_r.len())
        .map(|i| c.ring.moduli[i / n].reduce_f64_integer(k))
        .collect();
    let x3_want = c.poly_mul(&xy_r, &k_ntt);
    cases.push(("... + mul_scalar", x3.clone(), x3_want.clone()));
    let rot = c.rotate(&x3, Rotation(1), &s.keys).unwrap();
    let perm = &s.keys.rotations[&1].perm;
    let mut rot_want = vec![0u64; x3_want.len()];
    for (o, i) in rot_want.chunks_mut(n).zip(x3_want.chunks(n)) {
        permute(o, i, perm);
    }
    cases.push(("... + rotate", rot, rot_want));
    for (what, ct, want) in &cases {
        let measured = c.measured_var(&s.sk, ct, want);
        let est = ct.noise.var;
        eprintln!(
            "{what}: estimated std 2^{:.2}, measured 2^{:.2}",
            0.5 * est.log2(),
            0.5 * measured.log2()
        );
        assert!(measured <= 1.5 * est, "{what}: {measured} > {est}");
        assert!(
            est <= 256.0 * measured.max(1.0),
            "{what}: {est} >> {measured}"
        );
    }
}

/// Two flooded decryptions of one ciphertext differ by about the flooding
/// noise (standard deviation `sqrt(2) 2^bits` times the estimate per
/// coefficient); two exact ones are identical.
#[test]
fn flooded_decryptions_differ_by_the_flooding_noise() {
    let mut s = setup(32);
    let c = &s.ckks;
    let v = values(4096, 4);
    let pt = c.encode(&v, c.max_level(), c.default_scale()).unwrap();
    let ct = c.encrypt(&s.pk, &pt, &mut s.rng).unwrap();
    assert_eq!(
        c.decrypt(&s.sk, &ct).unwrap().poly,
        c.decrypt(&s.sk, &ct).unwrap().poly
    );
    let bits = 16;
    let d1 = c.decrypt_flooded(&s.sk, &ct, bits, &mut s.rng).unwrap();
    let d2 = c.decrypt_flooded(&s.sk, &ct, bits, &mut s.rng).unwrap();
    let n = c.n();
    let diff: Vec<u64> = d1
        .poly
        .iter()
        .zip(&d2.poly)
        .enumerate()
        .map(|(i, (&x, &y))| c.ring.moduli[i / n].sub(x, y))
        .collect();
    let coeffs = c.coeffs_of(&diff, ct.level);
    let std = (coeffs.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
    let want = 2f64.sqrt() * f64::from(bits).exp2() * ct.noise.var.sqrt();
    assert!(
        (std / want - 1.0).abs() < 0.05,
        "difference std {std}, expected {want}"
    );
    // In the slots: real part of N coefficients -> std sqrt(N / 2) / scale.
    let a = c.decode(&d1).unwrap();
    let b = c.decode(&d2).unwrap();
    let slot_std =
        (a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
    let slot_want = want * (n as f64 / 2.0).sqrt() / c.default_scale().value();
    assert!(
        (slot_std / slot_want - 1.0).abs() < 0.1,
        "slots: {slot_std} vs {slot_want}"
    );
}

/// The attack of Li and Micciancio on a shared decryption: the decryption
/// `m = c_0 + c_1 s + e` of an encryption of zero is the noise `e`, so
/// `s = (m - c_0) / c_1` modulo `q_0` (pointwise in NTT form). With the
/// exact decryption it recovers `s mod q_0` and decrypts an unrelated
/// ciphertext; with flooding both fail. (The attacker is given the
/// decrypted polynomial: its `N` coefficients are what the `N / 2` complex
/// slots hold.)
#[test]
fn key_recovery_from_a_shared_decryption() {
    let mut s = setup(33);
    let c = &s.ckks;
    let n = c.n();
    let scale = c.default_scale();
    let zero = c.encode(&[], c.max_level(), scale).unwrap();
    let ct0 = c.encrypt(&s.pk, &zero, &mut s.rng).unwrap();
    let v = values(4096, 5);
    let secret = c.encode(&v, c.max_level(), scale).unwrap();
    let mut victim = c.encrypt(&s.pk, &secret, &mut s.rng).unwrap();
    c.drop_level_assign(&mut victim, Level(0)).unwrap();
    let q0 = &c.ring.moduli[0];
    let attack = |shared: &CkksPlaintext| -> (bool, f64) {
        let (m, c0, c1) = (&shared.poly[..n], &ct0.polys[0][..n], &ct0.polys[1][..n]);
        let s0: Vec<u64> = (0..n)
            .map(|i| q0.mul(q0.sub(m[i], c0[i]), q0.inv(c1[i])))
            .collect();
        let recovered = s0 == s.sk.ntt[..n];
        let dec: Vec<u64> = (0..n)
            .map(|i| q0.add(victim.polys[0][i], q0.mul(victim.polys[1][i], s0[i])))
            .collect();
        let pt = CkksPlaintext {
            poly: dec,
            level: Level(0),
            scale: victim.scale,
            fp: c.fp,
            norm_sq: 0.0,
        };
        let got = c.decode(&pt).unwrap();
        let err = got
            .iter()
            .zip(&v)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        (recovered, err)
    };
    let exact = c.decrypt(&s.sk, &ct0).unwrap();
    let (recovered, err) = attack(&exact);
    assert!(recovered, "the exact decryption gives s mod q0");
    assert!(err < 1e-6, "and decrypts the victim: error {err}");
    for bits in [crate::eval::DEFAULT_FLOODING_BITS, 16] {
        let flooded = c.decrypt_flooded(&s.sk, &ct0, bits, &mut s.rng).unwrap();
        let (recovered, err) = attack(&flooded);
        assert!(!recovered, "{bits} bits");
        assert!(
            err > 1e3,
            "{bits} bits: the victim stays hidden (error {err})"
        );
        // The flooded decryption still decodes to (about) zero.
        let z = c.decode(&flooded).unwrap();
        assert!(z.iter().all(|x| x.abs() < 1e-3));
    }
}

/// Wrong keys are typed errors before any ciphertext work; a second secret
/// key of the same parameters has another id.
#[test]
fn wrong_keys_are_refused() {
    let mut a = setup(34);
    let b = setup(35);
    let c = &a.ckks;
    assert_ne!(a.sk.key, b.sk.key);
    assert_eq!(c.secret_key_id(&a.sk), a.sk.key);
    assert_eq!(a.keys.key, a.sk.key);
    assert_eq!(a.pk.key, a.sk.key);
    let pt = c.encode(&[0.5], c.max_level(), c.default_scale()).unwrap();
    let x = c.encrypt(&a.pk, &pt, &mut a.rng).unwrap();
    let y = c.encrypt(&b.pk, &pt, &mut a.rng).unwrap();
    assert_eq!(x.key_id(), a.sk.key);
    let mismatch = |r: Result<()>, op: OpKind| match r {
        Err(Error::KeyMismatch { op: o, .. }) => assert_eq!(o, op),
        other => panic!("{op}: {other:?}"),
    };
    mismatch(c.decrypt(&b.sk, &x).map(|_| ()), OpKind::Decrypt);
    mismatch(c.add(&x, &y).map(|_| ()), OpKind::CtCtAdd);
    mismatch(c.sub(&x, &y).map(|_| ()), OpKind::CtCtAdd);
    mismatch(c.mul(&x, &y).map(|_| ()), OpKind::CtCtMul);
    mismatch(
        c.rotate(&x, Rotation(1), &b.keys).map(|_| ()),
        OpKind::Rotation,
    );
    mismatch(
        c.rotate_many(&x, &[Rotation(1)], &b.keys).map(|_| ()),
        OpKind::Rotation,
    );
    let xx = c.mul(&x, &x).unwrap();
    mismatch(c.relinearize(&xx, &b.keys), OpKind::Relinearize);
    mismatch(
        c.dot_plain(&[&x, &y], &[&pt, &pt]).map(|_| ()),
        OpKind::CtCtAdd,
    );
    mismatch(
        c.dot_scalar(&[&x, &y], &[1.0, 2.0], c.default_scale())
            .map(|_| ()),
        OpKind::CtCtAdd,
    );
    // The seeded form and the wire keep the id.
    let seeded = c.encrypt_secret_seeded(&a.sk, &pt, &mut a.rng).unwrap();
    assert_eq!(c.expand(&seeded).unwrap().key, a.sk.key);
    let back = c
        .ciphertext_from_bytes(&c.ciphertext_to_bytes(&y).unwrap())
        .unwrap();
    assert_eq!(back.key, b.sk.key);
    assert_eq!(back.noise, y.noise);
    mismatch(c.decrypt(&a.sk, &back).map(|_| ()), OpKind::Decrypt);
    let kb = c
        .eval_keys_from_bytes(&c.eval_keys_to_bytes(&b.keys).unwrap(), 4)
        .unwrap();
    assert_eq!(kb.key, b.sk.key);
    mismatch(c.rotate(&x, Rotation(1), &kb).map(|_| ()), OpKind::Rotation);
    let pkb = c
        .public_key_from_bytes(&c.public_key_to_bytes(&b.pk).unwrap())
        .unwrap();
    assert_eq!(pkb.key, b.sk.key);
}

impl Ckks {
    fn relinearize(&self, a: &CkksCiphertext, keys: &CkksEvalKeys) -> Result<()> {
        let mut a = a.clone();
        self.relinearize_assign(&mut a, keys)
    }
}

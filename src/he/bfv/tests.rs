use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::he::{Counted, HeScheme, KeyRequirements};

const T: u64 = 65537;

fn small() -> Bfv {
    Bfv::new(
        BfvParams::builder()
            .degree(64)
            .plaintext_modulus(T)
            .moduli_sizes(&[55, 45, 55])
            .build_insecure_for_tests()
            .unwrap(),
    )
}

/// `x` reduced into `[-(t-1)/2, (t-1)/2]`.
fn centred(x: i128) -> i64 {
    let t = T as i128;
    let r = x.rem_euclid(t);
    (if r > t / 2 { r - t } else { r }) as i64
}

struct Setup {
    he: Bfv,
    sk: BfvSecretKey,
    pk: BfvPublicKey,
    keys: BfvEvalKeys,
    rng: ChaCha20Rng,
}

fn setup(req: KeyRequirements) -> Setup {
    setup_on(small(), req)
}

fn setup_on(he: Bfv, req: KeyRequirements) -> Setup {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let sk = he.generate_secret_key(&mut rng).unwrap();
    let pk = he.generate_public_key(&sk, &mut rng).unwrap();
    let keys = he.generate_eval_keys(&sk, &req, &mut rng).unwrap();
    Setup {
        he,
        sk,
        pk,
        keys,
        rng,
    }
}

impl Setup {
    fn enc(&mut self, v: &[i64]) -> BfvCiphertext {
        self.enc_at(v, self.he.max_level())
    }
    fn enc_at(&mut self, v: &[i64], level: Level) -> BfvCiphertext {
        let pt = self.he.encode(v, level, Scale::ONE).unwrap();
        self.he.encrypt(&self.pk, &pt, &mut self.rng).unwrap()
    }
    fn dec(&self, ct: &BfvCiphertext) -> Vec<i64> {
        self.he
            .decode(&self.he.decrypt(&self.sk, ct).unwrap())
            .unwrap()
    }
}

fn sample(seed: i64, n: usize) -> Vec<i64> {
    (0..n as i64)
        .map(|i| centred(((i + 3) * (seed + 11) * 7919) as i128) % 3000)
        .collect()
}

#[test]
fn shape_of_the_backend() {
    let he = small();
    assert_eq!(he.slot_count(), 32);
    assert_eq!(he.max_level(), Level(2));
    assert_eq!(he.default_scale(), Scale::ONE);
    assert_eq!(he.rescale_divisor(Level(2)).unwrap(), 1.0);
    assert!(matches!(
        he.rescale_divisor(Level(0)),
        Err(Error::LevelExhausted { .. })
    ));
    assert_eq!(he.params().max_value(), 32768);
    // An exact integer scheme reports its plaintext modulus (the wrapper
    // forwards it); approximate schemes do not.
    assert_eq!(he.plaintext_modulus(), Some(T));
    assert_eq!(Counted::new(small()).plaintext_modulus(), Some(T));
    let sim = crate::he::sim::Sim::new(crate::he::sim::SimParams::new(8, &[40, 30], 30).unwrap());
    assert_eq!(sim.plaintext_modulus(), None);
}

#[test]
fn encode_decode_round_trip_and_range() {
    let he = small();
    let v: Vec<i64> = vec![0, 1, -1, 32768, -32768, 12345, -54];
    let pt = he.encode(&v, Level(1), Scale::ONE).unwrap();
    let out = he.decode(&pt).unwrap();
    assert_eq!(out.len(), 32);
    assert_eq!(&out[..v.len()], &v[..]);
    assert!(out[v.len()..].iter().all(|&x| x == 0));
    assert_eq!(he.plaintext_level(&pt), Level(1));
    assert!(matches!(
        he.encode(&[32769], Level(0), Scale::ONE),
        Err(Error::ValueOutOfRange {
            op: OpKind::Encode,
            ..
        })
    ));
    assert!(matches!(
        he.encode(&[0; 33], Level(0), Scale::ONE),
        Err(Error::TooManyValues {
            given: 33,
            slots: 32
        })
    ));
    assert!(matches!(
        he.encode(&[1], Level(3), Scale::ONE),
        Err(Error::LevelOutOfRange { .. })
    ));
    assert!(matches!(
        he.encode(&[1], Level(0), Scale::from_log2(20.0)),
        Err(Error::ScaleMismatch {
            op: OpKind::Encode,
            ..
        })
    ));
}

#[test]
fn encrypt_decrypt_and_linear_ops() {
    let mut s = setup(KeyRequirements::new());
    let a = sample(1, 32);
    let b = sample(2, 32);
    let ca = s.enc(&a);
    let cb = s.enc(&b);
    assert_eq!(s.dec(&ca), a);
    assert_eq!(s.he.level(&ca), Level(2));
    assert_eq!(s.he.scale(&ca), Scale::ONE);

    let add: Vec<i64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert_eq!(s.dec(&s.he.add(&ca, &cb).unwrap()), add);
    let sub: Vec<i64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
    assert_eq!(s.dec(&s.he.sub(&ca, &cb).unwrap()), sub);
    let mut neg = ca.clone();
    s.he.negate_assign(&mut neg).unwrap();
    assert_eq!(s.dec(&neg), a.iter().map(|x| -x).collect::<Vec<_>>());

    let pb = s.he.encode(&b, Level(2), Scale::ONE).unwrap();
    assert_eq!(s.dec(&s.he.add_plain(&ca, &pb).unwrap()), add);
    let prod: Vec<i64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| centred(*x as i128 * *y as i128))
        .collect();
    assert_eq!(s.dec(&s.he.mul_plain(&ca, &pb).unwrap()), prod);

    for c in [0i64, 1, -1, 7, -300, 32768] {
        let want: Vec<i64> = a.iter().map(|x| centred(*x as i128 * c as i128)).collect();
        assert_eq!(
            s.dec(&s.he.mul_scalar(&ca, c, Scale::ONE).unwrap()),
            want,
            "c = {c}"
        );
        let mut plus = ca.clone();
        s.he.add_scalar_assign(&mut plus, c).unwrap();
        let want: Vec<i64> = a.iter().map(|x| centred(*x as i128 + c as i128)).collect();
        assert_eq!(s.dec(&plus), want, "c = {c}");
    }
    assert!(matches!(
        s.he.mul_scalar(&ca, 2, Scale::from_log2(10.0)),
        Err(Error::ScaleMismatch {
            op: OpKind::CtScalarMul,
            ..
        })
    ));
    assert!(matches!(
        s.he.mul_scalar(&ca, 40000, Scale::ONE),
        Err(Error::ValueOutOfRange {
            op: OpKind::CtScalarMul,
            ..
        })
    ));
}

#[test]
fn multiply_relinearize_rescale_through_every_level() {
    let mut s = setup(KeyRequirements::new().with_relinearization());
    let a: Vec<i64> = (0..32).map(|i| i - 16).collect();
    let mut ct = s.enc(&a);
    let mut want = a.clone();
    // x -> x^2 twice with a modulus switch after each product: levels 2 -> 1 -> 0.
    for level in [2u32, 1] {
        assert_eq!(s.he.level(&ct), Level(level));
        let mut sq = s.he.mul(&ct, &ct).unwrap();
        assert_eq!(sq.size(), 3);
        want = want
            .iter()
            .map(|x| centred(*x as i128 * *x as i128))
            .collect();
        assert_eq!(s.dec(&sq), want, "unrelinearised at level {level}");
        s.he.relinearize_assign(&mut sq, &s.keys).unwrap();
        assert_eq!(sq.size(), 2);
        assert_eq!(s.dec(&sq), want, "relinearised at level {level}");
        s.he.rescale_assign(&mut sq).unwrap();
        assert_eq!(s.he.level(&sq), Level(level - 1));
        assert_eq!(s.he.scale(&sq), Scale::ONE);
        assert_eq!(s.dec(&sq), want, "switched from level {level}");
        ct = sq;
    }
    assert!(matches!(
        s.he.rescale_assign(&mut ct),
        Err(Error::LevelExhausted { .. })
    ));
    // A product of two different ciphertexts at level 0.
    let b = s.enc_at(&[3; 32], Level(0));
    let p = s.he.mul_relin(&ct, &b, &s.keys).unwrap();
    let want3: Vec<i64> = want.iter().map(|x| centred(*x as i128 * 3)).collect();
    assert_eq!(s.dec(&p), want3);
}

#[test]
fn drop_level_and_mixed_sizes() {
    let mut s = setup(KeyRequirements::new().with_relinearization());
    let a = sample(3, 32);
    let mut ct = s.enc(&a);
    s.he.drop_level_assign(&mut ct, Level(0)).unwrap();
    assert_eq!(s.he.level(&ct), Level(0));
    assert_eq!(s.dec(&ct), a);
    assert!(matches!(
        s.he.drop_level_assign(&mut ct, Level(1)),
        Err(Error::LevelOutOfRange { .. })
    ));

    // size 3 + size 2 and size 2 - size 3.
    let b = sample(4, 32);
    let ca = s.enc(&a);
    let cb = s.enc(&b);
    let sq = s.he.mul(&ca, &ca).unwrap();
    let sq_plain: Vec<i64> = a.iter().map(|x| centred(*x as i128 * *x as i128)).collect();
    let sum = s.he.add(&sq, &cb).unwrap();
    assert_eq!(sum.size(), 3);
    let want: Vec<i64> = sq_plain
        .iter()
        .zip(&b)
        .map(|(x, y)| centred((x + y) as i128))
        .collect();
    assert_eq!(s.dec(&sum), want);
    let diff = s.he.sub(&cb, &sq).unwrap();
    let want: Vec<i64> = sq_plain
        .iter()
        .zip(&b)
        .map(|(x, y)| centred((y - x) as i128))
        .collect();
    assert_eq!(s.dec(&diff), want);
    assert!(matches!(
        s.he.mul(&sq, &cb),
        Err(Error::CiphertextSize {
            op: OpKind::CtCtMul,
            size: 3,
            expected: 2
        })
    ));
}

#[test]
fn rotations_move_slot_i_plus_k_to_i() {
    let steps = [Rotation(1), Rotation(5), Rotation(-3), Rotation(31)];
    let mut s = setup(KeyRequirements::new().with_rotations(steps));
    let a = sample(5, 32);
    for level in [Level(2), Level(0)] {
        let ct = s.enc_at(&a, level);
        for step in steps {
            let r = s.he.rotate(&ct, step, &s.keys).unwrap();
            let k = step.normalized(32);
            let want: Vec<i64> = (0..32).map(|i| a[(i + k) % 32]).collect();
            assert_eq!(s.dec(&r), want, "step {step} at level {level}");
        }
        assert_eq!(s.dec(&s.he.rotate(&ct, Rotation(32), &s.keys).unwrap()), a);
    }
    let ct = s.enc(&a);
    assert!(matches!(
        s.he.rotate(&ct, Rotation(2), &s.keys),
        Err(Error::MissingRotationKey { step: Rotation(2) })
    ));
    assert!(s.keys.supports_rotation(Rotation(29)));
    assert!(s.keys.supports_rotation(Rotation(-1)));
    assert!(!s.keys.supports_relinearization());
    let sq = s.he.mul(&ct, &ct).unwrap();
    assert!(matches!(
        s.he.rotate(&sq, Rotation(1), &s.keys),
        Err(Error::CiphertextSize { .. })
    ));
    let mut sq = sq;
    assert!(matches!(
        s.he.relinearize_assign(&mut sq, &s.keys),
        Err(Error::MissingRelinearizationKey)
    ));
    // rotate_and_sum over the 4 first slots, needing steps 1 and 2.
    let mut s = setup(KeyRequirements::new().with_rotations([Rotation(1), Rotation(2)]));
    let ct = s.enc(&a);
    let r = s.he.rotate_and_sum(&ct, 4, &s.keys).unwrap();
    let want: Vec<i64> = (0..32)
        .map(|i| centred((0..4).map(|j| a[(i + j) % 32] as i128).sum()))
        .collect();
    assert_eq!(s.dec(&r), want);
}

#[test]
fn dot_plain_matches_the_sum_of_products() {
    let mut s = setup(KeyRequirements::new());
    let xs: Vec<Vec<i64>> = (0..5).map(|i| sample(10 + i, 32)).collect();
    let ws: Vec<Vec<i64>> = (0..5).map(|i| sample(20 + i, 32)).collect();
    let cts: Vec<BfvCiphertext> = xs.iter().map(|x| s.enc(x)).collect();
    let pts: Vec<BfvPlaintext> = ws
        .iter()
        .map(|w| s.he.encode(w, Level(2), Scale::ONE).unwrap())
        .collect();
    let ct_refs: Vec<&BfvCiphertext> = cts.iter().collect();
    let pt_refs: Vec<&BfvPlaintext> = pts.iter().collect();
    let d = s.he.dot_plain(&ct_refs, &pt_refs).unwrap();
    let want: Vec<i64> = (0..32)
        .map(|i| centred((0..5).map(|j| xs[j][i] as i128 * ws[j][i] as i128).sum()))
        .collect();
    assert_eq!(s.dec(&d), want);
    let low = s.enc_at(&xs[0], Level(1));
    assert!(matches!(
        s.he.dot_plain(&[&cts[0], &low], &[&pts[0], &pts[1]]),
        Err(Error::LevelMismatch { .. })
    ));
    assert!(s.he.dot_plain(&[], &[]).is_err());
}

#[test]
fn caller_mistakes_are_errors() {
    let mut s = setup(KeyRequirements::new());
    // Other parameters (one modulus differs): refused.
    let other_params = BfvParams::builder()
        .degree(64)
        .plaintext_modulus(T)
        .moduli_sizes(&[55, 45, 50])
        .build_insecure_for_tests()
        .unwrap();
    let mut other = setup_on(Bfv::new(other_params), KeyRequirements::new());
    // Another backend from the same parameters: accepted (same fingerprint).
    let twin = small();
    assert_eq!(twin.params().fingerprint(), s.he.params().fingerprint());
    let y = s.enc(&[4, 5]);
    let sum = twin.add(&y, &y).unwrap();
    assert_eq!(
        &twin.decode(&twin.decrypt(&s.sk, &sum).unwrap()).unwrap()[..2],
        &[8, 10]
    );
    let a = s.enc(&[1, 2, 3]);
    let foreign = other.enc(&[1, 2, 3]);
    let mut x = a.clone();
    assert!(matches!(
        s.he.add_assign(&mut x, &foreign),
        Err(Error::ParameterMismatch {
            op: OpKind::CtCtAdd
        })
    ));
    assert!(matches!(
        s.he.decrypt(&other.sk, &a),
        Err(Error::ParameterMismatch { .. })
    ));
    let low = s.enc_at(&[1], Level(0));
    assert!(matches!(
        s.he.add_assign(&mut x, &low),
        Err(Error::LevelMismatch {
            op: OpKind::CtCtAdd,
            left: Level(2),
            right: Level(0)
        })
    ));
    let p0 = s.he.encode(&[1], Level(0), Scale::ONE).unwrap();
    assert!(matches!(
        s.he.mul_plain_assign(&mut x, &p0),
        Err(Error::LevelMismatch { .. })
    ));
    assert!(matches!(
        s.he.add_plain_assign(&mut x, &p0),
        Err(Error::LevelMismatch { .. })
    ));
    assert!(matches!(
        s.he.mul(&a, &low),
        Err(Error::LevelMismatch { .. })
    ));
    assert!(matches!(
        s.he.conjugate(&a, &s.keys),
        Err(Error::Unsupported {
            op: OpKind::Conjugate,
            scheme: "bfv"
        })
    ));
    assert!(matches!(
        s.he.generate_eval_keys(
            &s.sk,
            &KeyRequirements::new().with_conjugation(),
            &mut s.rng
        ),
        Err(Error::Unsupported { .. })
    ));
    assert!(matches!(
        other.he.generate_public_key(&s.sk, &mut other.rng),
        Err(Error::ParameterMismatch { op: OpKind::KeyGen })
    ));
}

#[test]
fn secret_key_is_not_printed() {
    let s = setup(KeyRequirements::new());
    assert_eq!(format!("{:?}", s.sk), "BfvSecretKey(..)");
    let dbg = format!("{:?}", s.he);
    assert!(dbg.contains("65537"), "{dbg}");
}

#[test]
fn counted_bfv_counts() {
    let he = Counted::new(small());
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let sk = he.generate_secret_key(&mut rng).unwrap();
    let pk = he.generate_public_key(&sk, &mut rng).unwrap();
    let pt = he.encode(&[4, 5], Level(2), Scale::ONE).unwrap();
    let ct = he.encrypt(&pk, &pt, &mut rng).unwrap();
    let sum = he.add(&ct, &ct).unwrap();
    assert_eq!(
        he.decode(&he.decrypt(&sk, &sum).unwrap()).unwrap()[..2],
        [8, 10]
    );
    assert_eq!(he.counts().get(crate::he::OpKind::CtCtAdd), 1);
}

#[test]
fn secure_sets_build() {
    let p = BfvParams::n8192().unwrap();
    assert!(p.is_secure());
    assert_eq!(p.log_q(), 200);
    assert_eq!(p.moduli().len(), 4);
}

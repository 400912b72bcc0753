//! The HE conformance suite, written once and instantiated for every backend
//! with one line:
//!
//! ```ignore
//! #[macro_use]
//! mod conformance;
//! conformance_suite!(Sim::new(SimParams::new(64, &[60, 40, 40], 40).unwrap()), tolerance = 1e-9, magnitude = 1.0, cases = 64);
//! ```
//!
//! Laws (proptest-driven): decrypt(op(E a, E b)) agrees with op(a, b) in
//! plaintext arithmetic within the backend's tolerance, for add, sub,
//! negate, add_plain, add_scalar, mul_plain, mul_scalar, mul + relinearize
//! (+ rescale), rotations (slot i + k moves to slot i), rotate-and-sum, dot
//! products, rescale and level drops (values kept, level and scale
//! bookkept). Misuse: rescale at level 0, a rotation without its key,
//! relinearisation without a key, mismatched scales and levels, too many
//! values, rotating an unrelinearised product — each returns its documented
//! error variant, never a panic. Wrong keys: decrypting with another secret
//! key, rotating or relinearising with another key set, combining
//! ciphertexts of two secret keys ([`Error::KeyMismatch`]), and evaluation
//! keys or ciphertexts of another parameter set ([`Error::ParameterMismatch`],
//! with `other = ...`, a backend of other parameters) are refused.
//!
//! `magnitude` is the range of sample values ([-m, m], rounded by
//! `SlotValue::from_f64` for integer schemes); `tolerance` is the allowed
//! absolute error relative to `max(1, |expected|)`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use mofhei::he::{Error, OpKind};
use mofhei::he::{
    EvaluationKeys, HeScheme, KeyId, KeyRequirements, Level, Rotation, Scale, SlotValue,
};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The rotation steps every fixture's keys support.
pub const STEPS: [i64; 5] = [1, 2, 3, -1, 4];

/// A backend with its keys, built once per test binary.
pub struct Ctx<S: HeScheme> {
    pub scheme: S,
    pub sk: S::SecretKey,
    pub pk: S::PublicKey,
    /// Relinearisation + rotations by STEPS (and the powers of two up to 8).
    pub keys: S::EvalKeys,
    /// No keys at all.
    pub no_keys: S::EvalKeys,
    pub tolerance: f64,
    pub magnitude: f64,
    pub cases: u32,
}

impl<S: HeScheme> Ctx<S> {
    pub fn new(scheme: S, tolerance: f64, magnitude: f64, cases: u32) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(0x5eed);
        let sk = scheme.generate_secret_key(&mut rng).expect("secret key");
        let pk = scheme
            .generate_public_key(&sk, &mut rng)
            .expect("public key");
        let req = KeyRequirements::new()
            .with_relinearization()
            .with_rotations(STEPS.iter().map(|&s| Rotation(s)))
            .with_rotations([Rotation(8)]);
        let keys = scheme
            .generate_eval_keys(&sk, &req, &mut rng)
            .expect("eval keys");
        let no_keys = scheme
            .generate_eval_keys(&sk, &KeyRequirements::new(), &mut rng)
            .expect("empty keys");
        Ctx {
            scheme,
            sk,
            pk,
            keys,
            no_keys,
            tolerance,
            magnitude,
            cases,
        }
    }

    fn values(&self, seed: u64, len: usize) -> Vec<S::Value> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..len)
            .map(|_| S::Value::from_f64(rng.random_range(-1.0..=1.0) * self.magnitude))
            .collect()
    }

    fn encrypt_at(&self, v: &[S::Value], level: Level, scale: Scale, seed: u64) -> S::Ciphertext {
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0xabcdef);
        let pt = self.scheme.encode(v, level, scale).expect("encode");
        self.scheme
            .encrypt(&self.pk, &pt, &mut rng)
            .expect("encrypt")
    }

    fn encrypt(&self, v: &[S::Value], seed: u64) -> S::Ciphertext {
        self.encrypt_at(
            v,
            self.scheme.max_level(),
            self.scheme.default_scale(),
            seed,
        )
    }

    fn decrypt(&self, ct: &S::Ciphertext) -> Vec<f64> {
        let pt = self.scheme.decrypt(&self.sk, ct).expect("decrypt");
        self.scheme
            .decode(&pt)
            .expect("decode")
            .into_iter()
            .map(SlotValue::to_f64)
            .collect()
    }

    /// Compares a decryption with the expected values (padded with zeros).
    fn check(&self, what: &str, got: &[f64], expected: &[f64]) -> Result<(), TestCaseError> {
        for (i, g) in got.iter().enumerate() {
            let e = expected.get(i).copied().unwrap_or(0.0);
            let tol = self.tolerance * e.abs().max(1.0);
            if (g - e).abs() > tol {
                return Err(TestCaseError::fail(format!(
                    "{what}: slot {i}: got {g}, expected {e} (tolerance {tol})"
                )));
            }
        }
        Ok(())
    }

    fn run(&self, case: impl Fn(u64, usize) -> Result<(), TestCaseError>) {
        let slots = self.scheme.slot_count();
        let mut runner = TestRunner::new(Config {
            cases: self.cases,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&(proptest::num::u64::ANY, 1..=slots), |(seed, len)| {
                case(seed, len)
            })
            .expect("law holds");
    }
}

fn f(v: &[impl SlotValue]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// Scale for a multiplication operand such that the product rescales back to
/// the default scale (CKKS); 1 for schemes without scales.
fn operand_scale<S: HeScheme>(s: &S) -> Scale {
    s.default_scale()
}

pub fn roundtrip<S: HeScheme>(c: &Ctx<S>) {
    c.run(|seed, len| {
        let a = c.values(seed, len);
        let ct = c.encrypt(&a, seed);
        assert_eq!(c.scheme.level(&ct), c.scheme.max_level());
        c.check("roundtrip", &c.decrypt(&ct), &f(&a))
    });
}

pub fn secret_key_encryption<S: HeScheme>(c: &Ctx<S>) {
    c.run(|seed, len| {
        let a = c.values(seed, len);
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5ec7e7);
        let pt = c
            .scheme
            .encode(&a, c.scheme.max_level(), c.scheme.default_scale())
            .unwrap();
        let ct = c.scheme.encrypt_secret(&c.sk, &pt, &mut rng).unwrap();
        assert_eq!(c.scheme.level(&ct), c.scheme.max_level());
        c.check("secret-key roundtrip", &c.decrypt(&ct), &f(&a))?;
        // A secret-key ciphertext is an ordinary one: it adds to a public-key one.
        let sum = c.scheme.add(&ct, &c.encrypt(&a, seed + 1)).unwrap();
        let twice: Vec<f64> = f(&a).iter().map(|x| 2.0 * x).collect();
        c.check("secret + public", &c.decrypt(&sum), &twice)
    });
}

pub fn lazy_squares_summed<S: HeScheme>(c: &Ctx<S>) {
    let top = c.scheme.max_level();
    if top.0 == 0 {
        return;
    }
    c.run(|seed, len| {
        let (a, b) = (c.values(seed, len), c.values(seed + 7, len));
        let (ca, cb) = (c.encrypt(&a, seed), c.encrypt(&b, seed + 8));
        // Relinearise once after summing unrelinearised products.
        let mut s = c.scheme.mul(&ca, &ca).unwrap();
        c.scheme
            .add_assign(&mut s, &c.scheme.mul(&cb, &cb).unwrap())
            .unwrap();
        c.scheme.relinearize_assign(&mut s, &c.keys).unwrap();
        c.scheme.rescale_assign(&mut s).unwrap();
        let expected: Vec<f64> = f(&a)
            .iter()
            .zip(f(&b))
            .map(|(x, y)| x * x + y * y)
            .collect();
        c.check("a^2 + b^2, one relinearisation", &c.decrypt(&s), &expected)
    });
}

pub fn add_sub_negate<S: HeScheme>(c: &Ctx<S>) {
    c.run(|seed, len| {
        let a = c.values(seed, len);
        let b = c.values(seed.wrapping_add(1), len);
        let (ca, cb) = (c.encrypt(&a, seed), c.encrypt(&b, seed + 1));
        let sum: Vec<f64> = f(&a).iter().zip(f(&b)).map(|(x, y)| x + y).collect();
        let diff: Vec<f64> = f(&a).iter().zip(f(&b)).map(|(x, y)| x - y).collect();
        c.check("add", &c.decrypt(&c.scheme.add(&ca, &cb).unwrap()), &sum)?;
        c.check("sub", &c.decrypt(&c.scheme.sub(&ca, &cb).unwrap()), &diff)?;
        let mut n = ca.clone();
        c.scheme.negate_assign(&mut n).unwrap();
        let neg: Vec<f64> = f(&a).iter().map(|x| -x).collect();
        c.check("negate", &c.decrypt(&n), &neg)?;
        let s = c.scheme.sum(&[&ca, &cb, &ca]).unwrap();
        let sum3: Vec<f64> = sum.iter().zip(f(&a)).map(|(x, y)| x + y).collect();
        c.check("sum", &c.decrypt(&s), &sum3)
    });
}

pub fn plain_ops<S: HeScheme>(c: &Ctx<S>) {
    c.run(|seed, len| {
        let a = c.values(seed, len);
        let b = c.values(seed.wrapping_add(7), len);
        let ca = c.encrypt(&a, seed);
        let top = c.scheme.max_level();
        let pt_add = c.scheme.encode(&b, top, c.scheme.default_scale()).unwrap();
        let sum: Vec<f64> = f(&a).iter().zip(f(&b)).map(|(x, y)| x + y).collect();
        c.check(
            "add_plain",
            &c.decrypt(&c.scheme.add_plain(&ca, &pt_add).unwrap()),
            &sum,
        )?;

        let k = S::Value::from_f64(0.5 * c.magnitude);
        let mut cs = ca.clone();
        c.scheme.add_scalar_assign(&mut cs, k).unwrap();
        let plus: Vec<f64> = (0..c.scheme.slot_count())
            .map(|i| f(&a).get(i).copied().unwrap_or(0.0) + k.to_f64())
            .collect();
        c.check("add_scalar", &c.decrypt(&cs), &plus)?;

        let pt_mul = c.scheme.encode(&b, top, operand_scale(&c.scheme)).unwrap();
        let mut prod = c.scheme.mul_plain(&ca, &pt_mul).unwrap();
        let expected_scale = c.scheme.default_scale() * operand_scale(&c.scheme);
        assert!(c.scheme.scale(&prod).approx_eq(expected_scale));
        if top.0 > 0 {
            c.scheme.rescale_assign(&mut prod).unwrap();
        }
        let p: Vec<f64> = f(&a).iter().zip(f(&b)).map(|(x, y)| x * y).collect();
        c.check("mul_plain", &c.decrypt(&prod), &p)?;

        let mut ms = c
            .scheme
            .mul_scalar(&ca, k, operand_scale(&c.scheme))
            .unwrap();
        if top.0 > 0 {
            c.scheme.rescale_assign(&mut ms).unwrap();
        }
        let kp: Vec<f64> = f(&a).iter().map(|x| x * k.to_f64()).collect();
        c.check("mul_scalar", &c.decrypt(&ms), &kp)
    });
}

pub fn mul_relin_rescale<S: HeScheme>(c: &Ctx<S>) {
    c.run(|seed, len| {
        let a = c.values(seed, len);
        let b = c.values(seed.wrapping_add(3), len);
        let (ca, cb) = (c.encrypt(&a, seed), c.encrypt(&b, seed + 3));
        let p: Vec<f64> = f(&a).iter().zip(f(&b)).map(|(x, y)| x * y).collect();
        let top = c.scheme.max_level();
        let mut m = c.scheme.mul(&ca, &cb).unwrap();
        c.scheme.relinearize_assign(&mut m, &c.keys).unwrap();
        c.check("mul+relin", &c.decrypt(&m), &p)?;
        if top.0 > 0 {
            let before = c.scheme.scale(&m);
            c.scheme.rescale_assign(&mut m).unwrap();
            assert_eq!(c.scheme.level(&m), Level(top.0 - 1));
            let q = c.scheme.rescale_divisor(top).unwrap();
            assert!(c.scheme.scale(&m).approx_eq(before / q));
            c.check("mul+relin+rescale", &c.decrypt(&m), &p)?;
            let m2 = c.scheme.mul_relin_rescale(&ca, &cb, &c.keys).unwrap();
            c.check("mul_relin_rescale", &c.decrypt(&m2), &p)?;
        }
        let sq = c.scheme.square_relin(&ca, &c.keys).unwrap();
        let a2: Vec<f64> = f(&a).iter().map(|x| x * x).collect();
        c.check("square", &c.decrypt(&sq), &a2)
    });
}

pub fn rotations<S: HeScheme>(c: &Ctx<S>) {
    let slots = c.scheme.slot_count();
    c.run(|seed, _len| {
        let a = c.values(seed, slots);
        let ca = c.encrypt(&a, seed);
        let af = f(&a);
        let rotated = |k: i64| -> Vec<f64> {
            let k = Rotation(k).normalized(slots);
            (0..slots).map(|i| af[(i + k) % slots]).collect()
        };
        for &step in &STEPS {
            let r = c.scheme.rotate(&ca, Rotation(step), &c.keys).unwrap();
            c.check(&format!("rotate {step}"), &c.decrypt(&r), &rotated(step))?;
        }
        let many = c
            .scheme
            .rotate_many(&ca, &[Rotation(1), Rotation(0), Rotation(-1)], &c.keys)
            .unwrap();
        c.check("rotate_many 1", &c.decrypt(&many[0]), &rotated(1))?;
        c.check("rotate_many 0", &c.decrypt(&many[1]), &af)?;
        c.check("rotate_many -1", &c.decrypt(&many[2]), &rotated(-1))?;
        let rs = c.scheme.rotate_and_sum(&ca, 4, &c.keys).unwrap();
        let expected: Vec<f64> = (0..slots)
            .map(|i| (0..4).map(|j| af[(i + j) % slots]).sum())
            .collect();
        c.check("rotate_and_sum 4", &c.decrypt(&rs), &expected)
    });
}

pub fn dot_products<S: HeScheme>(c: &Ctx<S>) {
    c.run(|seed, len| {
        let xs: Vec<Vec<S::Value>> = (0..3)
            .map(|i| c.values(seed.wrapping_add(i), len))
            .collect();
        let cts: Vec<S::Ciphertext> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| c.encrypt(x, seed + i as u64))
            .collect();
        let refs: Vec<&S::Ciphertext> = cts.iter().collect();
        let w: Vec<S::Value> = c.values(seed.wrapping_add(99), 3);
        let top = c.scheme.max_level();
        let mut d = c
            .scheme
            .dot_scalar(&refs, &w, operand_scale(&c.scheme))
            .unwrap();
        if top.0 > 0 {
            c.scheme.rescale_assign(&mut d).unwrap();
        }
        let expected: Vec<f64> = (0..len)
            .map(|i| (0..3).map(|t| xs[t][i].to_f64() * w[t].to_f64()).sum())
            .collect();
        c.check("dot_scalar", &c.decrypt(&d), &expected)?;
        let pts: Vec<S::Plaintext> = w
            .iter()
            .map(|&wi| {
                c.scheme
                    .encode(&vec![wi; len], top, operand_scale(&c.scheme))
                    .unwrap()
            })
            .collect();
        let prefs: Vec<&S::Plaintext> = pts.iter().collect();
        let mut dp = c.scheme.dot_plain(&refs, &prefs).unwrap();
        if top.0 > 0 {
            c.scheme.rescale_assign(&mut dp).unwrap();
        }
        c.check("dot_plain", &c.decrypt(&dp), &expected)?;
        // Several rows over one pool: row r uses inputs (r, r + 1) mod 3,
        // index 2 twice in the last row; equal to dot_scalar row by row.
        let rows: Vec<Vec<(usize, S::Value)>> = (0..3)
            .map(|r| vec![(r, w[r]), ((r + 1) % 3, w[(r + 2) % 3]), (2, w[0])])
            .collect();
        let many = c
            .scheme
            .dot_scalar_many(&refs, &rows, operand_scale(&c.scheme))
            .unwrap();
        assert_eq!(many.len(), 3);
        for (r, mut d) in many.into_iter().enumerate() {
            if top.0 > 0 {
                c.scheme.rescale_assign(&mut d).unwrap();
            }
            let want: Vec<f64> = (0..len)
                .map(|i| {
                    rows[r]
                        .iter()
                        .map(|&(t, wt)| xs[t][i].to_f64() * wt.to_f64())
                        .sum()
                })
                .collect();
            c.check("dot_scalar_many", &c.decrypt(&d), &want)?;
        }
        let bad = vec![vec![(3usize, w[0])]];
        assert!(
            c.scheme
                .dot_scalar_many(&refs, &bad, operand_scale(&c.scheme))
                .is_err()
        );
        Ok(())
    });
}

pub fn rescale_and_drop<S: HeScheme>(c: &Ctx<S>) {
    let top = c.scheme.max_level();
    if top.0 == 0 {
        return;
    }
    c.run(|seed, len| {
        let a = c.values(seed, len);
        let q = c.scheme.rescale_divisor(top).unwrap();
        let scale = c.scheme.default_scale() * Scale::new(q).unwrap();
        let mut ct = c.encrypt_at(&a, top, scale, seed);
        c.scheme.rescale_assign(&mut ct).unwrap();
        assert_eq!(c.scheme.level(&ct), Level(top.0 - 1));
        assert!(c.scheme.scale(&ct).approx_eq(c.scheme.default_scale()));
        c.check("rescale", &c.decrypt(&ct), &f(&a))?;
        let mut d = c.encrypt(&a, seed);
        c.scheme.drop_level_assign(&mut d, Level(0)).unwrap();
        assert_eq!(c.scheme.level(&d), Level(0));
        c.check("drop_level", &c.decrypt(&d), &f(&a))
    });
}

// ---- misuse ------------------------------------------------------------

pub fn rescale_at_level_zero<S: HeScheme>(c: &Ctx<S>) {
    let a = c.values(1, 4);
    let mut ct = c.encrypt(&a, 1);
    c.scheme.drop_level_assign(&mut ct, Level(0)).unwrap();
    let err = c.scheme.rescale_assign(&mut ct).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LevelExhausted {
                level: Level(0),
                ..
            }
        ),
        "{err}"
    );
}

pub fn rotation_without_key<S: HeScheme>(c: &Ctx<S>) {
    let ct = c.encrypt(&c.values(2, 4), 2);
    let err = c.scheme.rotate(&ct, Rotation(5), &c.keys).unwrap_err();
    assert!(
        matches!(err, Error::MissingRotationKey { step: Rotation(5) }),
        "{err}"
    );
    assert!(!c.keys.supports_rotation(Rotation(5)));
    assert!(c.keys.supports_rotation(Rotation(1)));
    assert!(c.keys.supports_rotation(Rotation(0)));
    let err = c.scheme.rotate(&ct, Rotation(1), &c.no_keys).unwrap_err();
    assert!(
        matches!(err, Error::MissingRotationKey { step: Rotation(1) }),
        "{err}"
    );
}

pub fn relinearize_without_key<S: HeScheme>(c: &Ctx<S>) {
    let ct = c.encrypt(&c.values(3, 4), 3);
    let mut m = c.scheme.mul(&ct, &ct).unwrap();
    let err = c.scheme.relinearize_assign(&mut m, &c.no_keys).unwrap_err();
    assert!(matches!(err, Error::MissingRelinearizationKey), "{err}");
    // A product must be relinearised before it is rotated or multiplied again.
    let err = c.scheme.rotate(&m, Rotation(1), &c.keys).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CiphertextSize {
                size: 3,
                expected: 2,
                ..
            }
        ),
        "{err}"
    );
    let err = c.scheme.mul(&m, &ct).unwrap_err();
    assert!(
        matches!(err, Error::CiphertextSize { size: 3, .. }),
        "{err}"
    );
}

pub fn mismatched_scales<S: HeScheme>(c: &Ctx<S>) {
    if c.scheme.default_scale() == Scale::ONE {
        return; // a scheme without scales cannot mismatch them
    }
    let a = c.values(4, 4);
    let ct = c.encrypt(&a, 4);
    let scaled = c
        .scheme
        .mul_scalar(&ct, S::Value::from_f64(1.0), c.scheme.default_scale())
        .unwrap();
    let err = c.scheme.add(&ct, &scaled).unwrap_err();
    assert!(matches!(err, Error::ScaleMismatch { .. }), "{err}");
    let pt = c
        .scheme
        .encode(
            &a,
            c.scheme.max_level(),
            Scale::from_log2(c.scheme.default_scale().log2() + 1.0),
        )
        .unwrap();
    let err = c.scheme.add_plain(&ct, &pt).unwrap_err();
    assert!(matches!(err, Error::ScaleMismatch { .. }), "{err}");
}

pub fn mismatched_levels<S: HeScheme>(c: &Ctx<S>) {
    let top = c.scheme.max_level();
    if top.0 == 0 {
        return;
    }
    let a = c.values(5, 4);
    let ct = c.encrypt(&a, 5);
    let mut low = ct.clone();
    c.scheme
        .drop_level_assign(&mut low, Level(top.0 - 1))
        .unwrap();
    let err = c.scheme.add(&ct, &low).unwrap_err();
    assert!(matches!(err, Error::LevelMismatch { .. }), "{err}");
    let err = c.scheme.mul(&ct, &low).unwrap_err();
    assert!(matches!(err, Error::LevelMismatch { .. }), "{err}");
    let err = c.scheme.drop_level_assign(&mut low, top).unwrap_err();
    assert!(matches!(err, Error::LevelOutOfRange { .. }), "{err}");
}

pub fn too_many_values<S: HeScheme>(c: &Ctx<S>) {
    let n = c.scheme.slot_count() + 1;
    let v = vec![S::Value::zero(); n];
    let err = c
        .scheme
        .encode(&v, c.scheme.max_level(), c.scheme.default_scale())
        .unwrap_err();
    assert!(
        matches!(err, Error::TooManyValues { given, slots } if given == n && slots == n - 1),
        "{err}"
    );
}

pub fn empty_dot_product<S: HeScheme>(c: &Ctx<S>) {
    let err = c
        .scheme
        .dot_scalar(&[], &[], c.scheme.default_scale())
        .unwrap_err();
    assert!(matches!(err, Error::EmptyOperands { .. }), "{err}");
    let ct = c.encrypt(&c.values(6, 4), 6);
    let err = c
        .scheme
        .dot_scalar(&[&ct], &[], c.scheme.default_scale())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::OperandCountMismatch {
                left: 1,
                right: 0,
                ..
            }
        ),
        "{err}"
    );
}

/// A second secret key (with public and evaluation keys) of the same backend.
pub struct OtherKeys<S: HeScheme> {
    pub sk: S::SecretKey,
    pub pk: S::PublicKey,
    pub keys: S::EvalKeys,
}

impl<S: HeScheme> OtherKeys<S> {
    pub fn new(scheme: &S, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sk = scheme.generate_secret_key(&mut rng).expect("secret key");
        let pk = scheme
            .generate_public_key(&sk, &mut rng)
            .expect("public key");
        let req = KeyRequirements::new()
            .with_relinearization()
            .with_rotations(STEPS.iter().map(|&s| Rotation(s)));
        let keys = scheme
            .generate_eval_keys(&sk, &req, &mut rng)
            .expect("eval keys");
        OtherKeys { sk, pk, keys }
    }
}

fn key_mismatch<T>(what: &str, r: Result<T, Error>, op: OpKind, expected: KeyId, found: KeyId) {
    match r {
        Err(Error::KeyMismatch {
            op: o,
            expected: e,
            found: f,
        }) => {
            assert_eq!(o, op, "{what}");
            assert_eq!((e, f), (expected, found), "{what}");
        }
        Err(other) => panic!("{what}: expected KeyMismatch, got {other}"),
        Ok(_) => panic!("{what}: expected KeyMismatch, got Ok"),
    }
}

/// Keys and ciphertexts carry the id of their secret key; two secret keys
/// have different ids; the id prints as hex and never as the key.
pub fn key_ids<S: HeScheme>(c: &Ctx<S>) {
    let s = &c.scheme;
    let id = s.secret_key_id(&c.sk);
    assert_eq!(s.public_key_id(&c.pk), id);
    assert_eq!(c.keys.key_id(), id);
    assert_eq!(c.no_keys.key_id(), id);
    let ct = c.encrypt(&c.values(7, 4), 7);
    assert_eq!(s.ciphertext_key_id(&ct), id);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let pt = s
        .encode(&c.values(7, 4), s.max_level(), s.default_scale())
        .unwrap();
    let ct = s.encrypt_secret(&c.sk, &pt, &mut rng).unwrap();
    assert_eq!(s.ciphertext_key_id(&ct), id);
    let sq = s.mul_relin(&ct, &ct, &c.keys).unwrap();
    assert_eq!(s.ciphertext_key_id(&sq), id);
    let other = OtherKeys::new(s, 0xd1ff);
    assert_ne!(s.secret_key_id(&other.sk), id);
    let hex = id.to_string();
    assert_eq!(hex.len(), 32);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
}

/// Another secret key's decryption, rotations, relinearisation, and
/// arithmetic mixing two keys' ciphertexts are `KeyMismatch`, never garbage.
pub fn wrong_secret_key<S: HeScheme>(c: &Ctx<S>) {
    let s = &c.scheme;
    let other = OtherKeys::new(s, 0xbad);
    let (mine, theirs) = (s.secret_key_id(&c.sk), s.secret_key_id(&other.sk));
    let a = c.values(8, 4);
    let x = c.encrypt(&a, 8);
    let pt = s.encode(&a, s.max_level(), s.default_scale()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let y = s.encrypt(&other.pk, &pt, &mut rng).unwrap();
    key_mismatch(
        "decrypt with another key",
        s.decrypt(&other.sk, &x),
        OpKind::Decrypt,
        theirs,
        mine,
    );
    key_mismatch(
        "rotate with another key set",
        s.rotate(&x, Rotation(1), &other.keys),
        OpKind::Rotation,
        theirs,
        mine,
    );
    let mut sq = s.mul(&x, &x).unwrap();
    key_mismatch(
        "relinearize with another key set",
        s.relinearize_assign(&mut sq, &other.keys),
        OpKind::Relinearize,
        theirs,
        mine,
    );
    key_mismatch(
        "add two keys' ciphertexts",
        s.add(&x, &y),
        OpKind::CtCtAdd,
        mine,
        theirs,
    );
    key_mismatch(
        "sub two keys' ciphertexts",
        s.sub(&x, &y),
        OpKind::CtCtAdd,
        mine,
        theirs,
    );
    key_mismatch(
        "mul two keys' ciphertexts",
        s.mul(&x, &y),
        OpKind::CtCtMul,
        mine,
        theirs,
    );
    let pts = [&pt, &pt];
    assert!(matches!(
        s.dot_plain(&[&x, &y], &pts),
        Err(Error::KeyMismatch { .. })
    ));
    let w = [S::Value::from_f64(1.0), S::Value::from_f64(1.0)];
    assert!(matches!(
        s.dot_scalar(&[&x, &y], &w, s.default_scale()),
        Err(Error::KeyMismatch { .. })
    ));
    // The refused operations left the operands intact.
    c.check("after refusals", &c.decrypt(&x), &f(&a)).unwrap();
}

/// Keys and ciphertexts of another parameter set (`other`) are refused with
/// `ParameterMismatch`: what `Server::new` checks its keys with, rotations,
/// decryption, and arithmetic.
pub fn wrong_parameters<S: HeScheme>(s: &S, other: &S) {
    let mine = OtherKeys::new(s, 0x9a8);
    assert!(s.check_eval_keys(&mine.keys).is_ok());
    let theirs = OtherKeys::new(other, 0x9a9);
    let err = s.check_eval_keys(&theirs.keys).unwrap_err();
    assert!(matches!(err, Error::ParameterMismatch { .. }), "{err}");
    let a: Vec<S::Value> = (0..4).map(|i| S::Value::from_f64(f64::from(i))).collect();
    let pt = s.encode(&a, s.max_level(), s.default_scale()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let x = s.encrypt(&mine.pk, &pt, &mut rng).unwrap();
    let err = s.rotate(&x, Rotation(1), &theirs.keys).unwrap_err();
    assert!(matches!(err, Error::ParameterMismatch { .. }), "{err}");
    let pt = other
        .encode(&a, other.max_level(), other.default_scale())
        .unwrap();
    let y = other.encrypt(&theirs.pk, &pt, &mut rng).unwrap();
    let err = s.decrypt(&mine.sk, &y).unwrap_err();
    assert!(matches!(err, Error::ParameterMismatch { .. }), "{err}");
    let err = s.decrypt(&theirs.sk, &x).unwrap_err();
    assert!(matches!(err, Error::ParameterMismatch { .. }), "{err}");
    let err = s.add(&x, &y).unwrap_err();
    assert!(matches!(err, Error::ParameterMismatch { .. }), "{err}");
}

/// Instantiates every law and misuse test for one backend.
///
/// `conformance_suite!(scheme_expr, tolerance = T, magnitude = M, cases = N);`
macro_rules! conformance_suite {
    ($scheme:expr, tolerance = $tol:expr, magnitude = $mag:expr, cases = $cases:expr $(,)?) => {
        #[allow(clippy::unwrap_used, clippy::expect_used)]
        fn ctx() -> &'static conformance::Ctx<impl mofhei::he::HeScheme> {
            static CTX: std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>> = std::sync::OnceLock::new();
            #[allow(clippy::unwrap_used, clippy::expect_used)]
            fn build() -> impl mofhei::he::HeScheme + 'static {
                $scheme
            }
            fn typed<S: mofhei::he::HeScheme + 'static>(
                _witness: fn() -> S,
                any: &'static (dyn std::any::Any + Send + Sync),
            ) -> &'static conformance::Ctx<S> {
                any.downcast_ref::<conformance::Ctx<S>>().expect("fixture type")
            }
            let any = CTX.get_or_init(|| Box::new(conformance::Ctx::new(build(), $tol, $mag, $cases)));
            typed(build, any.as_ref())
        }
        conformance_suite!(@tests roundtrip, secret_key_encryption, lazy_squares_summed, add_sub_negate, plain_ops, mul_relin_rescale, rotations,
            dot_products, rescale_and_drop, rescale_at_level_zero, rotation_without_key,
            relinearize_without_key, mismatched_scales, mismatched_levels, too_many_values, empty_dot_product,
            key_ids, wrong_secret_key);
    };
    ($scheme:expr, other = $other:expr, tolerance = $tol:expr, magnitude = $mag:expr, cases = $cases:expr $(,)?) => {
        conformance_suite!($scheme, tolerance = $tol, magnitude = $mag, cases = $cases);
        #[test]
        #[allow(clippy::unwrap_used, clippy::expect_used)]
        fn wrong_parameters() {
            conformance::wrong_parameters(&$scheme, &$other);
        }
    };
    (@tests $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                conformance::$name(ctx());
            }
        )*
    };
}

//! Backend-level tests: precision, slot order, key switching, errors.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::he::{HeScheme, KeyRequirements, Rotation};

pub(crate) fn small_params() -> CkksParams {
    CkksParams::builder()
        .log_n(13)
        .moduli_bits(&[60, 40, 40])
        .special_bits(&[60])
        .scale_bits(40)
        .build()
        .unwrap()
}

struct Setup {
    ckks: Ckks,
    sk: CkksSecretKey,
    pk: CkksPublicKey,
    keys: CkksEvalKeys,
    rng: ChaCha20Rng,
}

fn setup_with(params: CkksParams, steps: &[i64]) -> Setup {
    let ckks = Ckks::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let sk = ckks.generate_secret_key(&mut rng).unwrap();
    let pk = ckks.generate_public_key(&sk, &mut rng).unwrap();
    let req = KeyRequirements::new()
        .with_relinearization()
        .with_conjugation()
        .with_rotations(steps.iter().map(|&s| Rotation(s)));
    let keys = ckks.generate_eval_keys(&sk, &req, &mut rng).unwrap();
    Setup {
        ckks,
        sk,
        pk,
        keys,
        rng,
    }
}

impl Setup {
    /// `v` encoded at the top level and default scale, encrypted under `pk`.
    fn encrypt_fresh(&mut self, v: &[f64]) -> CkksCiphertext {
        let pt = self
            .ckks
            .encode(v, self.ckks.max_level(), self.ckks.default_scale())
            .unwrap();
        self.ckks.encrypt(&self.pk, &pt, &mut self.rng).unwrap()
    }
}

fn setup() -> Setup {
    setup_with(small_params(), &[1, 3, -1, 100])
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (rand::RngCore::next_u64(&mut rng) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        .collect()
}

/// Relative error ||got - want||_2 / ||want||_2, as log2.
fn rel_err_log2(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b).powi(2)).sum();
    let den: f64 = want.iter().map(|b| b * b).sum();
    (num / den).sqrt().log2()
}

fn max_err(got: &[f64], want: &[f64]) -> f64 {
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

#[test]
fn encrypt_decrypt_precision() {
    let mut s = setup();
    let v = values(s.ckks.slot_count(), 1);
    let pt = s
        .ckks
        .encode(&v, s.ckks.max_level(), s.ckks.default_scale())
        .unwrap();
    let back = s.ckks.decode(&pt).unwrap();
    assert!(
        rel_err_log2(&back, &v) < -33.0,
        "encode {}",
        rel_err_log2(&back, &v)
    );
    let ct = s.ckks.encrypt_secret(&s.sk, &pt, &mut s.rng).unwrap();
    let dec = s.ckks.decode(&s.ckks.decrypt(&s.sk, &ct).unwrap()).unwrap();
    let e_sym = rel_err_log2(&dec, &v);
    assert!(e_sym < -30.0, "symmetric {e_sym}");
    let ct = s.ckks.encrypt(&s.pk, &pt, &mut s.rng).unwrap();
    let dec = s.ckks.decode(&s.ckks.decrypt(&s.sk, &ct).unwrap()).unwrap();
    let e_pk = rel_err_log2(&dec, &v);
    // Public-key encryption divides by P, whose rounding error r0 + r1 s
    // (std about sqrt(N/18) = 21 at N = 2^13) bounds it near 2^-28.7, as in
    // SEAL (docs/performance.md); secret-key encryption meets 2^-30.
    assert!(e_pk < -28.5, "public {e_pk}");
    eprintln!("precision log2 rel: symmetric {e_sym:.2}, public {e_pk:.2}");
}

#[test]
fn mul_relin_rescale_precision() {
    let mut s = setup();
    let a = values(s.ckks.slot_count(), 2);
    let b = values(s.ckks.slot_count(), 3);
    let l = s.ckks.max_level();
    let sc = s.ckks.default_scale();
    let ca = s
        .ckks
        .encrypt(&s.pk, &s.ckks.encode(&a, l, sc).unwrap(), &mut s.rng)
        .unwrap();
    let cb = s
        .ckks
        .encrypt(&s.pk, &s.ckks.encode(&b, l, sc).unwrap(), &mut s.rng)
        .unwrap();
    let c = s.ckks.mul_relin_rescale(&ca, &cb, &s.keys).unwrap();
    assert_eq!(c.level, Level(1));
    let want: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
    let got = s.ckks.decode(&s.ckks.decrypt(&s.sk, &c).unwrap()).unwrap();
    let e = rel_err_log2(&got, &want);
    assert!(e < -20.0, "mul {e}");
    assert!(max_err(&got, &want) < 2f64.powi(-18));
    eprintln!("mul+relin+rescale log2 rel err {e:.2}");
    // unrelinearised product decrypts too
    let c3 = s.ckks.mul(&ca, &cb).unwrap();
    assert_eq!(c3.size(), 3);
    let got3 = s.ckks.decode(&s.ckks.decrypt(&s.sk, &c3).unwrap()).unwrap();
    assert!(rel_err_log2(&got3, &want) < -20.0);
}

#[test]
fn rotations_permute_slots() {
    let mut s = setup();
    let n = s.ckks.slot_count();
    let v = values(n, 4);
    let ct = s.encrypt_fresh(&v);
    let steps = [
        Rotation(1),
        Rotation(3),
        Rotation(-1),
        Rotation(100),
        Rotation(0),
    ];
    let many = s.ckks.rotate_many(&ct, &steps, &s.keys).unwrap();
    for (step, r) in steps.iter().zip(&many) {
        let single = s.ckks.rotate(&ct, *step, &s.keys).unwrap();
        let k = step.normalized(n);
        let mut want = v.clone();
        want.rotate_left(k);
        for got_ct in [r, &single] {
            let got = s
                .ckks
                .decode(&s.ckks.decrypt(&s.sk, got_ct).unwrap())
                .unwrap();
            let e = rel_err_log2(&got, &want);
            assert!(e < -25.0, "step {step}: {e}");
        }
    }
    let conj = s.ckks.conjugate(&ct, &s.keys).unwrap();
    let got = s
        .ckks
        .decode(&s.ckks.decrypt(&s.sk, &conj).unwrap())
        .unwrap();
    assert!(rel_err_log2(&got, &v) < -25.0);
}

#[test]
fn plain_and_scalar_ops() {
    let mut s = setup();
    let n = s.ckks.slot_count();
    let (a, b) = (values(n, 5), values(n, 6));
    let l = s.ckks.max_level();
    let sc = s.ckks.default_scale();
    let pa = s.ckks.encode(&a, l, sc).unwrap();
    let pb = s.ckks.encode(&b, l, sc).unwrap();
    let ca = s.ckks.encrypt(&s.pk, &pa, &mut s.rng).unwrap();
    let cb = s.ckks.encrypt(&s.pk, &pb, &mut s.rng).unwrap();
    let dec = |ct: &CkksCiphertext| s.ckks.decode(&s.ckks.decrypt(&s.sk, ct).unwrap()).unwrap();
    let check = |got: Vec<f64>, want: Vec<f64>| {
        let e = rel_err_log2(&got, &want);
        assert!(e < -20.0, "{e}");
    };
    check(
        dec(&s.ckks.add(&ca, &cb).unwrap()),
        a.iter().zip(&b).map(|(x, y)| x + y).collect(),
    );
    check(
        dec(&s.ckks.sub(&ca, &cb).unwrap()),
        a.iter().zip(&b).map(|(x, y)| x - y).collect(),
    );
    let mut neg = ca.clone();
    s.ckks.negate_assign(&mut neg).unwrap();
    check(dec(&neg), a.iter().map(|x| -x).collect());
    check(
        dec(&s.ckks.add_plain(&ca, &pb).unwrap()),
        a.iter().zip(&b).map(|(x, y)| x + y).collect(),
    );
    let mp = s
        .ckks
        .rescale(&s.ckks.mul_plain(&ca, &pb).unwrap())
        .unwrap();
    check(dec(&mp), a.iter().zip(&b).map(|(x, y)| x * y).collect());
    for c in [0.75, -3.25, 1e6, -1234.5] {
        let ms = s
            .ckks
            .rescale(&s.ckks.mul_scalar(&ca, c, sc).unwrap())
            .unwrap();
        check(dec(&ms), a.iter().map(|x| x * c).collect());
    }
    // a huge scalar scale (> 2^63 product) takes the split path
    let big = s
        .ckks
        .mul_scalar(&ca, -0.5, Scale::from_log2(30.0))
        .unwrap();
    check(dec(&big), a.iter().map(|x| x * -0.5).collect());
    let mut add = ca.clone();
    s.ckks.add_scalar_assign(&mut add, -2.5).unwrap();
    check(dec(&add), a.iter().map(|x| x - 2.5).collect());
    // dot products equal the sum of products
    let cts = [&ca, &cb, &ca];
    let pts = [&pb, &pa, &pa];
    let dp = s.ckks.dot_plain(&cts, &pts).unwrap();
    let want: Vec<f64> = (0..n)
        .map(|i| a[i] * b[i] + b[i] * a[i] + a[i] * a[i])
        .collect();
    check(dec(&s.ckks.rescale(&dp).unwrap()), want);
    let ds = s.ckks.dot_scalar(&cts, &[0.5, -2.0, 3.0], sc).unwrap();
    let want: Vec<f64> = (0..n)
        .map(|i| 0.5 * a[i] - 2.0 * b[i] + 3.0 * a[i])
        .collect();
    check(dec(&s.ckks.rescale(&ds).unwrap()), want);
    // drop level
    let mut dl = ca.clone();
    s.ckks.drop_level_assign(&mut dl, Level(0)).unwrap();
    check(dec(&dl), a.clone());
}

#[test]
fn errors_mirror_the_simulator() {
    let mut s = setup();
    let l = s.ckks.max_level();
    let sc = s.ckks.default_scale();
    let pt = s.ckks.encode(&[1.0], l, sc).unwrap();
    let ct = s.ckks.encrypt(&s.pk, &pt, &mut s.rng).unwrap();
    let mut low = ct.clone();
    s.ckks.drop_level_assign(&mut low, Level(1)).unwrap();
    assert!(matches!(
        s.ckks.add(&ct, &low),
        Err(Error::LevelMismatch { .. })
    ));
    let scaled = s.ckks.mul_scalar(&ct, 2.0, Scale::from_log2(3.0)).unwrap();
    assert!(matches!(
        s.ckks.add(&ct, &scaled),
        Err(Error::ScaleMismatch { .. })
    ));
    let c3 = s.ckks.mul(&ct, &ct).unwrap();
    assert!(matches!(
        s.ckks.mul(&c3, &ct),
        Err(Error::CiphertextSize {
            size: 3,
            expected: 2,
            ..
        })
    ));
    assert!(matches!(
        s.ckks.rotate(&c3, Rotation(1), &s.keys),
        Err(Error::CiphertextSize { .. })
    ));
    assert!(matches!(
        s.ckks.rotate(&ct, Rotation(2), &s.keys),
        Err(Error::MissingRotationKey { step: Rotation(2) })
    ));
    let mut two = ct.clone();
    assert!(matches!(
        s.ckks.relinearize_assign(&mut two, &s.keys),
        Err(Error::CiphertextSize { .. })
    ));
    let none = s
        .ckks
        .generate_eval_keys(&s.sk, &KeyRequirements::new(), &mut s.rng)
        .unwrap();
    let mut c3b = c3.clone();
    assert!(matches!(
        s.ckks.relinearize_assign(&mut c3b, &none),
        Err(Error::MissingRelinearizationKey)
    ));
    let mut zero = ct.clone();
    s.ckks.drop_level_assign(&mut zero, Level(0)).unwrap();
    assert!(matches!(
        s.ckks.rescale(&zero),
        Err(Error::LevelExhausted { .. })
    ));
    let too_many = vec![0.0; s.ckks.slot_count() + 1];
    assert!(matches!(
        s.ckks.encode(&too_many, l, sc),
        Err(Error::TooManyValues { .. })
    ));
    assert!(matches!(
        s.ckks.encode(&[1.0], Level(9), sc),
        Err(Error::LevelOutOfRange { .. })
    ));
    assert!(matches!(
        s.ckks.encode(&[1e30], Level(0), sc),
        Err(Error::ScaleOverflow { .. })
    ));
    assert!(matches!(
        s.ckks.mul(&zero, &zero),
        Err(Error::ScaleOverflow { .. })
    ));
    // another parameter set's objects are refused
    let other =
        Ckks::new(CkksParams::insecure_for_tests(12, &[50, 40], &[50], 30).unwrap()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let sk2 = other.generate_secret_key(&mut rng).unwrap();
    assert!(matches!(
        s.ckks.decrypt(&sk2, &ct),
        Err(Error::ParameterMismatch { .. })
    ));
    assert_eq!(format!("{:?}", s.sk), "SecretKey(..)");
}

#[test]
fn several_special_primes() {
    // K = 2: digits of two primes each, last digit partial.
    let params = CkksParams::insecure_for_tests(12, &[50, 40, 40, 40, 40], &[50, 50], 40).unwrap();
    let mut s = setup_with(params, &[1]);
    let n = s.ckks.slot_count();
    let v = values(n, 8);
    let ct = s.encrypt_fresh(&v);
    let sq = s.ckks.mul_relin_rescale(&ct, &ct, &s.keys).unwrap();
    let rot = s.ckks.rotate(&sq, Rotation(1), &s.keys).unwrap();
    let mut want: Vec<f64> = v.iter().map(|x| x * x).collect();
    want.rotate_left(1);
    let got = s
        .ckks
        .decode(&s.ckks.decrypt(&s.sk, &rot).unwrap())
        .unwrap();
    assert!(
        rel_err_log2(&got, &want) < -20.0,
        "{}",
        rel_err_log2(&got, &want)
    );
    // and at a lower level, where the last digit is partial
    let mut low = sq.clone();
    s.ckks.drop_level_assign(&mut low, Level(2)).unwrap();
    let rot = s.ckks.rotate(&low, Rotation(1), &s.keys).unwrap();
    let got = s
        .ckks
        .decode(&s.ckks.decrypt(&s.sk, &rot).unwrap())
        .unwrap();
    assert!(rel_err_log2(&got, &want) < -20.0);
}

#[test]
fn mod_down_rounds_to_nearest() {
    let ckks = Ckks::new(small_params()).unwrap();
    let ring = &*ckks.ring;
    let n = ring.n;
    let l = 1;
    let basis = ring.extended_basis(l);
    let p = ring.moduli[ring.special(0)].value() as i128;
    // coefficient 0: 5P + P/2 + 3 -> 6; coefficient 1: -(5P + P/2 + 3) -> -6;
    // coefficient 2: 7P + P/2 - 3 -> 7.
    let vals: [i128; 3] = [5 * p + p / 2 + 3, -(5 * p + p / 2 + 3), 7 * p + p / 2 - 3];
    let mut x = vec![0u64; basis.len() * n];
    for (limb, &pi) in x.chunks_mut(n).zip(&basis) {
        let q = ring.moduli[pi].value() as i128;
        for (k, v) in vals.iter().enumerate() {
            limb[k] = v.rem_euclid(q) as u64;
        }
        ring.forward(pi, limb);
    }
    let mut y = ckks.mod_down(x, l);
    ring.inverse_all(&mut y, &[0, 1]);
    let m = ckks.centred_coeffs(&y, l);
    assert_eq!(&m[..4], &[6.0, -6.0, 7.0, 0.0]);
}

#[test]
fn mod_down_matches_crt_reference() {
    use rand::Rng;
    let ckks = Ckks::new(small_params()).unwrap();
    let ring = &*ckks.ring;
    let n = ring.n;
    let basis = ring.extended_basis(0);
    let (q, p) = (
        ring.moduli[0].value() as i128,
        ring.moduli[basis[1]].value() as i128,
    );
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let coeffs: Vec<i128> = (0..n).map(|_| rng.random_range(0..q * p)).collect();
    let mut x = vec![0u64; 2 * n];
    for (limb, &pi) in x.chunks_mut(n).zip(&basis) {
        let m = ring.moduli[pi].value() as i128;
        for (o, c) in limb.iter_mut().zip(&coeffs) {
            *o = (c % m) as u64;
        }
        ring.forward(pi, limb);
    }
    let mut y = ckks.mod_down(x, 0);
    ring.inverse_all(&mut y, &[0]);
    let mut bad = 0;
    for (k, c) in coeffs.iter().enumerate() {
        let centred = if *c > q * p / 2 { c - q * p } else { *c };
        let want = (centred + (p - 1) / 2).div_euclid(p);
        if want.rem_euclid(q) as u64 != y[k] {
            bad += 1;
        }
    }
    assert_eq!(bad, 0);
}

/// `dot_scalar_many` equals the sum of single `mul_scalar`s, bit for bit, on
/// every multiply-accumulate path: 31-bit primes (split 64-bit lanes),
/// 50-bit primes (four partial products in 64-bit lanes) and 58-bit primes
/// (128-bit accumulators); 40 terms per row exceed one lazy reduction
/// chunk, one ciphertext of size 3 mixes component counts.
#[test]
fn blocked_mac_matches_term_by_term_on_every_path() {
    for moduli in [&[50u32, 31, 31][..], &[50, 50][..], &[58, 58][..]] {
        let params = CkksParams::insecure_for_tests(11, moduli, &[55], 30).unwrap();
        let mut s = setup_with(params, &[]);
        let slots = s.ckks.slot_count();
        let top = s.ckks.max_level();
        let scale = s.ckks.default_scale();
        let mut cts: Vec<CkksCiphertext> = (0..6)
            .map(|i| {
                let pt = s.ckks.encode(&values(slots, i), top, scale).unwrap();
                s.ckks.encrypt_secret(&s.sk, &pt, &mut s.rng).unwrap()
            })
            .collect();
        // One size-3 input at the squared scale would not match the others'
        // scale; give it the same scale by squaring a scale-1 ciphertext.
        let one = Scale::new(1.0).unwrap();
        let pt = s.ckks.encode(&values(slots, 9), top, one).unwrap();
        let c = s.ckks.encrypt_secret(&s.sk, &pt, &mut s.rng).unwrap();
        let mut sq = s.ckks.mul(&c, &c).unwrap();
        sq.scale = scale;
        cts.push(sq);
        let refs: Vec<&CkksCiphertext> = cts.iter().collect();
        let w_scale = Scale::from_log2(20.0);
        let rows: Vec<Vec<(usize, f64)>> = (0..3)
            .map(|r| {
                (0..40)
                    .map(|t| ((r + 3 * t) % 7, ((r * 40 + t) as f64 * 0.37).sin()))
                    .collect()
            })
            .collect();
        let many = s.ckks.dot_scalar_many(&refs, &rows, w_scale).unwrap();
        for (row, got) in rows.iter().zip(&many) {
            let terms: Vec<&CkksCiphertext> = row.iter().map(|&(i, _)| refs[i]).collect();
            let mut want = s.ckks.mul_scalar(terms[0], row[0].1, w_scale).unwrap();
            for (t, &(_, w)) in terms.iter().zip(row).skip(1) {
                let p = s.ckks.mul_scalar(t, w, w_scale).unwrap();
                s.ckks.add_assign(&mut want, &p).unwrap();
            }
            assert_eq!(got.polys, want.polys, "moduli {moduli:?}");
            assert_eq!(got.level, want.level);
        }
    }
}

//! What a downstream crate does: write code generic over `S: HeScheme`, run it
//! on `Counted<Sim>` and read the counts (also as JSON).
use mofhei::he::sim::{Sim, SimParams};
use mofhei::he::{Counted, HeScheme, KeyRequirements, Level, OpCounts, OpKind, Rotation};
use rand::SeedableRng;

/// x -> (x * 3)^2 summed over pairs of slots, generic over the backend.
fn my_model<S: HeScheme>(
    s: &S,
    keys: &S::EvalKeys,
    x: &S::Ciphertext,
) -> mofhei::he::Result<S::Ciphertext> {
    let three = <S::Value as mofhei::he::SlotValue>::from_f64(3.0);
    let mut y = s.mul_scalar(x, three, s.default_scale())?;
    s.rescale_assign(&mut y)?;
    let y = s.mul_relin_rescale(&y, &y, keys)?;
    s.rotate_and_sum(&y, 2, keys)
}

#[test]
fn generic_function_runs_on_counted_sim_and_reads_counts() {
    let s = Counted::new(Sim::new(SimParams::new(16, &[60, 40, 40], 40).unwrap()));
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let sk = s.generate_secret_key(&mut rng).unwrap();
    let pk = s.generate_public_key(&sk, &mut rng).unwrap();
    let req = KeyRequirements::new()
        .with_relinearization()
        .with_rotations([Rotation(1)]);
    let keys = s.generate_eval_keys(&sk, &req, &mut rng).unwrap();
    let x: Vec<f64> = (0..16).map(|i| i as f64 / 16.0).collect();
    let ct = s
        .encrypt(
            &pk,
            &s.encode(&x, s.max_level(), s.default_scale()).unwrap(),
            &mut rng,
        )
        .unwrap();
    let out = my_model(&s, &keys, &ct).unwrap();
    assert_eq!(s.level(&out), Level(0));
    let got = s.decode(&s.decrypt(&sk, &out).unwrap()).unwrap();
    let expect0 = (3.0 * x[0]).powi(2) + (3.0 * x[1]).powi(2);
    assert!((got[0] - expect0).abs() < 1e-9);

    let counts = s.counts();
    assert_eq!(counts.get(OpKind::CtScalarMul), 1);
    assert_eq!(counts.get(OpKind::CtCtMul), 1);
    assert_eq!(counts.get(OpKind::Relinearize), 1);
    assert_eq!(counts.get(OpKind::Rescale), 2);
    assert_eq!(counts.get(OpKind::Rotation), 1);
    assert_eq!(counts.get(OpKind::CtCtAdd), 1);
    assert_eq!(counts.by_level[&2][&OpKind::CtScalarMul], 1);
    assert_eq!(counts.by_level[&1][&OpKind::CtCtMul], 1);
    let back: OpCounts = serde_json::from_str(&counts.to_json()).unwrap();
    assert_eq!(back, counts);
    // A level-exhausted misuse is an error, not a panic, and is not counted.
    let err = s.rescale(&out).unwrap_err();
    assert!(matches!(err, mofhei::he::Error::LevelExhausted { .. }));
    assert_eq!(s.counts().get(OpKind::Rescale), 2);
}

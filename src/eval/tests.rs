//! End-to-end tests on the simulator (the plan-level suite of
//! [`crate::conformance`] on `Sim` and on CKKS at toy sizes, larger
//! networks, bad input) and CKKS's TenSEAL bar.

use std::sync::Arc;

use super::*;
use crate::compile::{CompileOptions, compile};
use crate::conformance::{Outcome, PlanSuite, diff, mlp, packings, zero_blocks};
use crate::error::Error;
use crate::he::sim::Sim;
use crate::he::{Counted, HeScheme, KeyRequirements, OpKind};
use crate::model::{Layer, Network, Tensor};
use crate::packing::{Batch, BlockShape, Diagonal, Packing, Tile};
use crate::plan::Plan;
use crate::testutil::*;

/// The simulator for a plan, `slots` slots.
fn sim_factory(plan: &Plan, slots: usize) -> crate::Result<Sim> {
    Ok(Sim::new(plan.params().sim_params(slots)?))
}

/// The simulator is exact up to rounding each scalar/plaintext at scale
/// 2^32, so outputs agree to ~1e-8 relative; 1e-6 of the largest reference
/// magnitude is allowed.
const SIM_TOLERANCE: f64 = 1e-6;

/// Runs `net` under `packing` on the simulator and checks it against the
/// reference and the plan's op counts ([`PlanSuite::check`]).
fn check(net: &Network, packing: &dyn Packing, slots: usize, n: usize) -> Outcome {
    PlanSuite::new(sim_factory, SIM_TOLERANCE).check(net, packing, slots, n)
}

/// The plan-level suite on the simulator (also run, with `Counted<Sim>`,
/// CKKS and BFV, by tests/plan_conformance.rs with the `conformance`
/// feature).
mod plan_suite_sim {
    use super::{SIM_TOLERANCE, sim_factory};
    crate::plan_conformance_suite!(sim_factory, tolerance = SIM_TOLERANCE);
}

/// CKKS at insecure toy ring sizes (fast): `2^log_n >= 2 slots`, at least
/// 2^4; tolerance 1e-3 of the largest reference magnitude (scale 2^32,
/// N <= 2^7: CKKS noise ~2^-20 relative per op, flooded decryption).
fn ckks_factory(plan: &Plan, slots: usize) -> crate::Result<crate::he::ckks::Ckks> {
    use crate::he::ckks::{Ckks, CkksParams};
    let c = plan.params();
    let log_n = (2 * slots).next_power_of_two().trailing_zeros().max(4);
    let params =
        CkksParams::insecure_for_tests(log_n, &c.moduli_bits, &c.special_bits, c.scale_bits)?;
    Ok(Ckks::new(params)?)
}

mod plan_suite_ckks {
    use super::ckks_factory;
    crate::plan_conformance_suite!(ckks_factory, tolerance = 1e-3);
}

#[test]
fn lenet_batch_matches_plaintext() {
    let net = lenet(&mut rng(21));
    let o = check(&net, &Batch, 4, 4);
    // conv, act, conv, act, conv, act, dense, x^2, dense: pools and the
    // polynomial coefficients cost no level.
    assert_eq!(o.plan.depth(), 9);
}

#[test]
fn lenet_tile_matches_plaintext() {
    let net = lenet(&mut rng(22));
    check(&net, &Tile::new(32, 64, 1).unwrap(), 2048, 1);
}

#[test]
fn refuses_missing_rotation_key_before_any_ciphertext() {
    let net = mlp(3);
    let plan = compile(
        &net,
        &Tile::new(4, 4, 1).unwrap(),
        &CompileOptions::default(),
    )
    .unwrap();
    let sim = Arc::new(Counted::new(sim_for(&plan, 32)));
    let mut r = rng(1);
    let sk = sim.generate_secret_key(&mut r).unwrap();
    let keys = sim
        .generate_eval_keys(&sk, &KeyRequirements::new().with_relinearization(), &mut r)
        .unwrap();
    let err = Server::new(sim.clone(), plan.clone(), keys).err().unwrap();
    assert!(matches!(err, Error::MissingRotationKey { .. }), "{err}");
    let keys = sim
        .generate_eval_keys(&sk, &KeyRequirements::new(), &mut r)
        .unwrap();
    let err = Server::new(sim.clone(), plan.clone(), keys).err().unwrap();
    assert!(matches!(err, Error::MissingRelinearizationKey), "{err}");
    let c = sim.counts();
    assert_eq!(c.homomorphic_total(), 0);
}

#[test]
fn refuses_keys_of_other_parameters_and_inputs_of_another_client() {
    let net = mlp(3);
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let sim = Arc::new(sim_for(&plan, 8));
    let mut bits = plan.params().moduli_bits.clone();
    bits.push(40);
    let other = Arc::new(Sim::new(
        crate::he::sim::SimParams::new(8, &bits, 32).unwrap(),
    ));
    let mut r = rng(5);
    // Evaluation keys made for another parameter set.
    let (_, other_keys) = Client::new(other.clone(), &plan, &mut r).unwrap();
    let err = Server::new(sim.clone(), plan.clone(), other_keys)
        .err()
        .unwrap();
    assert!(matches!(err, Error::ParameterMismatch { .. }), "{err}");
    // A server holding client A's keys refuses client B's ciphertexts.
    let (a, keys_a) = Client::new(sim.clone(), &plan, &mut r).unwrap();
    let (b, _) = Client::new(sim.clone(), &plan, &mut r).unwrap();
    let server = Server::new(sim.clone(), plan.clone(), keys_a).unwrap();
    let x = Tensor::new(vec![2, 16], vec![0.25; 32]).unwrap();
    let err = server.run(b.encrypt(&x, &mut r).unwrap()).err().unwrap();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    // ... and A's output does not decrypt under B's key.
    let (out, _) = server.run(a.encrypt(&x, &mut r).unwrap()).unwrap();
    let err = b.decrypt(&out).err().unwrap();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    assert!(a.decrypt(&out).is_ok());
}

#[test]
fn refuses_too_few_levels_and_slots() {
    let net = mlp(3);
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let mut bits = plan.params().moduli_bits.clone();
    bits.pop();
    let sim = Arc::new(Sim::new(
        crate::he::sim::SimParams::new(8, &bits, 32).unwrap(),
    ));
    let err = Client::new(sim.clone(), &plan, &mut rng(1)).err().unwrap();
    assert!(matches!(err, Error::LevelOutOfRange { .. }), "{err}");
    let diag = compile(&net, &Diagonal, &CompileOptions::default()).unwrap();
    let sim = Arc::new(sim_for(&diag, 8));
    let err = Client::new(sim.clone(), &diag, &mut rng(1)).err().unwrap();
    assert!(matches!(err, Error::InvalidParameter { .. }), "{err}");
}

#[test]
fn refuses_wrong_input_shape_and_too_many_samples() {
    let net = mlp(3);
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let sim = Arc::new(sim_for(&plan, 8));
    let mut r = rng(1);
    let (client, _) = Client::new(sim.clone(), &plan, &mut r).unwrap();
    let x = rand_tensor(&mut r, vec![2, 15], 1.0);
    assert!(matches!(
        client.encrypt(&x, &mut r),
        Err(Error::ShapeMismatch { .. })
    ));
    let x = rand_tensor(&mut r, vec![9, 16], 1.0);
    assert!(matches!(
        client.encrypt(&x, &mut r),
        Err(Error::TooManyValues { given: 9, slots: 8 })
    ));
    let x = rand_tensor(&mut r, vec![16], 1.0);
    assert!(client.encrypt(&x, &mut r).is_err());
}

#[test]
fn peak_memory_and_timings_are_reported() {
    let net = mlp(4);
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let sim = Arc::new(sim_for(&plan, 8));
    let mut r = rng(1);
    let (client, keys) = Client::new(sim.clone(), &plan, &mut r).unwrap();
    let server = Server::new(sim.clone(), plan.clone(), keys).unwrap();
    let x = rand_tensor(&mut r, vec![3, 16], 1.0);
    let (_, report) = server.run(client.encrypt(&x, &mut r).unwrap()).unwrap();
    assert!(report.peak_rss_bytes.unwrap_or(1) > 0);
    let kinds: Vec<&str> = report.layers.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(kinds, vec!["dense", "square", "dense", "poly", "dense"]);
    assert!(report.peak_live <= 16 + 8 + 16);
    assert!(report.counts.is_none());
}

/// Depth, ring size and the main operation counts of a plan, for the logs.
fn summary(plan: &Plan) -> String {
    let c = plan.counts();
    format!(
        "depth {} log_n {} rot {} ptmul {} add {} plains {}",
        plan.depth(),
        plan.params().log_n,
        c.get(OpKind::Rotation),
        c.get(OpKind::CtPtMul),
        c.get(OpKind::CtCtAdd),
        plan.plains().len()
    )
}

#[test]
fn zoo_networks_under_tile_and_batch() {
    use crate::model::{Activation, zoo};
    let t = zoo::tenseal_mnist(3);
    let o = check(&t, &Tile::new(64, 64, 1).unwrap(), 4096, 1);
    eprintln!("tenseal tile 64x64: {}", summary(&o.plan));
    // Client-side patches (im2col) for the convolution: no mask, depth 5.
    let tile = Tile::new(256, 16, 1).unwrap().with_client_patches();
    let o = check(&t, &tile, 4096, 1);
    assert_eq!(o.plan.depth(), 5);
    assert_eq!(o.plan.input_layout().cts.len(), 49);
    eprintln!("tenseal tile 256x16 + patches: {}", summary(&o.plan));
    let l = lenet(&mut rng(8));
    check(
        &l,
        &Tile::new(64, 32, 1).unwrap().with_client_patches(),
        2048,
        1,
    );
    let m = zoo::mlp(&[64, 32, 10], Activation::Square, 2).unwrap();
    for (p, slots, n) in packings() {
        check(&m, p.as_ref(), slots, n);
    }
}

#[test]
fn streamed_inputs_give_the_same_outputs_with_fewer_live_ciphertexts() {
    let dense = compile(&lenet(&mut rng(31)), &Batch, &CompileOptions::default()).unwrap();
    assert!(dense.peak_live_streamed() <= dense.peak_live());
    // MOFHEI's 90% LeNet (units 1/2/16/9): the 1024 inputs dominate the
    // live set unless they are streamed in.
    let mut net = lenet(&mut rng(31));
    keep_units(&mut net, &[(0, 1), (3, 2), (6, 16), (9, 9)]);
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    eprintln!(
        "live: dense {} / streamed {}; pruned {} / streamed {}",
        dense.peak_live(),
        dense.peak_live_streamed(),
        plan.peak_live(),
        plan.peak_live_streamed()
    );
    assert!(plan.peak_live() >= 1024);
    assert!(plan.peak_live_streamed() * 2 < plan.peak_live());
    let sim = Arc::new(Counted::new(sim_for(&plan, 2)));
    let mut r = rng(2);
    let (client, keys) = Client::new(sim.clone(), &plan, &mut r).unwrap();
    let server = Server::new(sim.clone(), plan.clone(), keys).unwrap();
    let x = rand_tensor(&mut r, vec![2, 1, 32, 32], 1.0);
    let src = client.input_source(&x, &mut r).unwrap();
    let _ = sim.take_counts();
    let (out, report) = server.run_streamed(src.samples(), |j| src.get(j)).unwrap();
    let counts = sim.take_counts();
    assert_eq!(counts.get(OpKind::Encrypt), 1024);
    let mut he = counts.clone();
    he.total.retain(|k, _| k.is_homomorphic());
    let mut want = plan.counts().clone();
    want.total.retain(|k, _| k.is_homomorphic());
    assert_eq!(he.total, want.total);
    assert_eq!(report.peak_live, plan.peak_live_streamed());
    let y = client.decrypt(&out).unwrap();
    let (y2, _) = server
        .run(client.encrypt(&x, &mut r).unwrap())
        .map(|(o, rep)| (client.decrypt(&o).unwrap(), rep))
        .unwrap();
    assert_eq!(y, y2);
    let want = forward(&net, &x);
    for (s, w) in want.iter().enumerate() {
        for (k, b) in w.iter().enumerate() {
            let a = f64::from(y.data()[s * 10 + k]);
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()));
        }
    }
}

/// TenSEAL's bar on CKKS: every logit within 0.1% of the largest magnitude.
#[test]
fn ckks_tenseal_net() {
    use crate::he::ckks::{Ckks, CkksParams};
    let t = crate::model::zoo::tenseal_mnist(4);
    let tile = Tile::new(256, 16, 1).unwrap().with_client_patches();
    let plan = compile(&t, &tile, &CompileOptions::default()).unwrap();
    let c = plan.params();
    let params =
        CkksParams::insecure_for_tests(13, &c.moduli_bits, &c.special_bits, c.scale_bits).unwrap();
    let he = Arc::new(Ckks::new(params).unwrap());
    let mut r = rng(77);
    let (mut client, keys) = Client::new(he.clone(), &plan, &mut r).unwrap();
    // TenSEAL's bar is for exact decryption: at N = 2^13 the default
    // flooding (2^8 x the output noise) costs more than 0.1% of the largest
    // logit (measured: 0.25e-2 absolute), so this check decrypts exactly.
    client.set_flooding(None);
    let server = Server::new(he, plan, keys).unwrap();
    let mut shape = vec![1];
    shape.extend_from_slice(&t.input_shape);
    let x = rand_tensor(&mut r, shape, 1.0);
    let (out, _) = server.run(client.encrypt(&x, &mut r).unwrap()).unwrap();
    let y = client.decrypt(&out).unwrap();
    let want = forward(&t, &x);
    let max = want[0].iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (&a, b) in y.data().iter().zip(&want[0]) {
        assert!(
            (f64::from(a) - b).abs() <= 1e-3 * max,
            "tenseal: {a} vs {b}"
        );
    }
}

mod interleaved;
mod wire;

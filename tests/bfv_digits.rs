//! A quantised MLP on the digits set under BFV, compiled by the library's
//! compiler (`compile_quantized`, batch packing: one sample per slot, all
//! test samples in one batch, one ciphertext per feature) and run by its
//! evaluator (`Client` / `Server` on `Bfv`). Checks (issue 8): the encrypted
//! outputs equal the quantised plaintext forward pass exactly (so the
//! predictions do), the quantised accuracy is within two points of the float
//! model's, and a plaintext modulus too small for the accumulators is
//! refused with an error naming the layer, at compile time and by the
//! evaluator. 128-bit parameters chosen by the backend (`Bfv::for_plan`:
//! N = 8192).
#![cfg(feature = "bfv")]
#![allow(clippy::unwrap_used, reason = "test set-up helpers")]

use std::time::Instant;

use mofhei::Error;
use mofhei::compile::{CompileOptions, compile_quantized};
use mofhei::data::Dataset;
use mofhei::eval::{Client, Server};
use mofhei::he::bfv::{Bfv, smallest_simd_plaintext_modulus};
use mofhei::he::{HeScheme, Level};
use mofhei::model::{Activation, Network, zoo};
use mofhei::packing::Batch;
use mofhei::quant::{QuantConfig, QuantizedNetwork};
use mofhei::train::{self, NoProgress, TrainConfig, Trainer};
use rand::SeedableRng;

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv { (i, x) } else { (bi, bv) }
        })
        .0
}

/// Ring degree of the 128-bit set used here.
const DEGREE: usize = 8192;

fn trained_mlp(train_set: &Dataset) -> Network {
    let mut net = zoo::mlp(&[64, 16, 10], Activation::Square, 2).unwrap();
    let mut trainer = Trainer::new(TrainConfig {
        epochs: 30,
        batch_size: 32,
        lr: 3e-3,
        seed: 3,
        ..TrainConfig::default()
    });
    trainer
        .fit(&mut net, train_set, None, &mut NoProgress)
        .unwrap();
    net
}

/// Inputs are in [0, 1]; 5-bit weights and inputs keep every accumulator of
/// 64-16-10 with a square below 2^32.
fn quant_config() -> QuantConfig {
    QuantConfig {
        weight_bits: 5,
        input_bits: 5,
        ..QuantConfig::int8(1.0)
    }
}

#[test]
fn quantised_mlp_on_digits_compiled_and_run_under_bfv() {
    let data = Dataset::digits_8x8().flatten();
    let (train_set, test_set) = data.split(0.25, 1).unwrap();
    let net = trained_mlp(&train_set);
    let float_acc = train::accuracy(&net, &test_set).unwrap();
    let q = QuantizedNetwork::quantize(&net, &quant_config()).unwrap();

    // The plaintext modulus: the smallest SIMD prime above the computed bound.
    let t = q.simd_plaintext_modulus(DEGREE).unwrap();
    let n = test_set.len();
    let opts = CompileOptions {
        min_slots: n,
        plaintext_modulus: Some(t),
        ..CompileOptions::default()
    };
    let plan = compile_quantized(&q, &Batch, &opts).unwrap();
    let integer = plan.integer().unwrap();
    assert_eq!(
        integer.min_plaintext_modulus().unwrap(),
        q.min_plaintext_modulus().unwrap()
    );
    // Dense (1 level), square (1), dense (1).
    assert_eq!(plan.depth(), 3);
    eprintln!("{plan}");

    let he = std::sync::Arc::new(Bfv::for_plan(&plan).unwrap());
    assert_eq!(he.max_level(), Level(plan.depth()));
    assert_eq!(he.params().degree(), DEGREE);
    assert_eq!(he.params().plaintext_modulus(), t);
    assert!(n <= he.slot_count());

    // Encrypted, through the library's evaluator.
    let started = Instant::now();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
    let (client, keys) = Client::new(he.clone(), &plan, &mut rng).unwrap();
    let server = Server::new(he.clone(), plan.clone(), keys).unwrap();
    let input = client.encrypt(test_set.inputs(), &mut rng).unwrap();
    let (out, report) = server.run(input).unwrap();
    let enc_ints: Vec<Vec<i64>> = client.decrypt_values(&out).unwrap();
    let enc_real = client.decrypt(&out).unwrap();
    let total = started.elapsed();

    // Plaintext integer forward pass of the same quantised network.
    let labels = test_set.labels().unwrap();
    let plain_ints: Vec<Vec<i64>> = test_set
        .inputs()
        .data()
        .chunks(64)
        .map(|x| q.forward(&q.quantize_input(x).unwrap()).unwrap())
        .collect();
    let plain_pred: Vec<usize> = plain_ints
        .iter()
        .map(|o| argmax(&q.dequantize_output(o)))
        .collect();
    let exact = enc_ints
        .iter()
        .zip(&plain_ints)
        .filter(|(a, b)| a == b)
        .count();
    assert_eq!(
        exact, n,
        "every encrypted output equals the integer forward pass"
    );
    assert_eq!(enc_ints, plain_ints);
    // The client's real outputs are the dequantised integers.
    let enc_pred: Vec<usize> = enc_real.data().chunks(10).map(argmax).collect();
    for (row, ints) in enc_real.data().chunks(10).zip(&plain_ints) {
        assert_eq!(row, q.dequantize_output(ints).as_slice());
    }
    assert_eq!(enc_pred, plain_pred);

    let correct = |pred: &[usize]| pred.iter().zip(labels).filter(|(p, l)| p == l).count();
    let quant_acc = correct(&plain_pred) as f32 / n as f32;
    let enc_acc = correct(&enc_pred) as f32 / n as f32;
    eprintln!(
        "digits MLP 64-16-10 (square), {n} test samples: float {float_acc:.4}, quantised (5-bit) {quant_acc:.4}, encrypted {enc_acc:.4} ({exact}/{n} outputs exact); BFV N = {DEGREE}, t = {t} (log2 {:.1}), depth {}; server run {:.2} s, keys + encrypt + run + decrypt {:.2} s",
        (t as f64).log2(),
        plan.depth(),
        report.wall.as_secs_f64(),
        total.as_secs_f64()
    );
    assert!(float_acc > 0.85, "float accuracy {float_acc}");
    assert!(
        quant_acc >= float_acc - 0.02,
        "quantised {quant_acc} vs float {float_acc}"
    );
}

#[test]
fn too_small_plaintext_modulus_is_refused_naming_the_layer() {
    let data = Dataset::digits_8x8().flatten();
    let (train_set, _) = data.split(0.25, 1).unwrap();
    let mut net = zoo::mlp(&[64, 16, 10], Activation::Square, 2).unwrap();
    // A little training so the weights are not the initial ones.
    Trainer::new(TrainConfig {
        epochs: 1,
        batch_size: 64,
        seed: 3,
        ..TrainConfig::default()
    })
    .fit(&mut net, &train_set, None, &mut NoProgress)
    .unwrap();
    let q = QuantizedNetwork::quantize(&net, &quant_config()).unwrap();
    let bounds = q.accumulator_bounds();
    // Layers: 0 dense, 1 square, 2 dense. A t that holds layer 0 but not
    // the square (layer 1).
    let t = smallest_simd_plaintext_modulus(2 * bounds[0] as u64 + 1, DEGREE).unwrap();
    assert!(
        u128::from(t) <= 2 * bounds[1],
        "t {t} must be below the square's need"
    );

    // At compile time.
    let opts = CompileOptions {
        min_slots: 64,
        plaintext_modulus: Some(t),
        ..CompileOptions::default()
    };
    let err = compile_quantized(&q, &Batch, &opts).unwrap_err();
    match &err {
        Error::AccumulatorOverflow {
            layer,
            bound,
            plaintext_modulus,
        } => {
            assert_eq!(*layer, 1);
            assert_eq!(*bound, bounds[1]);
            assert_eq!(*plaintext_modulus, t);
        }
        other => panic!("expected AccumulatorOverflow, got {other:?}"),
    }
    assert!(err.to_string().starts_with("layer 1: "), "{err}");

    // A plan compiled without a modulus is refused by the evaluator on a BFV
    // backend whose t is too small, before any key or ciphertext exists: the
    // backend chosen for the same network quantised to 3 bits.
    let plan = compile_quantized(
        &q,
        &Batch,
        &CompileOptions {
            min_slots: 64,
            ..CompileOptions::default()
        },
    )
    .unwrap();
    let small = QuantizedNetwork::quantize(
        &net,
        &QuantConfig {
            weight_bits: 3,
            input_bits: 3,
            ..QuantConfig::int8(1.0)
        },
    )
    .unwrap();
    let small_plan = compile_quantized(&small, &Batch, &CompileOptions::default()).unwrap();
    let he = std::sync::Arc::new(Bfv::for_plan(&small_plan).unwrap());
    let t = he.params().plaintext_modulus();
    assert!(
        u128::from(t) > 2 * bounds[0] && u128::from(t) <= 2 * bounds[1],
        "t {t} must hold layer 0 but not the square"
    );
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let err = Client::new(he.clone(), &plan, &mut rng).err().unwrap();
    assert!(
        matches!(err, Error::AccumulatorOverflow { layer: 1, plaintext_modulus, .. } if plaintext_modulus == t),
        "{err:?}"
    );
    // The server checks too (it may get a plan and keys from elsewhere).
    let sk = he.generate_secret_key(&mut rng).unwrap();
    let keys = he
        .generate_eval_keys(&sk, plan.key_requirements(), &mut rng)
        .unwrap();
    let err = Server::new(he.clone(), plan.clone(), keys).err().unwrap();
    assert!(
        matches!(err, Error::AccumulatorOverflow { layer: 1, .. }),
        "{err:?}"
    );
    // A real-valued plan is refused by an integer scheme.
    let float_plan = mofhei::compile::compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let err = Client::new(he.clone(), &float_plan, &mut rng)
        .err()
        .unwrap();
    assert!(matches!(err, Error::Incompatible { .. }), "{err:?}");
}

//! The HE-friendly transformation on the shipped digits: MOFHEI's LeNet
//! (ReLU + max-pool original) on 32x32 digits and an MLP on 8x8 digits.
//! Both original and transformed accuracies are measured on the same
//! held-out test split, never seen in training.

#![allow(clippy::unwrap_used, reason = "test set-up")]

use std::time::Instant;

use mofhei::compile::{CompileOptions, compile};
use mofhei::data::Dataset;
use mofhei::eval::{Client, Server};
use mofhei::he::sim::Sim;
use mofhei::model::{Activation, Network, zoo};
use mofhei::packing::Batch;
use mofhei::train::{NoProgress, Plateau, TrainConfig, Trainer, accuracy};
use mofhei::transform::{
    HeFriendlyConfig, Mode, PolyInit, Replacement, is_he_friendly, make_he_friendly,
};
use rand::SeedableRng;

const SEED: u64 = 2024;

fn pretrain(net: &mut Network, train: &Dataset, epochs: usize, lr: f32) {
    Trainer::new(TrainConfig {
        epochs,
        batch_size: 32,
        lr,
        seed: SEED,
        validation_fraction: 0.1,
        early_stopping: Some(6),
        plateau: Some(Plateau {
            factor: 0.5,
            patience: 3,
            min_lr: 1e-5,
        }),
        ..TrainConfig::default()
    })
    .fit(net, train, None, &mut NoProgress)
    .unwrap();
}

fn transform_config(max_epochs: usize, replacement: Replacement, mode: Mode) -> HeFriendlyConfig {
    let mut cfg = HeFriendlyConfig::mofhei(max_epochs, SEED);
    cfg.replacement = replacement;
    cfg.mode = mode;
    // 1437 training images: smaller batches than MOFHEI's 128 (60k MNIST images).
    cfg.train.batch_size = 32;
    cfg.fine_tune.batch_size = 32;
    cfg.train.early_stopping = Some(4);
    cfg.fine_tune.early_stopping = Some(4);
    cfg
}

#[test]
fn lenet_on_digits_32x32_stays_within_one_point() {
    let (train, test) = Dataset::digits_32x32().split(0.2, SEED).unwrap();
    let (fit, val) = train.split(0.1, SEED).unwrap();
    let mut original = zoo::lenet_mofhei(Activation::Relu, SEED);
    pretrain(&mut original, &train, 30, 1e-3);
    let acc_original = accuracy(&original, &test).unwrap();

    let start = Instant::now();
    let replacement = Replacement::Poly {
        degree: 2,
        init: PolyInit::Mofhei,
        per_channel: false,
    };
    let cfg = transform_config(15, replacement, Mode::LayerByLayer);
    let (he, report) = make_he_friendly(&original, &fit, &val, &cfg, &mut NoProgress).unwrap();
    let acc_he = accuracy(&he, &test).unwrap();
    eprintln!(
        "LeNet digits 32x32: original {acc_original:.4} -> HE-friendly {acc_he:.4} (validation {:.4} -> {:.4}), {} steps, {:.1?}",
        report.metric_before,
        report.metric_after,
        report.steps.len(),
        start.elapsed()
    );
    for s in &report.steps {
        eprintln!(
            "  layer {} {} -> {}: {:.4} -> {:.4} in {} epochs",
            s.layer, s.from, s.to, s.metric_replaced, s.metric_trained, s.epochs
        );
    }
    assert!(
        he.layers.iter().all(is_he_friendly),
        "{:?}",
        he.layers.iter().map(|l| l.kind()).collect::<Vec<_>>()
    );
    assert_eq!(
        report.steps.len(),
        6,
        "4 activations + 2 max-pools, one at a time"
    );
    assert_eq!(report.coefficients.len(), 4);
    assert!(acc_original >= 0.97, "original accuracy {acc_original}");
    assert!(
        acc_he >= acc_original - 0.01,
        "HE-friendly {acc_he} vs original {acc_original}"
    );

    // The HE-friendly network on the simulator backend (batch packing, the
    // plan's own modulus chain and scale): the same prediction as the
    // plaintext forward pass for every image of the test set.
    let slots = test.len().next_power_of_two();
    let opts = CompileOptions {
        min_slots: test.len(),
        ..CompileOptions::default()
    };
    let plan = compile(&he, &Batch, &opts).unwrap();
    let sim = std::sync::Arc::new(Sim::new(plan.params().sim_params(slots).unwrap()));
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(SEED);
    let (client, keys) = Client::new(sim.clone(), &plan, &mut rng).unwrap();
    let server = Server::new(sim.clone(), plan.clone(), keys).unwrap();
    let (out, _) = server
        .run(client.encrypt(test.inputs(), &mut rng).unwrap())
        .unwrap();
    let encrypted = client.decrypt(&out).unwrap();
    let plain = he.predict(test.inputs()).unwrap();
    let k = encrypted.shape()[1];
    let simulated: Vec<usize> = encrypted
        .data()
        .chunks(k)
        .map(|r| {
            r.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0
        })
        .collect();
    assert_eq!(simulated.len(), test.len());
    let differ = simulated.iter().zip(&plain).filter(|(a, b)| a != b).count();
    eprintln!(
        "simulator vs plaintext predictions: {differ} of {} differ (depth {})",
        test.len(),
        plan.depth()
    );
    assert_eq!(differ, 0);
}

#[test]
fn mlp_on_digits_8x8_stays_within_two_points() {
    let (train, test) = Dataset::digits_8x8().flatten().split(0.2, SEED).unwrap();
    let (fit, val) = train.split(0.1, SEED).unwrap();
    let mut original = zoo::mlp(&[64, 64, 10], Activation::Tanh, SEED).unwrap();
    pretrain(&mut original, &train, 60, 3e-3);
    let acc_original = accuracy(&original, &test).unwrap();
    for (name, replacement, mode) in [
        (
            "poly2 MOFHEI layer-by-layer",
            Replacement::mofhei(),
            Mode::LayerByLayer,
        ),
        (
            "poly2 least-squares all-at-once",
            Replacement::Poly {
                degree: 2,
                init: PolyInit::LeastSquares,
                per_channel: false,
            },
            Mode::AllAtOnce,
        ),
        ("x^2 all-at-once", Replacement::Square, Mode::AllAtOnce),
    ] {
        let mut cfg = transform_config(40, replacement, mode);
        cfg.train.lr = 3e-3;
        let (he, report) = make_he_friendly(&original, &fit, &val, &cfg, &mut NoProgress).unwrap();
        let acc_he = accuracy(&he, &test).unwrap();
        eprintln!(
            "MLP digits 8x8, {name}: original {acc_original:.4} -> {acc_he:.4} in {:.1}s",
            report.seconds
        );
        assert!(he.layers.iter().all(is_he_friendly));
        assert!(
            acc_he >= acc_original - 0.02,
            "{name}: {acc_he} vs {acc_original}"
        );
    }
}

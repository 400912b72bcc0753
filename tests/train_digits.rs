//! Training runs on the embedded digits set (1797 images; a fixed seeded
//! 80/20 train/test split, the test part never seen during training).

use std::time::Instant;

use mofhei::data::Dataset;
use mofhei::model::{Activation, zoo};
use mofhei::train::{NoProgress, Plateau, TrainConfig, Trainer, accuracy};

const SEED: u64 = 2024;

#[test]
fn lenet_mofhei_on_digits_32x32_reaches_97_percent() {
    let (train, test) = Dataset::digits_32x32().split(0.2, SEED).unwrap();
    let mut net = zoo::lenet_mofhei(Activation::Relu, SEED);
    let start = Instant::now();
    // All 1438 training images train (no validation hold-out); the plateau
    // schedule watches the training loss.
    let mut trainer = Trainer::new(TrainConfig {
        epochs: 15,
        batch_size: 32,
        lr: 1e-3,
        seed: SEED,
        plateau: Some(Plateau {
            factor: 0.5,
            patience: 3,
            min_lr: 1e-5,
        }),
        ..TrainConfig::default()
    });
    let h = trainer
        .fit(&mut net, &train, None, &mut NoProgress)
        .unwrap();
    let acc = accuracy(&net, &test).unwrap();
    eprintln!(
        "LeNet (ReLU, max-pool) digits 32x32: test accuracy {acc:.4} after {} epochs ({:?}) in {:.1?}",
        h.epochs.len(),
        h.stop,
        start.elapsed()
    );
    assert!(acc >= 0.97, "test accuracy {acc}");
}

#[test]
fn mlp_on_digits_8x8_reaches_95_percent() {
    let (train, test) = Dataset::digits_8x8().flatten().split(0.2, SEED).unwrap();
    let mut net = zoo::mlp(&[64, 64, 10], Activation::Relu, SEED).unwrap();
    let start = Instant::now();
    let h = Trainer::new(TrainConfig {
        epochs: 60,
        batch_size: 32,
        lr: 3e-3,
        seed: SEED,
        validation_fraction: 0.1,
        early_stopping: Some(8),
        ..TrainConfig::default()
    })
    .fit(&mut net, &train, None, &mut NoProgress)
    .unwrap();
    let acc = accuracy(&net, &test).unwrap();
    eprintln!(
        "MLP 64-64-10 digits 8x8: test accuracy {acc:.4} after {} epochs ({:?}) in {:.1?}",
        h.epochs.len(),
        h.stop,
        start.elapsed()
    );
    assert!(acc >= 0.95, "test accuracy {acc}");
}

//! MOFHEI on the embedded digits (32x32): an HE-friendly LeNet (x^2
//! activations, average pooling) trained directly, then pruned in whole
//! neurons/filters at the 90% target, culled and retrained.
//! Prints the figures it asserts (`cargo test --test prune_mofhei -- --nocapture`).

use std::time::Instant;

use mofhei::data::Dataset;
use mofhei::he::OpCounts;
use mofhei::model::{Activation, Layer, Network, zoo};
use mofhei::packing::Batch;
use mofhei::prune::{MofheiConfig, batch_op_counts, compiled_op_counts, mofhei_prune, sweep};
use mofhei::train::{NoProgress, Plateau, TrainConfig, Trainer, accuracy};

const SEED: u64 = 2024;

fn he_friendly_lenet() -> Network {
    let mut net = zoo::lenet_mofhei(Activation::Square, SEED);
    for l in net.layers.iter_mut() {
        if let Layer::MaxPool2d(p) = l {
            *l = Layer::AvgPool2d(*p);
        }
    }
    net
}

fn train_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        lr: 1e-3,
        seed: SEED,
        early_stopping: Some(4),
        plateau: Some(Plateau {
            factor: 0.5,
            patience: 2,
            min_lr: 1e-5,
        }),
        ..TrainConfig::default()
    }
}

fn total(c: &OpCounts) -> u64 {
    c.homomorphic_total()
}

#[test]
fn mofhei_sweep_on_digits_32x32() {
    let start = Instant::now();
    let (train_all, test) = Dataset::digits_32x32().split(0.2, SEED).unwrap();
    let (train, valid) = train_all.split(0.1, SEED).unwrap();
    let mut net = he_friendly_lenet();
    Trainer::new(train_config(12))
        .fit(&mut net, &train, Some(&valid), &mut NoProgress)
        .unwrap();
    let dense_acc = f64::from(accuracy(&net, &test).unwrap());
    let dense_ops = compiled_op_counts(&net, &Batch).unwrap();
    let dense_formula = batch_op_counts(&net).unwrap();
    eprintln!(
        "dense HE-friendly LeNet: test acc {dense_acc:.4}, compiled ops {} (formula {}), {:.1?}",
        total(&dense_ops),
        total(&dense_formula),
        start.elapsed()
    );
    // The library's settings for this network: gentle ramp, lr 3e-3,
    // shifts of up to 2 pixels while pruning and retraining, best of the 6
    // choices of the surviving conv0 filter by validation accuracy
    // (docs/pruning.md).
    let cfg = MofheiConfig::digits_lenet(SEED);
    let params = net.param_count();
    let mut prune_at = |target: f64| {
        let (pruned, _) = mofhei_prune(&net, target, &cfg, &train, &valid)?;
        let acc = f64::from(accuracy(&pruned, &test)?);
        Ok((pruned, acc))
    };
    let count = |n: &Network| compiled_op_counts(n, &Batch);
    let points = sweep(params, &[0.9], &mut prune_at, &count).unwrap();
    for p in &points {
        eprintln!(
            "target {:.2}: sparsity {:.4}, units {:?}, test acc {:.4}, compiled ops {} ({:.1}% fewer), {:.1?}",
            p.target,
            p.sparsity,
            p.units,
            p.metric,
            total(&p.ops),
            100.0 * (1.0 - total(&p.ops) as f64 / total(&dense_ops) as f64),
            start.elapsed()
        );
    }
    let p90 = &points[0];
    assert!(p90.sparsity >= 0.95, "sparsity {}", p90.sparsity);
    // The bound: at most 2 points below the dense network.
    assert!(
        dense_acc - p90.metric <= 0.02,
        "accuracy {dense_acc} -> {}",
        p90.metric
    );
    let fall = 1.0 - total(&p90.ops) as f64 / total(&dense_ops) as f64;
    assert!(fall >= 0.90, "op counts fall by {fall}");
}

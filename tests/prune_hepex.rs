//! HE-PEx on an MLP over the embedded digits (8x8) with 4 x 8 weight tiles:
//! weight pruning, retraining, permutation, dropping almost-empty tiles,
//! expansion, retraining; the same pipeline without permutation for
//! comparison. Prints the figures it asserts
//! (`cargo test --test prune_hepex -- --nocapture`).

use std::time::Instant;

use mofhei::data::Dataset;
use mofhei::model::{Activation, zoo};
use mofhei::packing::BlockShape;
use mofhei::prune::{
    HePexConfig, PermuteOptions, PruneOptions, Schedule, Scope, Score, hepex_prune,
};
use mofhei::train::{NoProgress, TrainConfig, Trainer, accuracy};

const SEED: u64 = 2024;

#[test]
fn hepex_on_digits_8x8() {
    let start = Instant::now();
    let (train_all, test) = Dataset::digits_8x8().flatten().split(0.2, SEED).unwrap();
    let (train, valid) = train_all.split(0.1, SEED).unwrap();
    let mut net = zoo::mlp(&[64, 64, 32, 10], Activation::Relu, SEED).unwrap();
    let tc = TrainConfig {
        epochs: 40,
        batch_size: 32,
        lr: 3e-3,
        seed: SEED,
        early_stopping: Some(6),
        ..TrainConfig::default()
    };
    Trainer::new(tc.clone())
        .fit(&mut net, &train, Some(&valid), &mut NoProgress)
        .unwrap();
    let dense_acc = f64::from(accuracy(&net, &test).unwrap());
    let cfg = |permute: Option<PermuteOptions>| HePexConfig {
        tile: BlockShape::Tile { rows: 4, cols: 8 },
        weight_target: 0.92,
        opts: PruneOptions {
            score: Score::MeanAbs,
            scope: Scope::PerLayer,
            exempt_output: false,
            cost_aware: None,
            protect: None,
        },
        schedule: Schedule::Polynomial {
            every: 10,
            ramp: 200,
            initial: 0.0,
            power: 3.0,
        },
        density: 1.0 / 16.0,
        permute,
        train: TrainConfig {
            lr: 3e-3,
            ..tc.clone()
        },
        epochs: 30,
    };
    let with = hepex_prune(&net, &cfg(Some(PermuteOptions::default())), &train, &valid).unwrap();
    let without = hepex_prune(&net, &cfg(None), &train, &valid).unwrap();
    // The permuted network is used through the client-side permutations.
    let x = with.permutation.permute_input(test.inputs()).unwrap();
    let permuted_test = Dataset::classification(x, test.labels().unwrap().to_vec(), 10).unwrap();
    // Outputs come back permuted: the client un-permutes them before argmax.
    let out = with
        .permutation
        .unpermute_output(&with.network.forward(permuted_test.inputs()).unwrap())
        .unwrap();
    let labels = test.labels().unwrap();
    let correct = out
        .data()
        .chunks(10)
        .zip(labels)
        .filter(|(row, l)| {
            let best = (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            best == **l
        })
        .count();
    let acc_with = correct as f64 / labels.len() as f64;
    let acc_without = f64::from(accuracy(&without.network, &test).unwrap());
    eprintln!(
        "dense MLP 64-64-32-10: test acc {dense_acc:.4}; {} non-zero 4x8 tiles",
        with.tiles_dense
    );
    for (name, r, acc) in [
        ("with permutation", &with, acc_with),
        ("without permutation", &without, acc_without),
    ] {
        eprintln!(
            "{name}: tiles after weight pruning {}, after permutation {}, final {} ({:.1}% fewer than dense), test acc {acc:.4}",
            r.tiles_pruned,
            r.tiles_permuted,
            r.tiles_final,
            100.0 * (1.0 - r.tiles_final as f64 / r.tiles_dense as f64)
        );
    }
    eprintln!("total {:.1?}", start.elapsed());
    assert!(with.tiles_final as f64 <= 0.5 * with.tiles_dense as f64);
    assert!(
        dense_acc - acc_with <= 0.025,
        "accuracy {dense_acc} -> {acc_with}"
    );
    // Same pruned weights, fewer tiles once permuted; and fewer at the end.
    assert!(with.tiles_permuted < without.tiles_permuted);
    assert!(with.tiles_final < without.tiles_final);
}

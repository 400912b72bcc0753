//! Seed sweep of MOFHEI pruning at the 90% target on the digits (32x32):
//! dense -> pruned test accuracy, drop, units, sparsity and compiled op
//! fall for several data seeds x pruning seeds (the table in
//! docs/pruning.md).
//!
//! ```text
//! cargo run --release --example prune_seeds -- --data 2024,7,11,3 --ps same,1,2
//! cargo run --release --example prune_seeds -- --pipeline --ps same,1
//! ```
//!
//! `--data`: data seeds (split, initialisation and dense training, as in
//! `tests/prune_mofhei.rs`); `--ps`: pruning seeds (`same` = the data
//! seed); `--pipeline`: the dense network of `examples/pipeline.rs` (ReLU
//! LeNet, HE-friendly transform) at the first data seed instead; dense
//! networks are cached in `$TMPDIR/mofhei-prune-seeds/`. The pruning
//! settings are `MofheiConfig::digits_lenet(ps)`; switches for experiments:
//! `--shift N` (shifts of at most N pixels while pruning and retraining,
//! 0 = off) and `--set key=value` with keys `candidates`, `screen` (0/1),
//! `wd`, `monitor_loss`, `retrain_epochs`, `lr`, `retrain_lr`. Per run,
//! validation/training accuracy and losses go to stderr.

use std::path::PathBuf;
use std::time::Instant;

use mofhei::data::Dataset;
use mofhei::model::{Activation, Layer, Network, zoo};
use mofhei::packing::Batch;
use mofhei::prune::{MofheiConfig, compiled_op_counts, mofhei_prune};
use mofhei::train::{NoProgress, Plateau, TrainConfig, Trainer, accuracy};
use mofhei::transform::{HeFriendlyConfig, make_he_friendly};

struct Args {
    data: Vec<u64>,
    ps: Vec<Option<u64>>,
    pipeline: bool,
    shift: Option<usize>,
    /// Extra experiment knobs: `--set key=value`.
    set: Vec<(String, f64)>,
}

fn parse() -> mofhei::Result<Args> {
    let mut a = Args {
        data: vec![2024],
        ps: vec![None],
        pipeline: false,
        shift: None,
        set: Vec::new(),
    };
    let bad = |name: &'static str| mofhei::Error::InvalidParameter {
        name,
        value: 0,
        allowed: "see the example's documentation",
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--pipeline" => a.pipeline = true,
            "--data" => {
                let v = it.next().ok_or(bad("--data"))?;
                a.data = v
                    .split(',')
                    .map(|s| s.parse().map_err(|_| bad("--data")))
                    .collect::<mofhei::Result<_>>()?;
            }
            "--ps" => {
                let v = it.next().ok_or(bad("--ps"))?;
                a.ps = v
                    .split(',')
                    .map(|s| match s {
                        "same" => Ok(None),
                        s => s.parse().map(Some).map_err(|_| bad("--ps")),
                    })
                    .collect::<mofhei::Result<_>>()?;
            }
            "--shift" => {
                let v = it.next().ok_or(bad("--shift"))?;
                a.shift = Some(v.parse().map_err(|_| bad("--shift"))?);
            }
            "--set" => {
                let v = it.next().ok_or(bad("--set"))?;
                let (k, x) = v.split_once('=').ok_or(bad("--set"))?;
                a.set
                    .push((k.to_string(), x.parse().map_err(|_| bad("--set"))?));
            }
            _ => return Err(bad("unknown flag")),
        }
    }
    Ok(a)
}

fn cache(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("mofhei-prune-seeds");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

/// The test's dense network: HE-friendly LeNet trained directly.
fn test_dense(seed: u64, train: &Dataset, valid: &Dataset) -> mofhei::Result<Network> {
    let path = cache(&format!("test-{seed}.bin"));
    if let Ok(n) = Network::load(&path) {
        return Ok(n);
    }
    let mut net = zoo::lenet_mofhei(Activation::Square, seed);
    for l in net.layers.iter_mut() {
        if let Layer::MaxPool2d(p) = l {
            *l = Layer::AvgPool2d(*p);
        }
    }
    Trainer::new(TrainConfig {
        epochs: 12,
        batch_size: 32,
        lr: 1e-3,
        seed,
        early_stopping: Some(4),
        plateau: Some(Plateau {
            factor: 0.5,
            patience: 2,
            min_lr: 1e-5,
        }),
        ..TrainConfig::default()
    })
    .fit(&mut net, train, Some(valid), &mut NoProgress)?;
    net.save(&path)?;
    Ok(net)
}

/// The pipeline example's dense network: ReLU LeNet, HE-friendly transform.
fn pipeline_dense(
    seed: u64,
    train_all: &Dataset,
    train: &Dataset,
    valid: &Dataset,
) -> mofhei::Result<Network> {
    let path = cache(&format!("pipeline-{seed}.bin"));
    if let Ok(n) = Network::load(&path) {
        return Ok(n);
    }
    let mut original = zoo::lenet_mofhei(Activation::Relu, seed);
    Trainer::new(TrainConfig {
        epochs: 30,
        batch_size: 32,
        lr: 1e-3,
        seed,
        validation_fraction: 0.1,
        early_stopping: Some(6),
        plateau: Some(Plateau {
            factor: 0.5,
            patience: 3,
            min_lr: 1e-5,
        }),
        ..TrainConfig::default()
    })
    .fit(&mut original, train_all, None, &mut NoProgress)?;
    let mut cfg = HeFriendlyConfig::mofhei(15, seed);
    cfg.train.batch_size = 32;
    cfg.fine_tune.batch_size = 32;
    cfg.train.early_stopping = Some(4);
    cfg.fine_tune.early_stopping = Some(4);
    let (he, _) = make_he_friendly(&original, train, valid, &cfg, &mut NoProgress)?;
    he.save(&path)?;
    Ok(he)
}

fn config(seed: u64, a: &Args) -> MofheiConfig {
    let mut cfg = MofheiConfig::digits_lenet(seed);
    if let Some(s) = a.shift {
        cfg.train.augment = (s > 0).then(|| mofhei::train::Augment::shifts(s));
    }
    for (k, v) in &a.set {
        match k.as_str() {
            "candidates" => cfg.candidates = *v as usize,
            "screen" => cfg.screen_before_retraining = *v != 0.0,
            "wd" => cfg.train.weight_decay = *v as f32,
            "monitor_loss" => cfg.train.monitor = mofhei::train::Monitor::Loss,
            "retrain_epochs" => cfg.retrain_epochs = *v as usize,
            "lr" => cfg.train.lr = *v as f32,
            "retrain_lr" => cfg.retrain_lr_factor = *v as f32,
            _ => eprintln!("unknown knob {k}"),
        }
    }
    cfg
}

fn main() -> mofhei::Result<()> {
    let a = parse()?;
    let data_seeds = if a.pipeline {
        vec![a.data[0]]
    } else {
        a.data.clone()
    };
    println!(
        "| data seed | ps | dense | pruned | drop (points) | units | sparsity | ops fall | seconds | validation |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &ds in &data_seeds {
        let (train_all, test) = Dataset::digits_32x32().split(0.2, ds)?;
        let (train, valid, dense) = if a.pipeline {
            let (train, valid) = train_all.split(0.05, ds)?;
            let d = pipeline_dense(ds, &train_all, &train, &valid)?;
            (train, valid, d)
        } else {
            let (train, valid) = train_all.split(0.1, ds)?;
            let d = test_dense(ds, &train, &valid)?;
            (train, valid, d)
        };
        let dense_acc = f64::from(accuracy(&dense, &test)?);
        let dense_ops = compiled_op_counts(&dense, &Batch)?.homomorphic_total();
        for &ps in &a.ps {
            let ps = ps.unwrap_or(ds);
            let t0 = Instant::now();
            let (pruned, _) = mofhei_prune(&dense, 0.9, &config(ps, &a), &train, &valid)?;
            let acc = f64::from(accuracy(&pruned, &test)?);
            let vacc = f64::from(accuracy(&pruned, &valid)?);
            let ve = mofhei::train::evaluate(&pruned, &valid)?;
            let te = mofhei::train::evaluate(&pruned, &train)?;
            let tst = mofhei::train::evaluate(&pruned, &test)?;
            eprintln!(
                "  val acc {vacc:.4} loss {:.4}; train acc {:.4} loss {:.4}; test loss {:.4}",
                ve.loss, te.metric, te.loss, tst.loss
            );
            let ops = compiled_op_counts(&pruned, &Batch)?.homomorphic_total();
            let sparsity = 1.0 - pruned.param_count() as f64 / dense.param_count() as f64;
            println!(
                "| {ds}{} | {ps} | {dense_acc:.4} | {acc:.4} | {:.2} | {} | {sparsity:.4} | {:.1}% | {:.0} | {vacc:.4} |",
                if a.pipeline { " (pipeline)" } else { "" },
                100.0 * (dense_acc - acc),
                mofhei::prune::units(&pruned)
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("/"),
                100.0 * (1.0 - ops as f64 / dense_ops as f64),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

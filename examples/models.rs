//! MOFHEI's other models on the shipped 8x8 digits: dense HE-friendly vs
//! pruned at the 90% target, both run encrypted on CKKS with batch packing.
//!
//! ```text
//! cargo run --release --example models
//! ```
//!
//! MOFHEI (arXiv 2412.07954) reports, besides LeNet, an FcNet on EGSS
//! (12-64-128-256-2, accuracy) and three MNIST autoencoders (784-32-784,
//! 784-64-784, 784-64-32-64-784, MSE). Their analogues on the 64-feature
//! digits: an MLP 64-64-128-256-10 and autoencoders 64-16-64, 64-32-64 and
//! 64-32-16-32-64, every activation x^2. Each model is trained (seeded),
//! pruned with MOFHEI's pipeline (whole neurons, polynomial ramp to 90%,
//! cull, retrain; the autoencoders are pruned and validated by MSE, since
//! their data set's targets are values), compiled with batch packing, and
//! run encrypted on a full batch (N/2 samples, the test set cycled); the
//! encrypted outputs are checked against the plaintext ones. Prints one
//! markdown table (docs/reproduction.md, section "MOFHEI FcNet and autoencoder rows").

use std::time::Instant;

use mofhei::compile::{CompileOptions, compile};
use mofhei::data::Dataset;
use mofhei::eval::{Client, Server};
use mofhei::he::Counted;
use mofhei::he::ckks::Ckks;
use mofhei::model::{Activation, Network, argmax_rows, zoo};
use mofhei::packing::{Batch, BlockShape};
use mofhei::plan::Plan;
use mofhei::prune::{MofheiConfig, PruneOptions, Schedule, ScheduleConfig, cull, mofhei_prune};
use mofhei::train::{Metric, NoProgress, Plateau, TrainConfig, Trainer, evaluate};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const SEED: u64 = 2024;
const TARGET: f64 = 0.9;

/// One model of the table.
struct Model {
    name: &'static str,
    net: Network,
    /// Autoencoder (MSE against the inputs) or classifier (accuracy).
    autoencoder: bool,
}

/// What one encrypted run measured.
struct Run {
    seconds: f64,
    peak_rss_bytes: u64,
    /// Test metric computed on the decrypted outputs (distinct samples).
    metric_encrypted: f64,
    /// Classifier: fraction of predictions equal to the plaintext ones;
    /// autoencoder: largest |encrypted - plaintext| output.
    check: f64,
    log_n: u32,
}

fn train_config(epochs: usize, lr: f32) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        lr,
        seed: SEED,
        early_stopping: Some(6),
        plateau: Some(Plateau {
            factor: 0.5,
            patience: 3,
            min_lr: 1e-5,
        }),
        ..TrainConfig::default()
    }
}

/// MOFHEI's pipeline as in `examples/pipeline.rs` (whole neurons, gentle
/// polynomial ramp, cull, bias then full retraining), with a longer ramp
/// (1000 steps, about 25 epochs here; measured in
/// docs/reproduction.md, section "MOFHEI FcNet and autoencoder rows").
fn mofhei_config() -> MofheiConfig {
    MofheiConfig {
        shape: BlockShape::Column,
        opts: PruneOptions::default(),
        schedule: ScheduleConfig {
            schedule: Schedule::Polynomial {
                every: 10,
                ramp: 1000,
                initial: 0.0,
                power: 3.0,
            },
            target: TARGET,
            epochs: 60,
            patience: Some(15),
        },
        train: TrainConfig {
            early_stopping: Some(6),
            ..train_config(12, 2e-3)
        },
        retrain_epochs: 30,
        retrain_lr_factor: 1.0,
        candidates: 1,
        screen_before_retraining: false,
        steps: None,
    }
}

/// Test metric of `net`: accuracy, or MSE for autoencoders.
fn metric(net: &Network, test: &Dataset) -> mofhei::Result<f64> {
    Ok(f64::from(evaluate(net, test)?.metric))
}

/// The first `n` samples of `test` cycled.
fn batch_of(test: &Dataset, n: usize) -> mofhei::Result<Dataset> {
    let idx: Vec<usize> = (0..n).map(|i| i % test.len()).collect();
    test.subset(&idx)
}

/// Runs `plan` encrypted on CKKS over the batch `x` (its first `unique`
/// samples distinct) and compares with the plaintext network.
fn run_encrypted(
    plan: &Plan,
    net: &Network,
    batch: &Dataset,
    unique: usize,
    autoencoder: bool,
) -> mofhei::Result<Run> {
    let choice = plan.params();
    let scheme = std::sync::Arc::new(Counted::new(Ckks::new(choice.ckks_params()?)?));
    let mut rng = ChaCha20Rng::from_os_rng();
    let (client, keys) = Client::new(scheme.clone(), plan, &mut rng)?;
    let x = batch.inputs();
    let src = client.input_source(x, &mut rng)?;
    let mut server = Server::new(scheme.clone(), plan.clone(), keys)?;
    // The run's own peak, not the process's so far.
    server.set_peak_rss_reset(true);
    let (out, report) = server.run_streamed(src.samples(), |j| src.get(j))?;
    let y = client.decrypt(&out)?;
    let plain = net.forward(x)?;
    let (metric_encrypted, check) = if autoencoder {
        let f = y.data().len() / batch.len().max(1);
        let worst = y
            .data()
            .iter()
            .zip(plain.data())
            .fold(0.0f64, |m, (u, v)| m.max(f64::from((u - v).abs())));
        let se: f64 = y
            .data()
            .iter()
            .zip(x.data())
            .take(unique * f)
            .map(|(u, v)| f64::from(u - v).powi(2))
            .sum();
        (se / (unique * f).max(1) as f64, worst)
    } else {
        let enc = argmax_rows(&y);
        let agree = enc
            .iter()
            .zip(argmax_rows(&plain))
            .filter(|(a, b)| **a == *b);
        let labels = batch.labels().unwrap_or_default();
        let correct = enc
            .iter()
            .zip(labels)
            .take(unique)
            .filter(|(a, b)| a == b)
            .count();
        (
            correct as f64 / unique.max(1) as f64,
            agree.count() as f64 / enc.len().max(1) as f64,
        )
    };
    Ok(Run {
        seconds: report.wall.as_secs_f64(),
        peak_rss_bytes: report.peak_rss_bytes.unwrap_or(0),
        metric_encrypted,
        check,
        log_n: choice.log_n,
    })
}

fn main() {
    // `--model I` runs model I alone (the parent runs each model in its own
    // process so one model's retained allocator memory does not count in the
    // next one's peak RSS).
    let mut args = std::env::args().skip(1);
    let result = match (args.next().as_deref(), args.next()) {
        (None, _) => run_all(),
        (Some("--model"), Some(i)) => match i.parse::<usize>() {
            Ok(i) => run_one(i),
            Err(_) => Err(mofhei::Error::InvalidValue {
                name: "--model",
                value: f64::NAN,
                allowed: "a model index",
            }),
        },
        _ => {
            eprintln!("usage: models [--model I]");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The table's header.
const HEADER: &str = "| model | metric dense -> 90% | sparsity | units dense -> 90% | HE ops dense / 90% | latency s dense / 90% | peak RSS GB dense / 90% | encrypted vs plain |\n|---|---|---|---|---|---|---|---|";

/// Runs every model in a child process and prints the collected table.
fn run_all() -> mofhei::Result<()> {
    let start = Instant::now();
    let exe = std::env::current_exe().map_err(|source| mofhei::Error::Io {
        path: "current_exe".into(),
        source,
    })?;
    let mut lines = Vec::new();
    for i in 0..MODELS {
        let out = std::process::Command::new(&exe)
            .args(["--model", &i.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|source| mofhei::Error::Io {
                path: exe.clone(),
                source,
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        for l in text.lines() {
            if l.starts_with("| ") {
                lines.push(l.to_string());
            } else {
                println!("{l}");
            }
        }
        if !out.status.success() {
            eprintln!("model {i} failed: {}", out.status);
            std::process::exit(1);
        }
    }
    println!("\n{HEADER}");
    for l in &lines {
        println!("{l}");
    }
    println!("\ntotal {:.1?}", start.elapsed());
    Ok(())
}

/// Number of models in the table.
const MODELS: usize = 4;

/// Trains, prunes and runs model `which` encrypted; prints its progress and
/// its table row.
fn run_one(which: usize) -> mofhei::Result<()> {
    let digits = Dataset::digits_8x8().flatten();
    let (train_all, test_cls) = digits.split(0.2, SEED)?;
    let (train_cls, valid_cls) = train_all.split(0.1, SEED)?;
    let ae = |d: &Dataset| d.to_autoencoder();
    let (train_ae, valid_ae, test_ae) = (ae(&train_cls), ae(&valid_cls), ae(&test_cls));
    if which == 0 {
        println!(
            "digits 8x8 (64 features): {} train, {} validation, {} test samples; target {:.0}%, whole-neuron blocks, batch packing, CKKS\n",
            train_cls.len(),
            valid_cls.len(),
            test_cls.len(),
            TARGET * 100.0
        );
    }
    let sq = Activation::Square;
    let models = vec![
        Model {
            name: "FcNet 64-64-128-256-10",
            net: zoo::mlp(&[64, 64, 128, 256, 10], sq.clone(), SEED)?,
            autoencoder: false,
        },
        Model {
            name: "AE1 64-16-64",
            net: zoo::autoencoder(64, &[16], sq.clone(), SEED)?,
            autoencoder: true,
        },
        Model {
            name: "AE2 64-32-64",
            net: zoo::autoencoder(64, &[32], sq.clone(), SEED)?,
            autoencoder: true,
        },
        Model {
            name: "AE3 64-32-16-32-64",
            net: zoo::autoencoder(64, &[32, 16, 32], sq, SEED)?,
            autoencoder: true,
        },
    ];
    let models_len = models.len();
    let Some(Model {
        name,
        mut net,
        autoencoder,
    }) = models.into_iter().nth(which)
    else {
        return Err(mofhei::Error::IndexOutOfRange {
            what: "--model",
            index: which,
            len: models_len,
        });
    };
    {
        let t0 = Instant::now();
        let (train, valid, test) = if autoencoder {
            (&train_ae, &valid_ae, &test_ae)
        } else {
            (&train_cls, &valid_cls, &test_cls)
        };
        let kind = evaluate(&net, test)?.kind;
        let lr = if autoencoder { 3e-3 } else { 1e-3 };
        Trainer::new(train_config(60, lr)).fit(&mut net, train, Some(valid), &mut NoProgress)?;
        let dense = cull(&net)?.0;
        let (pruned, _) = mofhei_prune(&dense, TARGET, &mofhei_config(), train, valid)?;
        let (m_dense, m_pruned) = (metric(&dense, test)?, metric(&pruned, test)?);
        let sparsity = 1.0 - pruned.param_count() as f64 / dense.param_count() as f64;
        let units = |n: &Network| {
            let mut u = vec![n.input_shape.iter().product::<usize>()];
            u.extend(mofhei::prune::units(n));
            u.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("-")
        };
        let opts = CompileOptions::default();
        let (p_dense, p_pruned) = (
            compile(&dense, &Batch, &opts)?,
            compile(&pruned, &Batch, &opts)?,
        );
        let images = p_dense
            .samples(p_dense.params().slots())
            .min(p_pruned.samples(p_pruned.params().slots()));
        let batch = batch_of(test, images)?;
        let unique = test.len().min(images);
        println!(
            "{name}: trained and pruned in {:.1?}; {} {m_dense:.4} -> {m_pruned:.4}, sparsity {sparsity:.4}, units {} -> {}; encrypting {images} samples",
            t0.elapsed(),
            if kind == Metric::Mse {
                "test MSE"
            } else {
                "test accuracy"
            },
            units(&dense),
            units(&pruned),
        );
        // Pruned first: the allocator keeps memory freed by the bigger dense
        // run mapped, and the peak RSS is a high-water mark.
        let r_pruned = run_encrypted(&p_pruned, &pruned, &batch, unique, autoencoder)?;
        let r_dense = run_encrypted(&p_dense, &dense, &batch, unique, autoencoder)?;
        for (label, r) in [("dense", &r_dense), ("90%", &r_pruned)] {
            let check = if autoencoder {
                format!("max |enc - plain| output {:.2e}", r.check)
            } else {
                format!("{:.4} of predictions equal plaintext", r.check)
            };
            println!(
                "  {label}: N = 2^{}, {:.2}s, peak RSS {:.2} GB, encrypted metric {:.4}, {check}",
                r.log_n,
                r.seconds,
                r.peak_rss_bytes as f64 / 1e9,
                r.metric_encrypted
            );
        }
        let gb = |b: u64| b as f64 / 1e9;
        println!(
            "| {name} | {} {m_dense:.4} -> {m_pruned:.4} | {sparsity:.4} | {} -> {} | {} / {} | {:.2} / {:.2} | {:.2} / {:.2} | {} |",
            if autoencoder { "MSE" } else { "acc" },
            units(&dense),
            units(&pruned),
            p_dense.counts().homomorphic_total(),
            p_pruned.counts().homomorphic_total(),
            r_dense.seconds,
            r_pruned.seconds,
            gb(r_dense.peak_rss_bytes),
            gb(r_pruned.peak_rss_bytes),
            if autoencoder {
                format!("max err {:.1e} / {:.1e}", r_dense.check, r_pruned.check)
            } else {
                format!(
                    "{:.0}% / {:.0}% equal",
                    100.0 * r_dense.check,
                    100.0 * r_pruned.check
                )
            }
        );
    }
    Ok(())
}

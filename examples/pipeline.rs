//! The main job: the whole MOFHEI pipeline on the shipped digits (32x32),
//! ending in encrypted inference on CKKS.
//!
//! ```text
//! cargo run --release --example pipeline                 # defaults: digits, 90% target, batch packing
//! cargo run --release --example pipeline -- --help       # flags
//! ```
//!
//! Steps: load data -> train MOFHEI's LeNet (ReLU + max-pool) -> make it
//! HE-friendly (layer by layer, trainable degree-2 polynomials) -> prune
//! whole filters/neurons at the target and cull -> compile the dense and the
//! pruned network with batch packing -> keys, encrypt a full batch (N/2
//! images), run on CKKS, decrypt -> table (accuracy plain vs encrypted, HE op
//! counts, latency per layer, peak memory), `reports/pipeline.json` and SVG
//! charts. `--sweep 0.5,0.7,0.9` prunes at several targets (reproduction of
//! MOFHEI's table); `--latency` times one-image inference of TenSEAL's MNIST
//! network with tile tensors instead.
//!
//! Bring your own model and data: `--onnx model.onnx` (PyTorch or Keras
//! through tf2onnx, see docs/import.md) or `--load net.bin` starts from a
//! trained network instead of training LeNet; `--mnist DIR` reads IDX files
//! and pads 28x28 digits to 32x32 only when the model takes 32x32;
//! `--normalize MEAN,STD` standardises the inputs as in training (e.g.
//! `0.1307,0.3081` for torchvision's MNIST transform).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use mofhei::compile::{CompileOptions, compile};
use mofhei::data::{Dataset, NormalizeOver, Normalizer};
use mofhei::eval::{Client, Server};
use mofhei::he::ckks::Ckks;
use mofhei::he::{Counted, OpKind};
use mofhei::import::onnx;
use mofhei::model::{Activation, Network, Tensor, argmax_rows, zoo};
use mofhei::packing::{Batch, BlockShape, Packing, Tile};
use mofhei::plan::Plan;
use mofhei::prune::{MofheiConfig, cull, mofhei_prune};
use mofhei::report::{Report, RunRow, sweep_charts};
use mofhei::train::{Distillation, EpochStats, Plateau, Progress, TrainConfig, Trainer, accuracy};
use mofhei::transform::{HeFriendlyConfig, make_he_friendly};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const HELP: &str =
    "mofhei pipeline: train -> HE-friendly -> prune -> compile -> encrypted inference (CKKS)

flags:
  --target F          target sparsity of the pruned network (default 0.9)
  --packing P         batch (MOFHEI: N/2 images per inference, default) or tile
                      (HElayers tile tensors, one image per inference)
  --tile RxC          tile shape of --packing tile (default 64x64)
  --block B           pruning block: column (whole filters/neurons, default),
                      weight, or tile (the --tile shape)
  --preset P          pruning settings: digits (MofheiConfig::digits_lenet, the default on the
                      shipped digits), cnn (budgets in optimiser steps, the default with
                      --mnist / --onnx) or mlp (cnn without image shifts)
  --prune-steps N     optimiser steps of pruning and of each retraining stage (cnn/mlp,
                      default 3000)
  --candidates K      best of K runs, one per surviving first-layer unit (default 6; 1: one run)
  --distill T,A       distil from the HE-friendly dense network while pruning and retraining
                      (temperature T, weight A of the teacher term; default 4,0.7 with the
                      cnn/mlp presets, off with digits; 0,0 turns it off)
  --sweep A,B,..      prune at several targets (e.g. 0.5,0.7,0.8,0.9,0.95)
  --encrypt-sweep     also run every sweep point encrypted (default: dense + --target only)
  --images N          images in the encrypted batch (default: a full batch, N/2 slots)
  --mnist DIR         use MNIST/Fashion-MNIST IDX files in DIR (train-images-idx3-ubyte[.gz], ...)
  --epochs N          training epochs of the original network (default 30)
  --transform-epochs N  max epochs per transform phase (default 15)
  --seed N            seed of splits, initialisation and training (default 2024)
  --load FILE         load the trained original network (native format) instead of training
  --onnx FILE         import the trained original network from ONNX (PyTorch / tf2onnx;
                      a <FILE>.data next to it is read; a final softmax is dropped)
  --normalize M,S     standardise the inputs: (x - M) / S, as the model was trained
  --save FILE         save the trained original network
  --save-he FILE      save the HE-friendly dense network (give it to --load to skip training
                      and the transform, e.g. while tuning the pruning)
  --out DIR           where reports go (default reports/)
  --no-encrypt        stop after compiling (plans, op counts, estimates)
  --latency           one-image latency mode (TenSEAL MNIST network, tile tensors; with
                      --onnx / --load: that model made HE-friendly, on the same data)
  -h, --help          this text";

/// The packing the networks are compiled with.
#[derive(Clone, Copy)]
enum PackingChoice {
    Batch,
    Tile { rows: usize, cols: usize },
}

impl PackingChoice {
    fn packing(self) -> mofhei::Result<Box<dyn Packing>> {
        Ok(match self {
            PackingChoice::Batch => Box::new(Batch),
            PackingChoice::Tile { rows, cols } => {
                Box::new(Tile::new(rows, cols, 1)?.with_client_patches())
            }
        })
    }
}

struct Args {
    target: f64,
    packing: PackingChoice,
    tile: (usize, usize),
    block: String,
    sweep: Vec<f64>,
    encrypt_sweep: bool,
    images: Option<usize>,
    mnist: Option<PathBuf>,
    epochs: usize,
    transform_epochs: usize,
    seed: u64,
    load: Option<PathBuf>,
    onnx: Option<PathBuf>,
    normalize: Option<(f32, f32)>,
    save: Option<PathBuf>,
    save_he: Option<PathBuf>,
    preset: Option<String>,
    prune_steps: usize,
    candidates: Option<usize>,
    distill: Option<(f32, f32)>,
    out: PathBuf,
    encrypt: bool,
    latency: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        target: 0.9,
        packing: PackingChoice::Batch,
        tile: (64, 64),
        block: "column".into(),
        sweep: Vec::new(),
        encrypt_sweep: false,
        images: None,
        mnist: None,
        epochs: 30,
        transform_epochs: 15,
        seed: 2024,
        load: None,
        onnx: None,
        normalize: None,
        save: None,
        save_he: None,
        preset: None,
        prune_steps: 3000,
        candidates: None,
        distill: None,
        out: PathBuf::from("reports"),
        encrypt: true,
        latency: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<f64>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--target" => a.target = num(value()?)?,
            "--packing" => {
                a.packing = match value()?.as_str() {
                    "batch" => PackingChoice::Batch,
                    "tile" => PackingChoice::Tile { rows: 0, cols: 0 },
                    other => return Err(format!("unknown packing {other} (batch or tile)")),
                }
            }
            "--tile" => {
                let v = value()?;
                let (r, c) = v
                    .split_once('x')
                    .ok_or(format!("--tile {v}: expected RxC, e.g. 64x64"))?;
                a.tile = (num(r.into())? as usize, num(c.into())? as usize);
            }
            "--block" => a.block = value()?,
            "--sweep" => {
                a.sweep = value()?
                    .split(',')
                    .map(|s| num(s.trim().to_string()))
                    .collect::<Result<_, _>>()?
            }
            "--encrypt-sweep" => a.encrypt_sweep = true,
            "--images" => a.images = Some(num(value()?)? as usize),
            "--mnist" => a.mnist = Some(value()?.into()),
            "--epochs" => a.epochs = num(value()?)? as usize,
            "--transform-epochs" => a.transform_epochs = num(value()?)? as usize,
            "--seed" => a.seed = num(value()?)? as u64,
            "--load" => a.load = Some(value()?.into()),
            "--onnx" => a.onnx = Some(value()?.into()),
            "--normalize" => {
                let v = value()?;
                let (m, sd) = v.split_once(',').ok_or(format!(
                    "--normalize {v}: expected MEAN,STD, e.g. 0.1307,0.3081"
                ))?;
                a.normalize = Some((num(m.trim().into())? as f32, num(sd.trim().into())? as f32));
            }
            "--save" => a.save = Some(value()?.into()),
            "--save-he" => a.save_he = Some(value()?.into()),
            "--preset" => a.preset = Some(value()?),
            "--prune-steps" => a.prune_steps = num(value()?)? as usize,
            "--candidates" => a.candidates = Some(num(value()?)? as usize),
            "--distill" => {
                let v = value()?;
                let (t, w) = v
                    .split_once(',')
                    .ok_or(format!("--distill {v}: expected T,A, e.g. 4,0.7"))?;
                a.distill = Some((num(t.into())? as f32, num(w.into())? as f32));
            }
            "--out" => a.out = value()?.into(),
            "--no-encrypt" => a.encrypt = false,
            "--latency" => a.latency = true,
            "-h" | "--help" => return Err(HELP.to_string()),
            other => return Err(format!("unknown flag {other}\n\n{HELP}")),
        }
    }
    if let PackingChoice::Tile { .. } = a.packing {
        a.packing = PackingChoice::Tile {
            rows: a.tile.0,
            cols: a.tile.1,
        };
    }
    if !["column", "weight", "tile"].contains(&a.block.as_str()) {
        return Err(format!(
            "unknown block {} (column, weight or tile)",
            a.block
        ));
    }
    if let Some(p) = &a.preset
        && !["digits", "cnn", "mlp"].contains(&p.as_str())
    {
        return Err(format!("unknown preset {p} (digits, cnn or mlp)"));
    }
    if a.load.is_some() && a.onnx.is_some() {
        return Err("--load and --onnx both name the original network; give one".into());
    }
    if !(0.0..1.0).contains(&a.target) || a.sweep.iter().any(|t| !(0.0..1.0).contains(t)) {
        return Err("targets must be in [0, 1)".into());
    }
    Ok(a)
}

fn bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:<34} [{bar:30}] {pos}/{len} {elapsed_precise} {prefix}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

struct EpochBar(ProgressBar);

impl Progress for EpochBar {
    fn on_epoch(&mut self, s: &EpochStats) {
        self.0.inc(1);
        let metric = s
            .validation
            .as_ref()
            .map_or(String::new(), |v| format!("val {:.4}", v.metric));
        self.0
            .set_prefix(format!("loss {:.4} {metric}", s.train_loss));
    }
}

struct StepBar {
    steps: ProgressBar,
}

impl Progress for StepBar {
    fn on_stage(&mut self, step: usize, total: usize, layer: usize, kind: &str) {
        self.steps.set_length(total as u64);
        self.steps.set_position(step as u64 - 1);
        self.steps.set_prefix(format!("layer {layer} ({kind})"));
    }
    fn on_epoch(&mut self, s: &EpochStats) {
        let metric = s
            .validation
            .as_ref()
            .map_or(String::new(), |v| format!("val {:.4}", v.metric));
        self.steps
            .set_message(format!("HE-friendly: epoch {} {metric}", s.epoch + 1));
    }
}

/// Loads the data: shipped digits (32x32) or MNIST IDX files, padded from
/// 28x28 to 32x32 only when the model (`input`) takes 32x32; then the
/// `--normalize` standardisation.
fn load_data(a: &Args, input: &[usize]) -> mofhei::Result<(Dataset, Dataset, String)> {
    let (train, test, source) = load_raw(a, input)?;
    match a.normalize {
        None => Ok((train, test, source)),
        Some((mean, std)) => {
            let norm = Normalizer::new(
                NormalizeOver::Feature,
                train.sample_shape(),
                &[mean],
                &[std],
            )?;
            Ok((
                norm.normalize(&train)?,
                norm.normalize(&test)?,
                format!("{source}, normalised (x - {mean}) / {std}"),
            ))
        }
    }
}

fn load_raw(a: &Args, input: &[usize]) -> mofhei::Result<(Dataset, Dataset, String)> {
    match &a.mnist {
        None => {
            let (train, test) = Dataset::digits_32x32().split(0.2, a.seed)?;
            Ok((train, test, "digits 32x32 (UCI, shipped)".to_string()))
        }
        Some(dir) => {
            let find = |stem: &str| {
                let plain = dir.join(stem);
                if plain.exists() {
                    plain
                } else {
                    dir.join(format!("{stem}.gz"))
                }
            };
            let train = mofhei::data::idx::load(
                find("train-images-idx3-ubyte"),
                find("train-labels-idx1-ubyte"),
            )?;
            let test = mofhei::data::idx::load(
                find("t10k-images-idx3-ubyte"),
                find("t10k-labels-idx1-ubyte"),
            )?;
            let prep = |d: Dataset| -> mofhei::Result<Dataset> {
                let d = if d.inputs().data().iter().any(|&v| v > 1.0) {
                    d.scale(1.0 / 255.0)
                } else {
                    d
                };
                if d.sample_shape()[1] == 28 && input.get(1) == Some(&32) {
                    d.pad(2)
                } else {
                    Ok(d)
                }
            };
            Ok((
                prep(train)?,
                prep(test)?,
                format!("IDX files in {}", dir.display()),
            ))
        }
    }
}

/// The user's trained network (`--onnx` / `--load`) and its name, if any.
fn user_model(a: &Args) -> mofhei::Result<Option<(Network, String)>> {
    let name = |p: &std::path::Path| {
        p.file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned())
    };
    if let Some(path) = &a.onnx {
        let imported = onnx::from_path(path, onnx::ImportOptions::default())?;
        println!("imported {}:\n{}", path.display(), imported.report);
        return Ok(Some((imported.network, name(path))));
    }
    if let Some(path) = &a.load {
        return Ok(Some((Network::load(path)?, name(path))));
    }
    Ok(None)
}

fn train_original(a: &Args, train: &Dataset) -> mofhei::Result<Network> {
    let mut net = zoo::lenet_mofhei(Activation::Relu, a.seed);
    let pb = bar(a.epochs as u64, "train LeNet (ReLU, max-pool)");
    Trainer::new(TrainConfig {
        epochs: a.epochs,
        batch_size: 32,
        lr: 1e-3,
        seed: a.seed,
        validation_fraction: 0.1,
        early_stopping: Some(6),
        plateau: Some(Plateau {
            factor: 0.5,
            patience: 3,
            min_lr: 1e-5,
        }),
        ..TrainConfig::default()
    })
    .fit(&mut net, train, None, &mut EpochBar(pb.clone()))?;
    pb.finish();
    if let Some(path) = &a.save {
        net.save(path)?;
    }
    Ok(net)
}

/// The HE-friendly transform's settings.
fn he_config(a: &Args) -> HeFriendlyConfig {
    let mut cfg = HeFriendlyConfig::mofhei(a.transform_epochs, a.seed);
    cfg.train.batch_size = 32;
    cfg.fine_tune.batch_size = 32;
    cfg.train.early_stopping = Some(4);
    cfg.fine_tune.early_stopping = Some(4);
    cfg
}

/// The pruning settings: [`MofheiConfig::digits_lenet`] on the shipped
/// digits (measured in docs/pruning.md: gentle ramp, lr 3e-3, shifts of up
/// to 2 pixels, best of the 6 choices of the surviving conv0 filter), and
/// the step-budget presets [`MofheiConfig::cnn`] / [`MofheiConfig::mlp`]
/// elsewhere (docs/pruning.md, "Real MNIST"). `teacher` (with `--distill`)
/// is the HE-friendly dense network.
fn mofhei_config(a: &Args, own_data: bool, teacher: &Network) -> MofheiConfig {
    let preset = a
        .preset
        .as_deref()
        .unwrap_or(if own_data { "cnn" } else { "digits" });
    let mut cfg = match preset {
        "cnn" => MofheiConfig::cnn(a.seed, a.prune_steps, 6),
        "mlp" => MofheiConfig::mlp(a.seed, a.prune_steps),
        _ => MofheiConfig::digits_lenet(a.seed),
    };
    if let Some(k) = a.candidates {
        cfg.candidates = k;
    }
    if a.block != "column" {
        // Best-of-k chooses among whole units; with weight or tile blocks
        // the protected block would survive anyway.
        cfg.candidates = 1;
    }
    let distill = a
        .distill
        .or((preset != "digits").then_some((4.0, 0.7)))
        .filter(|&(t, w)| t > 0.0 && w > 0.0);
    if let Some((temperature, alpha)) = distill {
        cfg.train.distillation = Some(Distillation {
            teacher: teacher.clone(),
            temperature,
            alpha,
        });
    }
    cfg
}

/// Compiles `net` for CKKS with `packing` (slots for at least `images` samples).
fn compile_with(net: &Network, packing: &dyn Packing, images: usize) -> mofhei::Result<Plan> {
    compile(
        net,
        packing,
        &CompileOptions {
            min_slots: images,
            ..CompileOptions::default()
        },
    )
}

/// A batch of `n` images: the test set cycled (slot `i` holds test image `i % test.len()`).
fn batch_of(test: &Dataset, n: usize) -> mofhei::Result<(Tensor, Vec<usize>)> {
    let idx: Vec<usize> = (0..n).map(|i| i % test.len()).collect();
    let sub = test.subset(&idx)?;
    let labels = sub.labels().map(<[usize]>::to_vec).unwrap_or_default();
    Ok((sub.inputs().clone(), labels))
}

/// Runs `plan` encrypted on CKKS over `x`; fills the row's encrypted figures.
fn run_encrypted(
    plan: &Plan,
    net: &Network,
    x: &Tensor,
    labels: &[usize],
    unique: usize,
    row: &mut RunRow,
) -> mofhei::Result<()> {
    let choice = plan.params();
    let params = choice.ckks_params()?;
    let scheme = std::sync::Arc::new(Counted::new(Ckks::new(params)?));
    let mut rng = ChaCha20Rng::from_os_rng();
    let t0 = Instant::now();
    let (client, keys) = Client::new(scheme.clone(), plan, &mut rng)?;
    let keygen = t0.elapsed();
    // Inputs are encrypted on demand, just before the first instruction that
    // reads them (the stand-in for a client streaming ciphertexts), so the
    // whole encrypted batch never sits in memory at once. The time below
    // therefore includes encrypting the inputs.
    let src = client.input_source(x, &mut rng)?;
    let mut server = Server::new(scheme.clone(), plan.clone(), keys)?;
    let _ = scheme.take_counts();
    // The run's own peak, not the process's so far.
    server.set_peak_rss_reset(true);
    let (out, mut report) = server.run_streamed(src.samples(), |j| src.get(j))?;
    report.counts = Some(scheme.take_counts());
    let t2 = Instant::now();
    let logits = client.decrypt(&out)?;
    let decrypt = t2.elapsed();
    let enc_pred = argmax_rows(&logits);
    let plain_pred = net.predict(x)?;
    let agree = enc_pred
        .iter()
        .zip(&plain_pred)
        .filter(|(a, b)| a == b)
        .count();
    let correct = enc_pred
        .iter()
        .zip(labels)
        .take(unique)
        .filter(|(a, b)| a == b)
        .count();
    row.metric_encrypted = Some(correct as f64 / unique.max(1) as f64);
    row.agreement = Some(agree as f64 / enc_pred.len().max(1) as f64);
    row.counts = report.counts.clone().unwrap_or_default();
    row.seconds = report.wall.as_secs_f64();
    row.peak_rss_bytes = report.peak_rss_bytes.unwrap_or(0);
    row.layer_seconds = report
        .layers
        .iter()
        .map(|l| (format!("{} {}", l.layer, l.kind), l.busy.as_secs_f64()))
        .collect();
    println!(
        "  {}: N = 2^{}, {} levels, keygen {:.1?}, encrypt + inference {:.1?}, decrypt {:.1?}, peak RSS {:.2} GB, {} of {} predictions equal the plaintext ones",
        row.label,
        choice.log_n,
        choice.moduli_bits.len() - 1,
        keygen,
        report.wall,
        decrypt,
        row.peak_rss_bytes as f64 / 1e9,
        agree,
        enc_pred.len()
    );
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            println!("{msg}");
            std::process::exit(if msg == HELP { 0 } else { 2 });
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(a: &Args) -> mofhei::Result<()> {
    let start = Instant::now();
    if a.latency {
        return latency(a);
    }
    println!(
        "mofhei pipeline (MOFHEI: HE-friendly transform + packing-aligned pruning + encrypted inference)\n"
    );
    let user = user_model(a)?;
    let lenet_input = [1, 32, 32];
    let input = user
        .as_ref()
        .map_or(&lenet_input[..], |(n, _)| &n.input_shape[..]);
    let (train_all, test, source) = load_data(a, input)?;
    let (train, valid) = train_all.split(0.05, a.seed)?;
    println!(
        "data: {source}: {} train, {} validation, {} test images",
        train.len(),
        valid.len(),
        test.len()
    );

    let (original, model_name) = match user {
        Some((net, name)) => (net, name),
        None => (train_original(a, &train_all)?, "LeNet".to_string()),
    };
    let acc_original = accuracy(&original, &test)?;
    println!("original {model_name}: test accuracy {acc_original:.4}");

    let cfg = he_config(a);
    let steps = bar(6, "HE-friendly transform");
    let (he, treport) = make_he_friendly(
        &original,
        &train,
        &valid,
        &cfg,
        &mut StepBar {
            steps: steps.clone(),
        },
    )?;
    steps.finish();
    let acc_he = accuracy(&he, &test)?;
    if let Some(path) = &a.save_he {
        he.save(path)?;
    }
    println!(
        "HE-friendly {model_name} (poly2, avg-pool): test accuracy {acc_he:.4} ({:.1}s)",
        treport.seconds
    );
    for (layer, c) in &treport.coefficients {
        println!("  layer {layer}: coefficients {:?}", c[0]);
    }

    let mut targets = if a.sweep.is_empty() {
        vec![a.target]
    } else {
        a.sweep.clone()
    };
    targets.sort_by(f64::total_cmp);
    let params_dense = he.param_count();
    let mut nets: Vec<(String, Option<f64>, Network)> = vec![("dense".into(), None, cull(&he)?.0)];
    let own_data = a.mnist.is_some() || a.onnx.is_some();
    let mut pcfg = mofhei_config(a, own_data, &he);
    pcfg.shape = match (a.block.as_str(), a.packing) {
        ("weight", _) => BlockShape::Weight,
        ("tile", _) => BlockShape::Tile {
            rows: a.tile.0,
            cols: a.tile.1,
        },
        _ => BlockShape::Column,
    };
    let packing = a.packing.packing()?;
    for &t in &targets {
        let pb = bar(
            1,
            &format!("prune at {:.0}% ({} blocks)", t * 100.0, a.block),
        );
        pb.enable_steady_tick(Duration::from_millis(500));
        let t0 = Instant::now();
        let (pruned, _) = mofhei_prune(&he, t, &pcfg, &train, &valid)?;
        pb.finish();
        let acc = accuracy(&pruned, &test)?;
        println!(
            "pruned {:.0}%: units {:?}, test accuracy {acc:.4} ({:+.2} points vs HE-friendly, {:.0}s)",
            t * 100.0,
            mofhei::prune::units(&pruned),
            (acc - acc_he) * 100.0,
            t0.elapsed().as_secs_f64()
        );
        nets.push((format!("{:.0}%", t * 100.0), Some(t), pruned));
    }

    // Compile every network; the batch holds N/2 images of the largest plan.
    let mut plans = Vec::new();
    for (label, _, net) in &nets {
        let plan = compile_with(net, packing.as_ref(), a.images.unwrap_or(1))?;
        println!(
            "compiled {label}: depth {}, CKKS N = 2^{}, moduli {:?} + special {:?}, {} HE ops",
            plan.depth(),
            plan.params().log_n,
            plan.params().moduli_bits,
            plan.params().special_bits,
            plan.counts().homomorphic_total()
        );
        plans.push(plan);
    }
    // Samples per inference: N/2 under batch packing, the tile's batch
    // dimension (1) under tile tensors.
    let cap = plans
        .iter()
        .map(|p| p.samples(p.params().slots()))
        .min()
        .unwrap_or(1);
    let images = a.images.unwrap_or(cap).min(cap);
    let (x, labels) = batch_of(&test, images)?;
    let unique = test.len().min(images);

    let mut report = Report {
        title: format!("MOFHEI {model_name} on {source}, {}, CKKS", packing.name()),
        rows: Vec::new(),
    };
    println!("\nencrypted inference, {images} images per batch ({unique} distinct test images):");
    let mut to_encrypt = Vec::new();
    for ((label, target, net), plan) in nets.iter().zip(&plans) {
        let row = RunRow {
            label: label.clone(),
            target: *target,
            sparsity: 1.0 - net.param_count() as f64 / params_dense as f64,
            units: mofhei::prune::units(net),
            metric_plain: f64::from(accuracy(net, &test)?),
            counts: plan.counts().clone(),
            ..RunRow::default()
        };
        let encrypt = a.encrypt
            && (target.is_none()
                || a.encrypt_sweep
                || (*target == Some(a.target))
                || a.sweep.is_empty());
        to_encrypt.push(encrypt);
        report.rows.push(row);
    }
    // Sparsest network first: a run's peak RSS is the process's high-water
    // mark since the run started, and the allocator keeps memory freed by an
    // earlier, bigger run mapped, which would be counted again.
    for (i, ((_, _, net), plan)) in nets.iter().zip(&plans).enumerate().rev() {
        if to_encrypt[i] {
            run_encrypted(plan, net, &x, &labels, unique, &mut report.rows[i])?;
        }
    }

    println!("\n{}", report.table());
    if let Some(dense) = report.rows.first() {
        for r in report.rows.iter().skip(1) {
            let d = dense.he_ops().max(1) as f64;
            let mut line = format!(
                "{}: {:.1}% fewer HE ops than dense",
                r.label,
                100.0 * (1.0 - r.he_ops() as f64 / d)
            );
            if r.seconds > 0.0 && dense.seconds > 0.0 {
                line += &format!(", {:.2}x lower latency", dense.seconds / r.seconds);
            }
            if r.peak_rss_bytes > 0 && dense.peak_rss_bytes > 0 {
                line += &format!(
                    ", {:.2}x lower peak memory",
                    dense.peak_rss_bytes as f64 / r.peak_rss_bytes as f64
                );
            }
            println!("{line}");
        }
        for r in &report.rows {
            if !r.layer_seconds.is_empty() {
                let parts: Vec<String> = r
                    .layer_seconds
                    .iter()
                    .map(|(l, s)| format!("{l} {s:.2}s"))
                    .collect();
                println!(
                    "latency per layer ({}, busy time summed over threads): {}",
                    r.label,
                    parts.join(", ")
                );
            }
        }
        let kinds: Vec<String> = OpKind::ALL
            .iter()
            .filter(|k| k.is_homomorphic() && dense.counts.get(**k) > 0)
            .map(|k| format!("{k:?} {}", dense.counts.get(*k)))
            .collect();
        println!("dense HE ops by kind: {}", kinds.join(", "));
    }
    std::fs::create_dir_all(&a.out).map_err(|source| mofhei::Error::Io {
        path: a.out.clone(),
        source,
    })?;
    let write = |name: &str, text: &str| {
        let path = a.out.join(name);
        std::fs::write(&path, text).map_err(|source| mofhei::Error::Io { path, source })
    };
    write("pipeline.json", &report.to_json())?;
    for (stem, svg) in sweep_charts(&report) {
        write(&format!("pipeline_{stem}.svg"), &svg)?;
    }
    println!(
        "\nreports: {}/pipeline.json, pipeline_{{metric,he_ops,latency}}.svg; total {:.1?}",
        a.out.display(),
        start.elapsed()
    );
    let _ = acc_he;
    Ok(())
}

/// One-image latency with tile tensors: TenSEAL's MNIST tutorial network
/// (conv 7x7 stride 3 x4 - square - fc 256->64 - square - fc 64->10) on
/// 28x28 digits (the 32x32 digits cropped by 2 pixels), trained here, then
/// one image encrypted, evaluated and decrypted, timed end to end; and the
/// same for the HE-friendly MOFHEI LeNet (x^2, average pooling).
fn latency(a: &Args) -> mofhei::Result<()> {
    println!("mofhei latency mode: one image, tile tensors, CKKS\n");
    if let Some((net, name)) = user_model(a)? {
        return latency_user(a, net, &name);
    }
    if a.mnist.is_some() {
        // The same data as the main job: 28x28 for TenSEAL's net, padded
        // to 32x32 for LeNet.
        let (train28, test28, source) = load_data(a, &[1, 28, 28])?;
        println!("data: {source}");
        let (train32, test32) = (train28.pad(2)?, test28.pad(2)?);
        return latency_cases(a, &train28, &test28, &train32, &test32);
    }
    let (train32, test32) = Dataset::digits_32x32().split(0.2, a.seed)?;
    let crop = |d: &Dataset| -> mofhei::Result<Dataset> {
        let n = d.len();
        let src = d.inputs().data();
        let mut out = Vec::with_capacity(n * 28 * 28);
        for s in 0..n {
            for y in 2..30 {
                out.extend_from_slice(&src[s * 1024 + y * 32 + 2..s * 1024 + y * 32 + 30]);
            }
        }
        let labels = d.labels().map(<[usize]>::to_vec).unwrap_or_default();
        Dataset::classification(Tensor::new(vec![n, 1, 28, 28], out)?, labels, 10)
    };
    let (train28, test28) = (crop(&train32)?, crop(&test32)?);
    latency_cases(a, &train28, &test28, &train32, &test32)
}

/// `--latency` with the user's model: made HE-friendly on the same data as
/// the main job, then timed as in [`latency`].
fn latency_user(a: &Args, original: Network, name: &str) -> mofhei::Result<()> {
    let (train_all, test, source) = load_data(a, &original.input_shape)?;
    let (train, valid) = train_all.split(0.05, a.seed)?;
    println!(
        "data: {source}; original {name}: test accuracy {:.4}",
        accuracy(&original, &test)?
    );
    let steps = bar(6, "HE-friendly transform");
    let (he, _) = make_he_friendly(
        &original,
        &train,
        &valid,
        &he_config(a),
        &mut StepBar {
            steps: steps.clone(),
        },
    )?;
    steps.finish();
    let tile = Tile::new(a.tile.0, a.tile.1, 1)?.with_client_patches();
    time_one_image(&format!("HE-friendly {name}"), &he, &test, &tile)
}

/// Trains TenSEAL's MNIST net (28x28) and the HE-friendly LeNet (32x32),
/// then times one-image inference of each.
fn latency_cases(
    a: &Args,
    train28: &Dataset,
    test28: &Dataset,
    train32: &Dataset,
    test32: &Dataset,
) -> mofhei::Result<()> {
    let fit = |net: &mut Network, data: &Dataset, label: &str| -> mofhei::Result<()> {
        let pb = bar(a.epochs as u64, label);
        Trainer::new(TrainConfig {
            epochs: a.epochs,
            batch_size: 32,
            lr: 1e-3,
            seed: a.seed,
            validation_fraction: 0.1,
            early_stopping: Some(6),
            plateau: Some(Plateau {
                factor: 0.5,
                patience: 3,
                min_lr: 1e-5,
            }),
            ..TrainConfig::default()
        })
        .fit(net, data, None, &mut EpochBar(pb.clone()))?;
        pb.finish();
        Ok(())
    };
    let mut tenseal = zoo::tenseal_mnist(a.seed);
    fit(&mut tenseal, train28, "train TenSEAL MNIST net")?;
    let mut lenet = zoo::lenet_mofhei(Activation::Square, a.seed);
    for l in lenet.layers.iter_mut() {
        if let mofhei::model::Layer::MaxPool2d(p) = l {
            *l = mofhei::model::Layer::AvgPool2d(*p);
        }
    }
    fit(&mut lenet, train32, "train HE-friendly LeNet")?;
    let cases: [(&str, &Network, &Dataset, mofhei::packing::Tile); 2] = [
        (
            "TenSEAL MNIST net",
            &tenseal,
            test28,
            mofhei::packing::Tile::new(256, 16, 1)?.with_client_patches(),
        ),
        (
            "MOFHEI LeNet (x^2)",
            &lenet,
            test32,
            mofhei::packing::Tile::new(64, 64, 1)?.with_client_patches(),
        ),
    ];
    for (name, net, test, tile) in cases {
        time_one_image(name, net, test, &tile)?;
    }
    Ok(())
}

/// Encrypts, evaluates and decrypts 5 single images of `test` with `net`
/// compiled for `tile`, and prints the timings and the agreement.
fn time_one_image(
    name: &str,
    net: &Network,
    test: &Dataset,
    tile: &mofhei::packing::Tile,
) -> mofhei::Result<()> {
    println!(
        "{name}: plaintext test accuracy {:.4}",
        accuracy(net, test)?
    );
    let plan = compile(net, tile, &CompileOptions::default())?;
    let choice = plan.params().clone();
    let scheme = std::sync::Arc::new(Counted::new(Ckks::new(choice.ckks_params()?)?));
    let mut rng = ChaCha20Rng::from_os_rng();
    let (client, keys) = Client::new(scheme.clone(), &plan, &mut rng)?;
    let server = Server::new(scheme.clone(), plan.clone(), keys)?;
    let mut worst = 0.0f64;
    let mut times = Vec::new();
    let mut agree = 0;
    let images = 5.min(test.len());
    for i in 0..images {
        let x = test.subset(&[i])?.inputs().clone();
        let t = Instant::now();
        let input = client.encrypt(&x, &mut rng)?;
        let (out, _) = server.run_counted(input)?;
        let y = client.decrypt(&out)?;
        times.push(t.elapsed().as_secs_f64());
        let p = net.forward(&x)?;
        let scale = p
            .data()
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()))
            .max(1e-12);
        for (u, v) in y.data().iter().zip(p.data()) {
            worst = worst.max(f64::from((u - v).abs() / scale));
        }
        agree += usize::from(argmax_rows(&y) == argmax_rows(&p));
    }
    times.sort_by(f64::total_cmp);
    let c = scheme.counts();
    println!(
        "  N = 2^{}, depth {}, {} rotations, {} ct x pt mults per image; end to end (encrypt + run + decrypt): median {:.3}s, best {:.3}s over {images} images; worst logit error {:.4}% of the largest plaintext logit; {agree}/{images} predictions equal",
        choice.log_n,
        plan.depth(),
        c.get(OpKind::Rotation),
        c.get(OpKind::CtPtMul),
        times[times.len() / 2],
        times[0],
        100.0 * worst
    );
    Ok(())
}

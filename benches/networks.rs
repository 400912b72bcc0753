//! Whole networks on CKKS at 128-bit parameters, one timed run each (a run
//! takes seconds to minutes, so criterion's repetitions do not fit): MOFHEI's
//! HE-friendly LeNet, dense (units 6/16/120/84) and 90%-pruned (MOFHEI's
//! culled units 1/2/16/9), one full batch of N/2 images under batch packing
//! and one image under tile tensors (composed matrices, client patches); one
//! full batch of `N/2 / 64` images under tile tensors with convolutions on
//! interleaved 8 x 8 image tiles (`Tile::with_interleaved_conv`); and one
//! image of TenSEAL's MNIST network under tile tensors.
//!
//! For each: server wall time (inputs encrypted on demand by the client while
//! the server runs, as in the pipeline), the server time without encryption,
//! busy time per layer, peak RSS of the process during the run (`VmHWM`,
//! what `/usr/bin/time -v` reports as maximum resident set size), and the
//! share of samples whose encrypted prediction equals the plaintext one.
//! Weights are random, rescaled layer by layer so activations stay near 1.
//!
//! ```sh
//! cargo bench --bench networks                 # every case
//! cargo bench --bench networks -- lenet-pruned # cases whose name contains it
//! cargo bench --bench networks -- plans        # plan figures only (no HE run)
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark set-up: a failure should abort the bench"
)]

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use mofhei::compile::{CompileOptions, compile};
use mofhei::eval::{Client, Server};
use mofhei::he::OpKind;
use mofhei::he::ckks::Ckks;
use mofhei::model::{Activation, Layer, Network, Tensor, argmax_rows, zoo};
use mofhei::packing::tile::Transition;
use mofhei::packing::{Batch, Packing, Tile};
use mofhei::plan::{CostModel, PlainUse, Plan};

/// MOFHEI's HE-friendly LeNet with `units` conv0/conv1/conv2/dense0 outputs.
fn lenet(units: [usize; 4], seed: u64) -> Network {
    let [a, b, c, d] = units;
    let sq = || Layer::Activation(Activation::Square);
    let mut net = Network {
        input_shape: vec![1, 32, 32],
        layers: vec![
            zoo::conv(a, 1, 5, 1, 0),
            sq(),
            Layer::AvgPool2d(zoo::pool(2)),
            zoo::conv(b, a, 5, 1, 0),
            sq(),
            Layer::AvgPool2d(zoo::pool(2)),
            zoo::conv(c, b, 5, 1, 0),
            sq(),
            Layer::Flatten,
            zoo::dense(c, d),
            sq(),
            zoo::dense(d, 10),
        ],
    };
    net.init_assign(seed);
    net
}

/// Rescale each weighted layer so its outputs have unit standard deviation
/// on `x` (random weights would otherwise grow through the squares).
fn normalise(net: &mut Network, x: &Tensor) {
    for i in 0..net.layers.len() {
        if !matches!(net.layers[i], Layer::Dense(_) | Layer::Conv2d(_)) {
            continue;
        }
        let prefix = Network {
            input_shape: net.input_shape.clone(),
            layers: net.layers[..=i].to_vec(),
        };
        let y = prefix.forward(x).unwrap();
        let n = y.data().len() as f64;
        let mean = y.data().iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = y
            .data()
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let k = (1.0 / var.sqrt().max(1e-12)) as f32;
        let (w, b) = match &mut net.layers[i] {
            Layer::Dense(d) => (&mut d.weight, &mut d.bias),
            Layer::Conv2d(c) => (&mut c.weight, &mut c.bias),
            _ => continue,
        };
        w.data_mut().iter_mut().for_each(|v| *v *= k);
        b.iter_mut().for_each(|v| *v *= k);
    }
}

fn images(n: usize, shape: &[usize], rng: &mut ChaCha20Rng) -> Tensor {
    let per: usize = shape.iter().product();
    let data = (0..n * per).map(|_| rng.random::<f32>()).collect();
    let mut s = vec![n];
    s.extend_from_slice(shape);
    Tensor::new(s, data).unwrap()
}

/// CPU seconds (user + system) this process has used so far, from
/// `/proc/self/stat` (robust to other load on the machine, unlike wall time).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of stat (utime, stime) in clock ticks of 1/100 s.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

/// Estimated bytes of the stored plaintexts: each is one polynomial of N
/// 64-bit words per limb at the level it is used (ct x pt) or added at.
fn plaintext_bytes(plan: &Plan) -> u64 {
    let n = 1u64 << plan.params().log_n;
    let mut level = vec![None; plan.plains().len()];
    for s in plan.steps() {
        let l = s
            .instr
            .inputs()
            .first()
            .map(|&v| plan.level(v).0)
            .unwrap_or(0);
        for p in s.instr.plains() {
            level[p as usize].get_or_insert(l);
        }
    }
    level
        .iter()
        .zip(plan.plains())
        .map(|(l, p)| {
            let limbs = u64::from(l.unwrap_or(0)) + u64::from(p.usage == PlainUse::Mul);
            n * 8 * limbs.max(1)
        })
        .sum()
}

/// One line of plan figures.
fn plan_line(name: &str, plan: &Plan) {
    let c = plan.counts();
    println!(
        "{name}: depth {}, N = 2^{}, {} samples/inference, {} input cts, rotations {}, \
         ct x scalar {}, ct x pt {}, ct x ct {}, ct + ct {}, rotation keys {}, \
         {} plaintexts ({:.2} GB est.), peak {} live cts ({} streamed), cost model {:.1} s",
        plan.depth(),
        plan.params().log_n,
        plan.samples(plan.params().slots()),
        plan.input_layout().cts.len(),
        c.get(OpKind::Rotation),
        c.get(OpKind::CtScalarMul),
        c.get(OpKind::CtPtMul),
        c.get(OpKind::CtCtMul),
        c.get(OpKind::CtCtAdd),
        plan.rotation_steps().len(),
        plan.plains().len(),
        plaintext_bytes(plan) as f64 / 1e9,
        plan.peak_live(),
        plan.peak_live_streamed(),
        plan.estimated_seconds(&CostModel::default()),
    );
}

/// Interleaved 8 x 8 tiles with as many samples per tile as the slots hold.
fn interleaved(net: &Network) -> Tile {
    let one = Tile::new(8, 8, 1).unwrap().with_interleaved_conv();
    let plan = compile(net, &one, &CompileOptions::default()).unwrap();
    let batch = (plan.params().slots() / 64).max(1);
    Tile::new(8, 8, batch).unwrap().with_interleaved_conv()
}

fn run(name: &str, net: &Network, packing: &dyn Packing, samples: Option<usize>) {
    let plan: Plan = compile(net, packing, &CompileOptions::default()).unwrap();
    plan_line(name, &plan);
    let choice = plan.params();
    let he = Ckks::new(choice.ckks_params().unwrap()).unwrap();
    let n = samples.unwrap_or_else(|| plan.samples(choice.slots()));
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let x = images(n, &net.input_shape, &mut rng);
    let mut net = net.clone();
    normalise(&mut net, &x);
    let plan = compile(&net, packing, &CompileOptions::default()).unwrap();
    let (client, keys) = Client::new(std::sync::Arc::new(he.clone()), &plan, &mut rng).unwrap();
    let mut server = Server::new(std::sync::Arc::new(he.clone()), plan.clone(), keys).unwrap();

    // Streamed: the client encrypts each input when the server first needs it.
    let src = client.input_source(&x, &mut rng).unwrap();
    // The run's own peak, not the process's so far.
    server.set_peak_rss_reset(true);
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let (out, report) = server.run_streamed(src.samples(), |j| src.get(j)).unwrap();
    let streamed = t.elapsed();
    let cpu = cpu_seconds() - cpu;
    let y = client.decrypt(&out).unwrap();
    drop(out);
    let want = net.forward(&x).unwrap();
    let agree = argmax_rows(&y)
        .iter()
        .zip(argmax_rows(&want))
        .filter(|(a, b)| **a == *b)
        .count();
    println!(
        "{name}: N = 2^{}, depth {}, {n} samples: streamed run {:.2} s ({:.1} CPU s), peak RSS {:.2} GB, \
         encrypted = plaintext predictions {agree}/{n}",
        choice.log_n,
        plan.depth(),
        streamed.as_secs_f64(),
        cpu,
        report.peak_rss_bytes.unwrap_or(0) as f64 / 1e9,
    );
    for l in &report.layers {
        println!(
            "    layer {:>2} {:<10} {:>7} instructions, busy {:>8.2} s",
            l.layer,
            l.kind,
            l.instructions,
            l.busy.as_secs_f64()
        );
    }
    // Server alone: inputs encrypted beforehand (more memory: all inputs live).
    if samples.is_some() {
        let enc = client.encrypt(&x, &mut rng).unwrap();
        let t = Instant::now();
        let (_out, _) = server.run(enc).unwrap();
        println!(
            "    server only (inputs encrypted beforehand): {:.3} s",
            t.elapsed().as_secs_f64()
        );
    }
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f));
    if wanted("lenet-dense-batch") {
        run(
            "lenet-dense-batch",
            &lenet([6, 16, 120, 84], 1),
            &Batch,
            None,
        );
    }
    if wanted("lenet-pruned-batch") {
        run("lenet-pruned-batch", &lenet([1, 2, 16, 9], 1), &Batch, None);
    }
    if wanted("tenseal-tile") {
        run(
            "tenseal-tile",
            &zoo::tenseal_mnist(1),
            &Tile::new(256, 16, 1).unwrap().with_client_patches(),
            Some(1),
        );
    }
    if wanted("lenet-pruned-tile") {
        run(
            "lenet-pruned-tile",
            &lenet([1, 2, 16, 9], 1),
            &Tile::new(64, 64, 1).unwrap().with_client_patches(),
            Some(1),
        );
    }
    if wanted("plans") {
        for (name, units) in [
            ("lenet-dense", [6, 16, 120, 84]),
            ("lenet-pruned", [1, 2, 16, 9]),
        ] {
            let net = lenet(units, 1);
            let cases: [(&str, Box<dyn Packing>); 4] = [
                ("batch", Box::new(Batch)),
                (
                    "tile",
                    Box::new(Tile::new(64, 64, 1).unwrap().with_client_patches()),
                ),
                ("interleaved", Box::new(interleaved(&net))),
                (
                    "interleaved-products",
                    Box::new(interleaved(&net).with_transition(Transition::Products)),
                ),
            ];
            for (p, packing) in cases {
                let plan = compile(&net, packing.as_ref(), &CompileOptions::default()).unwrap();
                plan_line(&format!("{name}-{p}"), &plan);
            }
        }
    }
    if wanted("lenet-dense-interleaved") {
        let net = lenet([6, 16, 120, 84], 1);
        run("lenet-dense-interleaved", &net, &interleaved(&net), None);
    }
    if wanted("lenet-pruned-interleaved") {
        let net = lenet([1, 2, 16, 9], 1);
        run("lenet-pruned-interleaved", &net, &interleaved(&net), None);
    }
    if wanted("lenet-dense-products") {
        let net = lenet([6, 16, 120, 84], 1);
        let p = interleaved(&net).with_transition(Transition::Products);
        run("lenet-dense-products", &net, &p, None);
    }
    if wanted("lenet-dense-tile") {
        run(
            "lenet-dense-tile",
            &lenet([6, 16, 120, 84], 1),
            &Tile::new(64, 64, 1).unwrap().with_client_patches(),
            Some(1),
        );
    }
}

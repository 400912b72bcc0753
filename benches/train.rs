//! Training speed: LeNet (MOFHEI, 32x32, ReLU + max-pool) optimiser steps on
//! batches of 64, single-threaded. One 60k-image epoch = 937.5 steps; the
//! projection is printed after the criterion run.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use mofhei::data::Dataset;
use mofhei::model::{Activation, zoo};
use mofhei::train::{TrainConfig, Trainer};

fn batch64() -> Dataset {
    let d = Dataset::digits_32x32();
    d.subset(&(0..64).collect::<Vec<_>>()).unwrap_or(d)
}

fn lenet_steps(c: &mut Criterion) {
    let batch = batch64();
    let mut net = zoo::lenet_mofhei(Activation::Relu, 1);
    let mut trainer = Trainer::new(TrainConfig::default());
    let mut g = c.benchmark_group("train");
    g.sample_size(10);
    g.bench_function("lenet_step_batch64", |b| {
        b.iter(|| black_box(trainer.step(&mut net, &batch).unwrap_or(f32::NAN)))
    });
    let x = batch.inputs().clone();
    g.bench_function("lenet_forward_batch64", |b| {
        b.iter(|| black_box(net.forward(&x).map(|t| t.len()).unwrap_or(0)))
    });
    g.finish();
}

/// Times 200 steps directly and prints the projected 60k-image epoch.
fn projection() {
    let batch = batch64();
    let mut net = zoo::lenet_mofhei(Activation::Relu, 1);
    let mut trainer = Trainer::new(TrainConfig::default());
    for _ in 0..10 {
        let _ = trainer.step(&mut net, &batch);
    }
    let steps = 200;
    let cpu0 = thread_cpu_seconds();
    let start = Instant::now();
    for _ in 0..steps {
        let _ = black_box(trainer.step(&mut net, &batch));
    }
    let wall = start.elapsed().as_secs_f64() / f64::from(steps);
    println!(
        "LeNet 32x32, batch 64, one thread: wall {:.2} ms per step -> {:.1} s per 60k-image epoch",
        wall * 1e3,
        wall * 60_000.0 / 64.0
    );
    if let (Some(a), Some(b)) = (cpu0, thread_cpu_seconds()) {
        let cpu = (b - a) / f64::from(steps);
        println!(
            "LeNet 32x32, batch 64, one thread: cpu {:.2} ms per step -> {:.1} s per 60k-image epoch \
             (CPU time of this thread; differs from wall time on a loaded machine)",
            cpu * 1e3,
            cpu * 60_000.0 / 64.0
        );
    }
}

/// CPU time (user + system) of the calling thread, from
/// `/proc/thread-self/stat` (Linux; clock ticks of 1/100 s).
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

criterion_group!(benches, lenet_steps);

fn main() {
    // One thread: the target is per core (rayon is only used by evaluation).
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
    benches();
    Criterion::default().configure_from_args().final_summary();
    projection();
}

//! Criterion benchmarks of the simulator backend's hot paths (the cost of
//! fast tests and cost estimates), at 4096 slots.
#![allow(
    clippy::unwrap_used,
    reason = "benchmark set-up: a failure should abort the bench"
)]
use criterion::{Criterion, criterion_group, criterion_main};
use mofhei::he::sim::{Sim, SimParams};
use mofhei::he::{Counted, HeScheme, KeyRequirements, Rotation};
use rand::SeedableRng;
use std::hint::black_box;

fn bench<S: HeScheme<Value = f64>>(c: &mut Criterion, name: &str, s: S) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let sk = s.generate_secret_key(&mut rng).unwrap();
    let pk = s.generate_public_key(&sk, &mut rng).unwrap();
    let keys = s
        .generate_eval_keys(
            &sk,
            &KeyRequirements::new()
                .with_relinearization()
                .with_rotations([Rotation(1)]),
            &mut rng,
        )
        .unwrap();
    let v: Vec<f64> = (0..s.slot_count())
        .map(|i| (i % 17) as f64 / 17.0)
        .collect();
    let pt = s.encode(&v, s.max_level(), s.default_scale()).unwrap();
    let ct = s.encrypt(&pk, &pt, &mut rng).unwrap();
    let cts: Vec<_> = (0..64).map(|_| ct.clone()).collect();
    let refs: Vec<_> = cts.iter().collect();
    let w: Vec<f64> = (0..64).map(|i| i as f64 / 64.0).collect();
    let mut g = c.benchmark_group(name);
    g.bench_function("encode+encrypt", |b| {
        b.iter(|| {
            s.encrypt(
                &pk,
                &s.encode(black_box(&v), s.max_level(), s.default_scale())
                    .unwrap(),
                &mut rng,
            )
        })
    });
    g.bench_function("add", |b| b.iter(|| s.add(black_box(&ct), &ct).unwrap()));
    g.bench_function("mul_relin_rescale", |b| {
        b.iter(|| s.mul_relin_rescale(black_box(&ct), &ct, &keys).unwrap())
    });
    g.bench_function("rotate", |b| {
        b.iter(|| s.rotate(black_box(&ct), Rotation(1), &keys).unwrap())
    });
    g.bench_function("dot_scalar_64", |b| {
        b.iter(|| {
            s.dot_scalar(black_box(&refs), &w, s.default_scale())
                .unwrap()
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let p = SimParams::new(4096, &[60, 40, 40, 60], 40).unwrap();
    bench(c, "sim", Sim::new(p.clone()));
    bench(c, "counted_sim", Counted::new(Sim::new(p)));
}

criterion_group! {
    name = sim;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(sim);

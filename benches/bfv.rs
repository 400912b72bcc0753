//! Criterion benchmarks of the BFV backend (`fhe` crate) at 128-bit
//! parameters shaped like the CKKS sets: N = 8192 with moduli
//! [60, 40, 40, 60] (200 bits) and N = 16384 with eight moduli
//! [60, 40 x 6, 60] (400 bits); plaintext modulus 65537, N/2 slots.
//! Figures are recorded in docs/bfv.md.
#![allow(
    clippy::unwrap_used,
    reason = "benchmark set-up: a failure should abort the bench"
)]
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mofhei::he::bfv::{Bfv, BfvParams};
use mofhei::he::{HeScheme, KeyRequirements, Rotation, Scale};
use rand::SeedableRng;

fn bench(c: &mut Criterion, name: &str, params: BfvParams) {
    let s = Bfv::new(params);
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
    let top = s.max_level();
    let v: Vec<i64> = (0..s.slot_count() as i64).map(|i| i % 201 - 100).collect();
    let pt = s.encode(&v, top, Scale::ONE).unwrap();
    let ct = s.encrypt(&pk, &pt, &mut rng).unwrap();

    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.bench_function("encode+encrypt", |b| {
        b.iter(|| {
            let pt = s.encode(black_box(&v), top, Scale::ONE).unwrap();
            s.encrypt(&pk, &pt, &mut rng).unwrap()
        })
    });
    g.bench_function("decrypt+decode", |b| {
        b.iter(|| s.decode(&s.decrypt(&sk, black_box(&ct)).unwrap()).unwrap())
    });
    g.bench_function("add", |b| b.iter(|| s.add(black_box(&ct), &ct).unwrap()));
    g.bench_function("mul_plain", |b| {
        b.iter(|| s.mul_plain(black_box(&ct), &pt).unwrap())
    });
    g.bench_function("mul_scalar", |b| {
        b.iter(|| s.mul_scalar(black_box(&ct), 37, Scale::ONE).unwrap())
    });
    g.bench_function("mul+relin", |b| {
        b.iter(|| s.mul_relin(black_box(&ct), &ct, &keys).unwrap())
    });
    g.bench_function("rescale (mod switch)", |b| {
        b.iter(|| s.rescale(black_box(&ct)).unwrap())
    });
    g.bench_function("rotate", |b| {
        b.iter(|| s.rotate(black_box(&ct), Rotation(1), &keys).unwrap())
    });
    g.finish();
}

fn bfv(c: &mut Criterion) {
    bench(c, "bfv_n8192_200bit", BfvParams::n8192().unwrap());
    bench(c, "bfv_n16384_400bit", BfvParams::n16384().unwrap());
}

criterion_group!(benches, bfv);
criterion_main!(benches);

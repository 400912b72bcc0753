//! Criterion benchmarks of every CKKS operation at N = 2^13, moduli
//! [60, 40, 40] + special [60], and N = 2^14, moduli [60, 40 x 6] + special [60].
//! Run single-threaded for the SEAL comparison:
//! `RAYON_NUM_THREADS=1 cargo bench --bench ckks`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mofhei::he::ckks::{Ckks, CkksParams};
use mofhei::he::{HeScheme, KeyRequirements, Rotation};
use rand::SeedableRng;

fn bench_set(c: &mut Criterion, log_n: u32, moduli: &[u32]) {
    let params = CkksParams::builder()
        .log_n(log_n)
        .moduli_bits(moduli)
        .special_bits(&[60])
        .scale_bits(40)
        .build()
        .unwrap();
    let ckks = Ckks::new(params).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let sk = ckks.generate_secret_key(&mut rng).unwrap();
    let pk = ckks.generate_public_key(&sk, &mut rng).unwrap();
    let steps: Vec<Rotation> = (1..=8).map(Rotation).collect();
    let req = KeyRequirements::new()
        .with_relinearization()
        .with_rotations(steps.iter().copied());
    let keys = ckks.generate_eval_keys(&sk, &req, &mut rng).unwrap();
    let slots = ckks.slot_count();
    let values: Vec<f64> = (0..slots).map(|i| (i % 17) as f64 / 17.0).collect();
    let level = ckks.max_level();
    let scale = ckks.default_scale();
    let pt = ckks.encode(&values, level, scale).unwrap();
    let ct = ckks.encrypt(&pk, &pt, &mut rng).unwrap();
    let ct2 = ckks.encrypt(&pk, &pt, &mut rng).unwrap();
    let prod = ckks.mul_relin(&ct, &ct2, &keys).unwrap();
    let terms: Vec<_> = (0..16)
        .map(|_| ckks.encrypt(&pk, &pt, &mut rng).unwrap())
        .collect();
    let term_refs: Vec<_> = terms.iter().collect();
    let scalars: Vec<f64> = (0..16).map(|i| i as f64 * 0.1 - 0.75).collect();

    let mut g = c.benchmark_group(format!("ckks_n2^{log_n}_{}primes", moduli.len() + 1));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("encode_encrypt", |b| {
        b.iter(|| {
            let pt = ckks.encode(black_box(&values), level, scale).unwrap();
            ckks.encrypt(&pk, &pt, &mut rng).unwrap()
        })
    });
    g.bench_function("decrypt_decode", |b| {
        b.iter(|| {
            ckks.decode(&ckks.decrypt(&sk, black_box(&ct)).unwrap())
                .unwrap()
        })
    });
    g.bench_function("add", |b| {
        b.iter(|| ckks.add(black_box(&ct), &ct2).unwrap())
    });
    g.bench_function("mul_plain", |b| {
        b.iter(|| ckks.mul_plain(black_box(&ct), &pt).unwrap())
    });
    g.bench_function("mul_scalar", |b| {
        b.iter(|| ckks.mul_scalar(black_box(&ct), 0.37, scale).unwrap())
    });
    g.bench_function("mul_relin", |b| {
        b.iter(|| ckks.mul_relin(black_box(&ct), &ct2, &keys).unwrap())
    });
    g.bench_function("rescale", |b| {
        b.iter(|| ckks.rescale(black_box(&prod)).unwrap())
    });
    g.bench_function("rotate", |b| {
        b.iter(|| ckks.rotate(black_box(&ct), Rotation(1), &keys).unwrap())
    });
    g.bench_function("rotate_many_8_hoisted", |b| {
        b.iter(|| ckks.rotate_many(black_box(&ct), &steps, &keys).unwrap())
    });
    g.bench_function("dot_scalar_16", |b| {
        b.iter(|| {
            ckks.dot_scalar(black_box(&term_refs), &scalars, scale)
                .unwrap()
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_set(c, 13, &[60, 40, 40]);
    bench_set(c, 14, &[60, 40, 40, 40, 40, 40, 40]);
}

criterion_group!(ckks, benches);
criterion_main!(ckks);

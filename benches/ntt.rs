//! Criterion benchmark of one prime's forward + inverse negacyclic NTT at
//! N = 2^13 and 2^14, for a 31-bit, a 50-bit and a 60-bit prime: ours at
//! every SIMD level the CPU has (32-bit lanes for the 31-bit prime, and
//! 64-bit lanes for comparison), and `tfhe-ntt`'s 64-bit plan with
//! `--features tfhe-ntt`:
//! `cargo bench --bench ntt --features tfhe-ntt`. At 2^14 it also times the
//! pointwise multiply-accumulate.

#![expect(
    clippy::unwrap_used,
    reason = "benchmark set-up: any failure should abort the run"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mofhei::he::ckks::ntt_bench::{NttBench, simd_levels};
use mofhei::he::primes::is_prime;

/// The largest prime `= 1 mod 2^16` below `2^bits`.
fn ntt_prime(bits: u32) -> u64 {
    let step = 1u64 << 16;
    let mut q = ((1u64 << bits) - 1) / step * step + 1;
    while !is_prime(q) {
        q -= step;
    }
    q
}

fn bench(c: &mut Criterion) {
    for log_n in [13u32, 14] {
        let n = 1usize << log_n;
        for bits in [31u32, 50, 60] {
            let q = ntt_prime(bits);
            let mut group = c.benchmark_group(format!("ntt_fwd_inv/2^{log_n}/{bits}bit"));
            let data: Vec<u64> = (0..n as u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % q)
                .collect();
            let mut plans: Vec<(String, NttBench)> = Vec::new();
            #[cfg(feature = "tfhe-ntt")]
            plans.push(("tfhe-ntt".into(), NttBench::tfhe(n, q).unwrap()));
            for level in simd_levels() {
                if q < 1 << 31 {
                    plans.push((
                        format!("ours-32/{level}"),
                        NttBench::ours(n, q, true, level).unwrap(),
                    ));
                }
                plans.push((
                    format!("ours-64/{level}"),
                    NttBench::ours(n, q, false, level).unwrap(),
                ));
            }
            for (name, plan) in &plans {
                let mut a = data.clone();
                group.bench_function(name.as_str(), |b| {
                    b.iter(|| plan.forward_inverse(black_box(&mut a)))
                });
            }
            group.finish();
            if log_n == 14 {
                let mut group = c.benchmark_group(format!("mul_acc/2^{log_n}/{bits}bit"));
                let other: Vec<u64> = data.iter().map(|&x| (x ^ 0x5555) % q).collect();
                for (name, plan) in plans
                    .iter()
                    .filter(|(name, _)| !name.starts_with("ours-32"))
                {
                    let mut acc = vec![0u64; n];
                    group.bench_function(name.as_str(), |b| {
                        b.iter(|| plan.mul_acc(black_box(&mut acc), &data, &other))
                    });
                }
                group.finish();
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);

//! Times every CKKS operation (median of repeated runs, milliseconds) and
//! prints JSON; used by `benches/compare/compare.sh` next to SEAL's figures.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release --example ckks_timings`

use std::time::Instant;

use mofhei::he::ckks::{Ckks, CkksParams};
use mofhei::he::{HeScheme, KeyRequirements, Rotation};
use rand::SeedableRng;

/// CPU time of this process in ns (every thread, so work handed to a rayon
/// worker counts too), so that timings are not inflated by other processes
/// on a busy machine. Run with RAYON_NUM_THREADS=1 for single-threaded
/// figures.
fn process_cpu_ns() -> Option<u64> {
    Some(
        cpu_time::ProcessTime::try_now()
            .ok()?
            .as_duration()
            .as_nanos() as u64,
    )
}

/// Milliseconds per call: process CPU time when available (the minimum over
/// `reps` batches of calls lasting >= 20 ms each), wall time otherwise.
/// The first call must succeed: a failing operation is an error, not a
/// (fast) timing.
fn median_ms<T>(
    reps: usize,
    mut f: impl FnMut() -> mofhei::he::Result<T>,
) -> mofhei::he::Result<f64> {
    f()?;
    let wall = Instant::now();
    std::hint::black_box(f()?);
    let one = wall.elapsed().as_secs_f64();
    let batch = ((0.02 / one.max(1e-7)).ceil() as usize).clamp(1, 10_000);
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let (c0, w0) = (process_cpu_ns(), Instant::now());
        for _ in 0..batch {
            std::hint::black_box(f()?);
        }
        let ms = match (c0, process_cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e6,
            _ => w0.elapsed().as_secs_f64() * 1e3,
        };
        best = best.min(ms / batch as f64);
    }
    Ok(best)
}

/// Sum of squared differences.
fn sq_err(got: &[f64], want: &[f64]) -> f64 {
    got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum()
}

fn time_set(log_n: u32, moduli: &[u32], reps: usize, seed: u64) -> mofhei::he::Result<String> {
    let params = CkksParams::builder()
        .log_n(log_n)
        .moduli_bits(moduli)
        .special_bits(&[60])
        .scale_bits(40)
        .build()?;
    let ckks = Ckks::new(params)?;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let sk = ckks.generate_secret_key(&mut rng)?;
    let pk = ckks.generate_public_key(&sk, &mut rng)?;
    let steps: Vec<Rotation> = (1..=8).map(Rotation).collect();
    let req = KeyRequirements::new()
        .with_relinearization()
        .with_rotations(steps.iter().copied());
    let keys = ckks.generate_eval_keys(&sk, &req, &mut rng)?;
    let values: Vec<f64> = (0..ckks.slot_count())
        .map(|i| (i % 17) as f64 / 17.0)
        .collect();
    let (level, scale) = (ckks.max_level(), ckks.default_scale());
    let pt = ckks.encode(&values, level, scale)?;
    let ct = ckks.encrypt(&pk, &pt, &mut rng)?;
    let ct2 = ckks.encrypt(&pk, &pt, &mut rng)?;
    let prod = ckks.mul_relin(&ct, &ct2, &keys)?;
    let terms = (0..16)
        .map(|_| ckks.encrypt(&pk, &pt, &mut rng))
        .collect::<mofhei::he::Result<Vec<_>>>()?;
    let refs: Vec<_> = terms.iter().collect();
    let scalars: Vec<f64> = (0..16).map(|i| i as f64 * 0.1 - 0.75).collect();
    let mut rows = vec![
        (
            "encode_encrypt",
            median_ms(reps, || {
                ckks.encode(&values, level, scale)
                    .and_then(|p| ckks.encrypt(&pk, &p, &mut rng))
            })?,
        ),
        (
            "decrypt_decode",
            median_ms(reps, || {
                ckks.decrypt(&sk, &ct).and_then(|p| ckks.decode(&p))
            })?,
        ),
        ("add", median_ms(reps, || ckks.add(&ct, &ct2))?),
        ("mul_plain", median_ms(reps, || ckks.mul_plain(&ct, &pt))?),
        (
            "mul_scalar",
            median_ms(reps, || ckks.mul_scalar(&ct, 0.37, scale))?,
        ),
        (
            "mul_relin",
            median_ms(reps, || ckks.mul_relin(&ct, &ct2, &keys))?,
        ),
        ("rescale", median_ms(reps, || ckks.rescale(&prod))?),
        (
            "rotate",
            median_ms(reps, || ckks.rotate(&ct, Rotation(1), &keys))?,
        ),
        (
            "rotate_many_8",
            median_ms(reps, || ckks.rotate_many(&ct, &steps, &keys))?,
        ),
        (
            "dot_scalar_16",
            median_ms(reps, || ckks.dot_scalar(&refs, &scalars, scale))?,
        ),
    ];
    // Precision over TRIALS fresh encryptions (pooled): relative L2 error
    // (log2) of public- and secret-key encryption, and of one mul + relin +
    // rescale; and the largest absolute error of the product.
    const TRIALS: usize = 8;
    let squares: Vec<f64> = values.iter().map(|v| v * v).collect();
    let (mut pk_e, mut sk_e, mut mul_e, mut mul_max) = (0.0, 0.0, 0.0, 0.0f64);
    for _ in 0..TRIALS {
        let a = ckks.encrypt(&pk, &pt, &mut rng)?;
        let b = ckks.encrypt(&pk, &pt, &mut rng)?;
        pk_e += sq_err(&ckks.decode(&ckks.decrypt(&sk, &a)?)?, &values);
        let c = ckks.encrypt_secret(&sk, &pt, &mut rng)?;
        sk_e += sq_err(&ckks.decode(&ckks.decrypt(&sk, &c)?)?, &values);
        let prod = ckks.rescale(&ckks.mul_relin(&a, &b, &keys)?)?;
        let out = ckks.decode(&ckks.decrypt(&sk, &prod)?)?;
        mul_e += sq_err(&out, &squares);
        mul_max = out
            .iter()
            .zip(&squares)
            .map(|(o, w)| (o - w).abs())
            .fold(mul_max, f64::max);
    }
    let norm = |want: &[f64]| TRIALS as f64 * want.iter().map(|w| w * w).sum::<f64>();
    rows.push(("enc_pk_rel_err", 0.5 * (pk_e / norm(&values)).log2()));
    rows.push(("enc_sk_rel_err", 0.5 * (sk_e / norm(&values)).log2()));
    rows.push(("mul_rel_err", 0.5 * (mul_e / norm(&squares)).log2()));
    rows.push(("mul_max_abs_err", mul_max.log2()));
    let body: Vec<String> = rows
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v:.4}"))
        .collect();
    Ok(format!("\"{log_n}\": {{{}}}", body.join(", ")))
}

fn main() -> mofhei::he::Result<()> {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    // Keys and encryptions are seeded (SEED, default 1): compare.sh passes
    // the round number, so the precision figures average fresh draws like
    // SEAL's.
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let a = time_set(13, &[60, 40, 40], reps, seed)?;
    let b = time_set(14, &[60, 40, 40, 40, 40, 40, 40], reps, seed)?;
    println!("{{{a}, {b}}}");
    Ok(())
}

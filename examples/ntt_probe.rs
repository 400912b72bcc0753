//! Probe: repeated rotations and mul+relin at N = 2^14 (for profiling).
use mofhei::he::ckks::{Ckks, CkksParams};
use mofhei::he::{HeScheme, KeyRequirements, Rotation};
use rand::SeedableRng;
use std::time::Instant;
fn main() -> mofhei::Result<()> {
    let params = CkksParams::builder()
        .log_n(14)
        .moduli_bits(&[60, 40, 40, 40, 40, 40, 40])
        .special_bits(&[60])
        .scale_bits(40)
        .build()?;
    let ckks = Ckks::new(params)?;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let sk = ckks.generate_secret_key(&mut rng)?;
    let pk = ckks.generate_public_key(&sk, &mut rng)?;
    let keys = ckks.generate_eval_keys(
        &sk,
        &KeyRequirements::new()
            .with_relinearization()
            .with_rotations([Rotation(1)]),
        &mut rng,
    )?;
    let pt = ckks.encode(&[1.0, 2.0], ckks.max_level(), ckks.default_scale())?;
    let ct = ckks.encrypt(&pk, &pt, &mut rng)?;
    let s = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(ckks.rotate(&ct, Rotation(1), &keys)?);
    }
    println!("rotate {:.2} ms", s.elapsed().as_secs_f64() * 1e3 / 20.0);
    let s = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(ckks.mul_relin(&ct, &ct, &keys)?);
    }
    println!("mul_relin {:.2} ms", s.elapsed().as_secs_f64() * 1e3 / 20.0);
    Ok(())
}

//! The main job. For now: a small encrypted computation on the simulator
//! backend, counted by `Counted<Sim>`, printed as a table and as JSON.
//! It grows into the full pipeline (train -> HE-friendly -> prune ->
//! compile -> encrypted inference) as those stages land.

use mofhei::he::sim::{Sim, SimParams};
use mofhei::he::{Counted, HeScheme, KeyRequirements, OpKind, Rotation};
use rand::SeedableRng;

/// One neuron on packed inputs: `sum_i w_i * x_i`, then `y^2`, then a
/// rotate-and-sum over 8 slots. Generic over any backend.
fn neuron<S: HeScheme<Value = f64>>(
    s: &S,
    keys: &S::EvalKeys,
    xs: &[S::Ciphertext],
    w: &[f64],
) -> mofhei::Result<S::Ciphertext> {
    let refs: Vec<&S::Ciphertext> = xs.iter().collect();
    let mut y = s.dot_scalar(&refs, w, s.default_scale())?;
    s.rescale_assign(&mut y)?;
    let y2 = s.mul_relin_rescale(&y, &y, keys)?;
    s.rotate_and_sum(&y2, 8, keys)
}

fn main() -> mofhei::Result<()> {
    let params = SimParams::new(4096, &[60, 40, 40, 40], 40)?;
    let s = Counted::new(Sim::new(params));
    let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
    let sk = s.generate_secret_key(&mut rng)?;
    let pk = s.generate_public_key(&sk, &mut rng)?;
    let req = KeyRequirements::new()
        .with_relinearization()
        .with_rotations([1, 2, 4].map(Rotation));
    let keys = s.generate_eval_keys(&sk, &req, &mut rng)?;

    let inputs: Vec<Vec<f64>> = (0..4)
        .map(|i| {
            (0..4096)
                .map(|j| ((i * 7 + j) % 10) as f64 / 10.0)
                .collect()
        })
        .collect();
    let xs = inputs
        .iter()
        .map(|v| {
            s.encrypt(
                &pk,
                &s.encode(v, s.max_level(), s.default_scale())?,
                &mut rng,
            )
        })
        .collect::<mofhei::Result<Vec<_>>>()?;
    let w = [0.5, -0.25, 1.0, 0.125];
    let out = neuron(&s, &keys, &xs, &w)?;
    let got = s.decode(&s.decrypt(&sk, &out)?)?;

    let plain: Vec<f64> = (0..4096)
        .map(|j| (0..4).map(|i| w[i] * inputs[i][j]).sum::<f64>().powi(2))
        .collect();
    let expected0: f64 = (0..8).map(|j| plain[j]).sum();
    println!(
        "mofhei simulator demo: one neuron (dot of 4 inputs, square, rotate-and-sum over 8 slots)"
    );
    println!(
        "slot 0: encrypted {:.6}, plaintext {:.6}",
        got[0], expected0
    );
    println!("\n{:<16} {:>8}", "operation", "count");
    let counts = s.counts();
    for kind in OpKind::ALL {
        if counts.get(kind) > 0 {
            println!("{:<16} {:>8}", format!("{kind:?}"), counts.get(kind));
        }
    }
    println!("\nJSON:\n{}", counts.to_json());
    Ok(())
}

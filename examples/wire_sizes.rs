//! Bytes on the wire per artefact of the client/server protocol, for the
//! main job's networks (docs/deployment.md): the client view, the
//! parameters, the public key, the evaluation keys, one inference's upload
//! (seeded ciphertexts) and answer.
//!
//! ```text
//! cargo run --release --example wire_sizes            # add --tile for LeNet on tiles (slow keys)
//! ```
//!
//! Measured on real bytes: the view, parameters, public and evaluation
//! keys are generated and serialised whole; an upload is the envelope plus
//! one seeded input ciphertext per input of the plan (every one the same
//! size up to the varint encoding of its residues: one is encrypted and
//! measured, then multiplied by the count), an answer likewise from one
//! ciphertext at the plan's output level. Full-batch uploads of batch
//! packing run to gigabytes: encrypting them all here would take minutes.

use mofhei::compile::{CompileOptions, compile};
use mofhei::eval::ClientView;
use mofhei::he::ckks::Ckks;
use mofhei::he::{HeScheme, HeWire, Level};
use mofhei::model::{Activation, Layer, Network, zoo};
use mofhei::packing::{Batch, Packing, Tile};
use mofhei::plan::Plan;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn lenet() -> Network {
    let mut net = zoo::lenet_mofhei(Activation::Square, 1);
    for l in net.layers.iter_mut() {
        if let Layer::MaxPool2d(p) = l {
            *l = Layer::AvgPool2d(*p);
        }
    }
    net
}

fn mib(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

fn row(name: &str, net: &Network, packing: &dyn Packing) -> Result<(), AnyError> {
    let plan: Plan = compile(net, packing, &CompileOptions::default())?;
    let he = Ckks::for_plan(&plan)?;
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let view = ClientView::new(&plan, &he)?.to_bytes()?;
    let params = he.params_to_bytes()?;
    let sk = he.generate_secret_key(&mut rng)?;
    let pk = he.public_key_to_bytes(&he.generate_public_key(&sk, &mut rng)?)?;
    let keys =
        he.eval_keys_to_bytes(&he.generate_eval_keys(&sk, plan.key_requirements(), &mut rng)?)?;
    let pt = he.encode(&[0.5], Level(plan.depth()), he.default_scale())?;
    let one_in = he.encrypt_secret_to_bytes(&sk, &pt, &mut rng)?.len() as u64 + 4;
    let out_level = plan.outputs().first().map_or(Level(0), |&o| plan.level(o));
    let pt0 = he.encode(&[0.5], out_level, he.default_scale())?;
    let one_out = he
        .ciphertext_to_bytes(&he.encrypt_secret(&sk, &pt0, &mut rng)?)?
        .len() as u64
        + 4;
    let frame = 13 + 8 + 32 + 8;
    let n_in = plan.input_layout().cts.len() as u64;
    let n_out = plan.outputs().len() as u64;
    let samples = plan.samples(he.slot_count());
    println!(
        "| {name} | 2^{} | {} | {} B | {} B | {} | {} | {} | {} x {} = {} | {} x {} = {} | {} |",
        plan.params().log_n,
        mib(plan.to_bytes()?.len() as u64),
        view.len(),
        params.len(),
        mib(pk.len() as u64),
        keys.len(),
        mib(keys.len() as u64),
        n_in,
        mib(one_in),
        mib(n_in * one_in + frame),
        n_out,
        mib(one_out),
        mib(n_out * one_out + frame),
        samples,
    );
    Ok(())
}

fn main() -> Result<(), AnyError> {
    println!(
        "| plan | N | plan (server) | client view | parameters | public key | eval keys (B) | eval keys | upload / inference | answer / inference | samples / inference |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mlp = zoo::mlp(&[64, 32, 10], Activation::Square, 1)?;
    row("MLP 64-32-10, batch", &mlp, &Batch)?;
    row("LeNet (HE-friendly), batch", &lenet(), &Batch)?;
    // Tile packing needs a rotation key per step: slow to generate.
    if std::env::args().any(|a| a == "--tile") {
        row(
            "LeNet (HE-friendly), tile 64x64",
            &lenet(),
            &Tile::new(64, 64, 1)?.with_client_patches(),
        )?;
    }
    Ok(())
}

//! The precision a plan asks for is the precision it gets (issue 15): the
//! CKKS outputs of batch, tile and interleaved-convolution plans against an
//! exact simulator run of the same plan (same primes, same scale, no noise),
//! measured against the precision the plan states
//! (`CkksChoice::expected_precision_bits`), with and without the noise
//! flooding of decryption.
#![allow(clippy::unwrap_used, reason = "test set-up helpers")]

use std::sync::Arc;

use mofhei::compile::{CompileOptions, compile};
use mofhei::eval::{Client, DEFAULT_FLOODING_BITS, Server};
use mofhei::he::HeScheme;
use mofhei::he::ckks::Ckks;
use mofhei::he::sim::Sim;
use mofhei::model::{Activation, Conv2d, Dense, Layer, Network, Pool2d, Tensor, zoo};
use mofhei::packing::{Batch, Packing, Tile};
use mofhei::plan::Plan;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn tensor(r: &mut ChaCha20Rng, shape: Vec<usize>, scale: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(
        shape,
        (0..n).map(|_| r.random_range(-scale..scale)).collect(),
    )
    .unwrap()
}

fn run<S: HeScheme<Value = f64>>(he: &Arc<S>, plan: &Plan, x: &Tensor, flood: bool) -> Tensor {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let (mut client, keys) = Client::new(he.clone(), plan, &mut rng).unwrap();
    if !flood {
        client.set_flooding(None);
    }
    let server = Server::new(he.clone(), plan.clone(), keys).unwrap();
    let (out, _) = server.run(client.encrypt(x, &mut rng).unwrap()).unwrap();
    client.decrypt(&out).unwrap()
}

/// Largest |CKKS - simulator| over the outputs of `n` samples, and the
/// plan's own statement.
fn measure(name: &str, net: &Network, packing: &dyn Packing, n: usize) -> (f64, f64, f64) {
    let plan = compile(net, packing, &CompileOptions::default()).unwrap();
    let ckks = Arc::new(Ckks::for_plan(&plan).unwrap());
    let sim = Arc::new(Sim::new(ckks.params().sim_params().unwrap()));
    let mut r = ChaCha20Rng::seed_from_u64(3);
    let mut shape = vec![n];
    shape.extend_from_slice(&net.input_shape);
    let x = tensor(&mut r, shape, 1.0);
    let b = run(&sim, &plan, &x, false);
    let diff = |a: &Tensor| {
        a.data()
            .iter()
            .zip(b.data())
            .map(|(p, q)| f64::from((p - q).abs()))
            .fold(0.0, f64::max)
    };
    let exact = diff(&run(&ckks, &plan, &x, false));
    let err = diff(&run(&ckks, &plan, &x, true));
    let big = b
        .data()
        .iter()
        .map(|v| f64::from(v.abs()))
        .fold(0.0, f64::max);
    let stated = plan.params().expected_error();
    let bits = plan.params().expected_precision_bits();
    eprintln!(
        "{name}: max |ckks - sim| = {err:.3e} ({:.1} bits; {exact:.3e} = {:.1} bits without flooding), outputs up to {big:.2}, stated {stated:.3e} ({bits} bits), {:?}",
        -err.log2(),
        -exact.log2(),
        plan.params()
    );
    (exact, err, stated)
}

fn small_cnn(r: &mut ChaCha20Rng) -> Network {
    let conv = Layer::Conv2d(Conv2d {
        weight: tensor(r, vec![3, 2, 3, 3], 0.25),
        bias: vec![0.05, -0.05, 0.1],
        stride: (1, 1),
        padding: (0, 0),
    });
    let pool = Layer::AvgPool2d(Pool2d {
        kernel: (2, 2),
        stride: (2, 2),
        padding: (0, 0),
    });
    let dense = Layer::Dense(Dense {
        weight: tensor(r, vec![4, 27], 0.2),
        bias: vec![0.1; 4],
    });
    let layers = vec![
        conv,
        Layer::Activation(Activation::Square),
        pool,
        Layer::Flatten,
        dense,
    ];
    Network::new(vec![2, 8, 8], layers).unwrap()
}

#[test]
fn ckks_meets_the_stated_precision_on_batch_tile_and_interleaved_plans() {
    let mlp = zoo::mlp(&[16, 32, 32, 4], Activation::Square, 7).unwrap();
    let cnn = small_cnn(&mut ChaCha20Rng::seed_from_u64(8));
    let tile = Tile::new(8, 8, 1).unwrap();
    let interleaved = Tile::new(4, 4, 1).unwrap().with_interleaved_conv();
    let mut results: Vec<(&str, (f64, f64, f64))> = Vec::new();
    for (name, net, packing, n) in [
        ("batch", &mlp, &Batch as &dyn Packing, 64),
        ("tile", &mlp, &tile as &dyn Packing, 1),
        ("interleaved", &cnn, &interleaved as &dyn Packing, 1),
    ] {
        results.push((name, measure(name, net, packing, n)));
    }
    // Flooding adds noise of 2^DEFAULT_FLOODING_BITS times the estimated
    // error's deviation: the outputs lose those bits (plus one for its tail).
    let flooding = (f64::from(DEFAULT_FLOODING_BITS) + 1.0).exp2();
    for (name, (exact, flooded, stated)) in results {
        assert!(
            exact <= stated,
            "{name}: {exact:.3e} above the stated {stated:.3e}"
        );
        assert!(
            flooded <= stated * flooding,
            "{name}: flooded {flooded:.3e} above {:.3e}",
            stated * flooding
        );
    }
}

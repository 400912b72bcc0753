//! Encrypted evaluation on the simulator: one dense layer and a small
//! network, dense vs pruned, under each packing. CKKS figures come from the
//! pipeline's benches; these measure the evaluator's own overhead and show
//! that pruned blocks cost nothing.
#![allow(
    clippy::unwrap_used,
    reason = "benchmark set-up: a failure should abort the bench"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use mofhei::compile::{CompileOptions, compile};
use mofhei::eval::{Client, Server};
use mofhei::he::sim::Sim;
use mofhei::model::{Activation, Layer, Network, Tensor, zoo};
use mofhei::packing::{Batch, Diagonal, Packing, Tile};

/// Zero a fraction of every dense/conv layer's output units but the last.
fn prune_units(net: &Network, keep: f64) -> Network {
    let mut net = net.clone();
    let last = net
        .layers
        .iter()
        .rposition(|l| matches!(l, Layer::Dense(_) | Layer::Conv2d(_)))
        .unwrap_or(0);
    for (i, l) in net.layers.iter_mut().enumerate() {
        if i == last {
            continue;
        }
        let w = match l {
            Layer::Dense(d) => &mut d.weight,
            Layer::Conv2d(c) => &mut c.weight,
            _ => continue,
        };
        let out = w.shape()[0];
        let per = w.len() / out;
        let kept = ((out as f64 * keep).ceil() as usize).max(1);
        w.data_mut()[kept * per..].iter_mut().for_each(|v| *v = 0.0);
    }
    net
}

fn bench_net(c: &mut Criterion, name: &str, net: &Network, packing: &dyn Packing, slots: usize) {
    let plan = compile(net, packing, &CompileOptions::default()).unwrap();
    let slots = slots.max(plan.period().unwrap_or(1));
    let sim = std::sync::Arc::new(Sim::new(plan.params().sim_params(slots).unwrap()));
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (client, keys) = Client::new(sim.clone(), &plan, &mut rng).unwrap();
    let server = Server::new(sim.clone(), plan.clone(), keys).unwrap();
    let n = client.samples();
    let mut shape = vec![n];
    shape.extend_from_slice(&net.input_shape);
    let len: usize = shape.iter().product();
    let x = Tensor::new(
        shape,
        (0..len).map(|_| rng.random_range(-1.0..1.0)).collect(),
    )
    .unwrap();
    c.bench_function(name, |b| {
        b.iter_batched(
            || {
                client
                    .encrypt(&x, &mut ChaCha20Rng::seed_from_u64(2))
                    .unwrap()
            },
            |input| server.run(input).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
}

fn layers(c: &mut Criterion) {
    let dense = zoo::mlp(&[256, 64], Activation::Square, 1).unwrap();
    let pruned = {
        let mut n = dense.clone();
        if let Layer::Dense(d) = &mut n.layers[0] {
            // 90% of the weights zero, in whole 16 x 16 tiles / weights.
            for (i, w) in d.weight.data_mut().iter_mut().enumerate() {
                let (r, col) = (i / 256, i % 256);
                if (r / 16 + col / 16) % 10 != 0 {
                    *w = 0.0;
                }
            }
        }
        n
    };
    for (label, net) in [("dense", &dense), ("pruned90", &pruned)] {
        bench_net(c, &format!("layer 256->64 batch {label}"), net, &Batch, 64);
        bench_net(
            c,
            &format!("layer 256->64 tile16x16 {label}"),
            net,
            &Tile::new(16, 16, 1).unwrap(),
            256,
        );
        bench_net(
            c,
            &format!("layer 256->64 diagonal {label}"),
            net,
            &Diagonal,
            256,
        );
    }
}

fn networks(c: &mut Criterion) {
    let mlp = zoo::mlp(&[64, 32, 16, 10], Activation::Square, 2).unwrap();
    let tenseal = zoo::tenseal_mnist(3);
    for (label, keep) in [("dense", 1.0), ("pruned", 0.25)] {
        let m = prune_units(&mlp, keep);
        bench_net(c, &format!("mlp 64-32-16-10 batch {label}"), &m, &Batch, 64);
        bench_net(
            c,
            &format!("mlp 64-32-16-10 diagonal {label}"),
            &m,
            &Diagonal,
            64,
        );
        let t = prune_units(&tenseal, keep);
        bench_net(
            c,
            &format!("tenseal-mnist tile256x16+patches {label}"),
            &t,
            &Tile::new(256, 16, 1).unwrap().with_client_patches(),
            4096,
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = layers, networks
}
criterion_main!(benches);

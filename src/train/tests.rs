//! Gradient checks (finite differences) for every layer and loss; the
//! trainer's behaviour (masks, freezing, determinism, early stopping) is
//! tested in `fit`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::backprop::params_mut;
use super::pass::train_mode_loss;
use super::*;
use crate::data::synthetic;
use crate::data::{Dataset, Targets};
use crate::model::zoo::{conv, dense, pool};
use crate::model::{Activation, BatchNorm, Poly, Pool2d};
use crate::model::{Layer, Network, Tensor};

mod fit;

fn rand_tensor(shape: Vec<usize>, rng: &mut ChaCha8Rng, scale: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(
        shape,
        (0..n).map(|_| rng.random_range(-scale..scale)).collect(),
    )
    .unwrap()
}

/// A network with random weights (dense/conv), for gradient checks.
fn randomised(input: Vec<usize>, layers: Vec<Layer>, seed: u64) -> Network {
    let mut net = Network::new(input, layers).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for l in &mut net.layers {
        for p in params_mut(l) {
            p.iter_mut()
                .for_each(|v| *v += rng.random_range(-0.5f32..0.5));
        }
    }
    net
}

/// A regression batch for `net` with random inputs and targets.
fn mse_batch(net: &Network, n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = vec![n];
    s.extend_from_slice(&net.input_shape);
    let x = rand_tensor(s, &mut rng, 1.0);
    let mut t = vec![n];
    t.extend(net.output_shape().unwrap());
    let y = rand_tensor(t, &mut rng, 1.0);
    Dataset::regression(x, y).unwrap()
}

/// Compares analytic gradients (parameters and input) with central
/// differences on up to `per` coordinates of each; relative error of the
/// sampled gradient vectors must be below `tol`.
fn check(net: &Network, batch: &Dataset, loss: Loss, eps: f32, tol: f32) {
    let seed = 11;
    let (_, grads, dx) = gradients_with_input(net, batch, loss, seed).unwrap();
    let per = 24;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let cmp = |name: String, a: &[f32], n: &[f32]| {
        let diff: f32 = a
            .iter()
            .zip(n)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt();
        let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nn: f32 = n.iter().map(|x| x * x).sum::<f32>().sqrt();
        let rel = diff / na.max(nn).max(1e-3);
        assert!(
            rel < tol,
            "{name}: relative error {rel}\nanalytic {a:?}\nnumeric  {n:?}"
        );
    };
    for (i, layer_grads) in grads.layers.iter().enumerate() {
        for (j, g) in layer_grads.iter().enumerate() {
            let coords: Vec<usize> = if g.len() <= per {
                (0..g.len()).collect()
            } else {
                (0..per).map(|_| rng.random_range(0..g.len())).collect()
            };
            let mut num = Vec::new();
            let mut ana = Vec::new();
            for &c in &coords {
                let mut plus = net.clone();
                params_mut(&mut plus.layers[i])[j][c] += eps;
                let mut minus = net.clone();
                params_mut(&mut minus.layers[i])[j][c] -= eps;
                let d = (train_mode_loss(&plus, batch, loss, seed)
                    - train_mode_loss(&minus, batch, loss, seed))
                    / (2.0 * eps);
                num.push(d);
                ana.push(g[c]);
            }
            cmp(
                format!("layer {i} ({}) param {j}", net.layers[i].kind()),
                &ana,
                &num,
            );
        }
    }
    let xs = batch.inputs().len();
    let coords: Vec<usize> = (0..per.min(xs)).map(|_| rng.random_range(0..xs)).collect();
    let mut num = Vec::new();
    let mut ana = Vec::new();
    for &c in &coords {
        let shift = |d: f32| {
            let (mut inputs, targets) = batch.clone().into_parts();
            inputs.data_mut()[c] += d;
            match targets {
                Targets::Classes { labels, classes } => {
                    Dataset::classification(inputs, labels, classes).unwrap()
                }
                Targets::Values(t) => Dataset::regression(inputs, t).unwrap(),
            }
        };
        let d = (train_mode_loss(net, &shift(eps), loss, seed)
            - train_mode_loss(net, &shift(-eps), loss, seed))
            / (2.0 * eps);
        num.push(d);
        ana.push(dx[c]);
    }
    cmp("input".into(), &ana, &num);
}

#[test]
fn grad_dense_and_mse() {
    let net = randomised(vec![5], vec![dense(5, 4)], 1);
    check(&net, &mse_batch(&net, 3, 2), Loss::Mse, 1e-2, 1e-2);
}

#[test]
fn grad_conv_stride_padding() {
    let mut c = conv(3, 2, 3, 1, 0);
    if let Layer::Conv2d(cv) = &mut c {
        cv.stride = (2, 1);
        cv.padding = (1, 2);
    }
    let net = randomised(vec![2, 7, 6], vec![c, Layer::Flatten], 3);
    check(&net, &mse_batch(&net, 2, 4), Loss::Mse, 1e-2, 1e-2);
    // a bigger conv that goes through the sgemm path in every product
    let net = randomised(
        vec![3, 10, 10],
        vec![conv(8, 3, 3, 1, 1), Layer::Flatten],
        5,
    );
    check(&net, &mse_batch(&net, 7, 6), Loss::Mse, 1e-2, 1e-2);
}

#[test]
fn grad_conv_kernel_paths() {
    // unpadded, unit stride, >= 64 output pixels: one sample per product
    // and the im2col fast path
    let net = randomised(
        vec![2, 11, 11],
        vec![conv(7, 2, 3, 1, 0), Layer::Flatten],
        7,
    );
    check(&net, &mse_batch(&net, 3, 8), Loss::Mse, 1e-2, 1e-2);
    // a window covering the whole input: the dense path (LeNet's conv3)
    let net = randomised(
        vec![2, 5, 5],
        vec![conv(9, 2, 5, 1, 0), Layer::Flatten, dense(9, 3)],
        9,
    );
    check(&net, &mse_batch(&net, 6, 10), Loss::Mse, 1e-2, 1e-2);
}

#[test]
fn grad_pools() {
    let avg = Layer::AvgPool2d(Pool2d {
        kernel: (3, 3),
        stride: (2, 2),
        padding: (1, 1),
    });
    let net = randomised(
        vec![2, 6, 6],
        vec![conv(2, 2, 3, 1, 1), avg, Layer::Flatten],
        7,
    );
    check(&net, &mse_batch(&net, 2, 8), Loss::Mse, 1e-2, 1e-2);
    let net = randomised(
        vec![2, 6, 6],
        vec![
            conv(3, 2, 3, 1, 1),
            Layer::MaxPool2d(pool(2)),
            Layer::Flatten,
        ],
        9,
    );
    check(&net, &mse_batch(&net, 2, 10), Loss::Mse, 1e-3, 2e-2);
}

fn bn(c: usize) -> Layer {
    Layer::BatchNorm(BatchNorm {
        gamma: vec![1.0; c],
        beta: vec![0.0; c],
        mean: vec![0.0; c],
        var: vec![1.0; c],
        eps: 1e-5,
        momentum: 0.1,
    })
}

#[test]
fn grad_batchnorm_1d_2d() {
    let net = randomised(vec![6], vec![dense(6, 4), bn(4), dense(4, 3)], 12);
    check(&net, &mse_batch(&net, 5, 13), Loss::Mse, 1e-2, 2e-2);
    let net = randomised(
        vec![2, 5, 5],
        vec![conv(3, 2, 3, 1, 0), bn(3), Layer::Flatten, dense(27, 2)],
        14,
    );
    check(&net, &mse_batch(&net, 3, 15), Loss::Mse, 1e-2, 2e-2);
}

#[test]
fn grad_activations() {
    let acts = [
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Square,
        Activation::Poly(Poly {
            coeffs: vec![vec![0.1, 0.5, 0.3, -0.2]],
        }),
    ];
    for (k, a) in acts.into_iter().enumerate() {
        let eps = if a == Activation::Relu { 1e-3 } else { 1e-2 };
        let net = randomised(
            vec![6],
            vec![dense(6, 5), Layer::Activation(a), dense(5, 3)],
            20 + k as u64,
        );
        check(
            &net,
            &mse_batch(&net, 4, 30 + k as u64),
            Loss::Mse,
            eps,
            2e-2,
        );
    }
    // per-channel polynomial after a convolution
    let poly = Layer::Activation(Activation::Poly(Poly {
        coeffs: vec![
            vec![0.0, 1.0, 0.2],
            vec![0.1, 0.4, -0.3],
            vec![0.0, 0.7, 0.1],
        ],
    }));
    let net = randomised(
        vec![1, 5, 5],
        vec![conv(3, 1, 3, 1, 0), poly, Layer::Flatten],
        40,
    );
    check(&net, &mse_batch(&net, 2, 41), Loss::Mse, 1e-2, 2e-2);
}

#[test]
fn grad_dropout_and_cross_entropy() {
    let net = randomised(
        vec![6],
        vec![
            dense(6, 8),
            Layer::Activation(Activation::Tanh),
            Layer::Dropout { rate: 0.5 },
            dense(8, 4),
        ],
        50,
    );
    check(&net, &mse_batch(&net, 3, 51), Loss::Mse, 1e-2, 2e-2);
    let mut rng = ChaCha8Rng::seed_from_u64(52);
    let x = rand_tensor(vec![5, 6], &mut rng, 1.0);
    let batch = Dataset::classification(x, vec![0, 3, 1, 1, 2], 4).unwrap();
    check(&net, &batch, Loss::CrossEntropy, 1e-2, 2e-2);
}

#[test]
fn grad_lenet_shaped_network() {
    // a small LeNet: conv - relu - maxpool - conv - tanh - avgpool - dense
    let net = randomised(
        vec![1, 14, 14],
        vec![
            conv(4, 1, 3, 1, 0),
            Layer::Activation(Activation::Relu),
            Layer::MaxPool2d(pool(2)),
            conv(6, 4, 3, 1, 0),
            Layer::Activation(Activation::Tanh),
            Layer::AvgPool2d(pool(2)),
            Layer::Flatten,
            dense(24, 10),
        ],
        60,
    );
    let mut rng = ChaCha8Rng::seed_from_u64(61);
    let x = rand_tensor(vec![4, 1, 14, 14], &mut rng, 1.0);
    let batch = Dataset::classification(x, vec![1, 7, 3, 9], 10).unwrap();
    check(&net, &batch, Loss::CrossEntropy, 1e-3, 3e-2);
}

#[test]
fn grad_distillation_loss() {
    let mut rng = ChaCha8Rng::seed_from_u64(70);
    let k = 5;
    let s: Vec<f32> = (0..3 * k).map(|_| rng.random_range(-2.0..2.0)).collect();
    let t: Vec<f32> = (0..3 * k).map(|_| rng.random_range(-2.0..2.0)).collect();
    let labels = [1, 4, 0];
    let (_, g) = loss::distillation(&s, &t, &labels, k, 3.0, 0.7);
    let eps = 1e-2;
    for i in 0..s.len() {
        let mut p = s.clone();
        p[i] += eps;
        let mut m = s.clone();
        m[i] -= eps;
        let num = (loss::distillation(&p, &t, &labels, k, 3.0, 0.7).0
            - loss::distillation(&m, &t, &labels, k, 3.0, 0.7).0)
            / (2.0 * eps);
        assert!((num - g[i]).abs() < 2e-3, "{i}: {num} vs {}", g[i]);
    }
    // identical student and teacher: the KL part vanishes
    let (l, _) = loss::distillation(&t, &t, &labels, k, 2.0, 1.0);
    assert!(l.abs() < 1e-6);
}

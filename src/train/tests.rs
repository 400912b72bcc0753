//! Gradient checks (finite differences) for every layer and loss, and the
//! trainer's behaviour: masks, freezing, determinism, early stopping.

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

fn blobs() -> (Dataset, Dataset) {
    synthetic::blobs(600, 8, 4, 0.6, 3)
        .unwrap()
        .split(0.25, 1)
        .unwrap()
}

fn mlp() -> Network {
    crate::model::zoo::mlp(&[8, 16, 4], Activation::Relu, 4).unwrap()
}

#[test]
fn training_learns_and_is_deterministic() {
    let (train, val) = blobs();
    let cfg = TrainConfig {
        epochs: 5,
        batch_size: 32,
        lr: 1e-2,
        ..TrainConfig::default()
    };
    let run = |cfg: &TrainConfig| {
        let mut net = mlp();
        let h = Trainer::new(cfg.clone())
            .fit(&mut net, &train, Some(&val), &mut NoProgress)
            .unwrap();
        (net, h)
    };
    let (a, ha) = run(&cfg);
    let (b, hb) = run(&cfg);
    assert_eq!(a, b, "same seed, same weights");
    assert_eq!(ha, hb);
    assert!(accuracy(&a, &val).unwrap() > 0.9);
    let (c, _) = run(&TrainConfig {
        seed: 9,
        ..cfg.clone()
    });
    assert_ne!(a, c);
    // SGD with momentum learns too; the progress closure sees every epoch
    let mut seen = Vec::new();
    let mut net = mlp();
    Trainer::new(TrainConfig {
        optimizer: Optimizer::Sgd { momentum: 0.9 },
        lr: 0.05,
        ..cfg
    })
    .fit(&mut net, &train, Some(&val), &mut |s: &EpochStats| {
        seen.push(s.epoch)
    })
    .unwrap();
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    assert!(accuracy(&net, &val).unwrap() > 0.9);
}

/// Counts steps and prunes more weights of layer 0 half-way.
struct PruneMidway {
    steps: u64,
}

impl Progress for PruneMidway {
    fn on_step(&mut self, step: u64, _net: &Network, masks: &mut Masks) {
        self.steps = step;
        if step == 40 {
            let mut m = masks.get(0).unwrap().to_vec();
            m.iter_mut().step_by(2).for_each(|k| *k = false);
            masks.set(0, m);
        }
    }
}

#[test]
fn masked_weights_stay_exactly_zero() {
    let (train, val) = blobs();
    for opt in [Optimizer::adam(), Optimizer::Sgd { momentum: 0.9 }] {
        let mut net = mlp();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut masks = Masks::new();
        masks.set(0, (0..8 * 16).map(|_| rng.random_bool(0.3)).collect());
        masks.set(2, (0..16 * 4).map(|_| rng.random_bool(0.5)).collect());
        let mut trainer = Trainer::new(TrainConfig {
            epochs: 6,
            batch_size: 16,
            lr: 1e-2,
            optimizer: opt,
            weight_decay: 1e-3,
            ..TrainConfig::default()
        })
        .with_masks(masks);
        let mut p = PruneMidway { steps: 0 };
        trainer.fit(&mut net, &train, Some(&val), &mut p).unwrap();
        assert!(p.steps > 100);
        let m = trainer.masks();
        for i in [0, 2] {
            let Layer::Dense(d) = &net.layers[i] else {
                panic!()
            };
            let mask = m.get(i).unwrap();
            for (w, k) in d.weight.data().iter().zip(mask) {
                if !*k {
                    assert_eq!(w.to_bits(), 0.0f32.to_bits(), "pruned weight moved");
                } else {
                    assert_ne!(*w, 0.0);
                }
            }
        }
        assert_eq!(Masks::from_nonzero(&net), *m);
        // a wrong-sized mask is an error, not a panic
        let mut bad = Masks::new();
        bad.set(0, vec![true; 3]);
        assert!(bad.apply_assign(&mut net).is_err());
        bad = Masks::new();
        bad.set(1, vec![true; 3]);
        assert!(bad.check(&net).is_err());
    }
}

#[test]
fn freezing_and_bias_only() {
    let (train, _) = blobs();
    let base = mlp();
    let mut net = base.clone();
    Trainer::new(TrainConfig {
        epochs: 1,
        freeze: Freeze::before(1),
        ..TrainConfig::default()
    })
    .fit(&mut net, &train, None, &mut NoProgress)
    .unwrap();
    assert_eq!(net.layers[0], base.layers[0]);
    assert_ne!(net.layers[2], base.layers[2]);
    let mut net = base.clone();
    Trainer::new(TrainConfig {
        epochs: 1,
        freeze: Freeze {
            layers: vec![],
            bias_only: true,
        },
        ..TrainConfig::default()
    })
    .fit(&mut net, &train, None, &mut NoProgress)
    .unwrap();
    for i in [0, 2] {
        let (Layer::Dense(a), Layer::Dense(b)) = (&net.layers[i], &base.layers[i]) else {
            panic!()
        };
        assert_eq!(a.weight, b.weight);
        assert_ne!(a.bias, b.bias);
    }
    // a frozen batch norm keeps its parameters and running statistics; a
    // trained one updates both
    let bn_net = randomised(vec![8], vec![dense(8, 6), bn(6), dense(6, 4)], 3);
    for frozen in [true, false] {
        let mut net = bn_net.clone();
        Trainer::new(TrainConfig {
            epochs: 1,
            freeze: Freeze {
                layers: if frozen { vec![1] } else { vec![] },
                bias_only: false,
            },
            ..TrainConfig::default()
        })
        .fit(&mut net, &train, None, &mut NoProgress)
        .unwrap();
        assert_eq!(net.layers[1] == bn_net.layers[1], frozen);
        assert_ne!(net.layers[0], bn_net.layers[0]);
    }
    // everything frozen: an error
    let err = Trainer::new(TrainConfig {
        freeze: Freeze::before(3),
        ..TrainConfig::default()
    })
    .fit(&mut net, &train, None, &mut NoProgress);
    assert!(err.is_err());
}

#[test]
fn early_stopping_plateau_target_and_restore() {
    let (train, val) = blobs();
    // target reached: stops early
    let mut net = mlp();
    let h = Trainer::new(TrainConfig {
        epochs: 50,
        lr: 1e-2,
        target_metric: Some(0.9),
        ..TrainConfig::default()
    })
    .fit(&mut net, &train, Some(&val), &mut NoProgress)
    .unwrap();
    assert_eq!(h.stop, Stop::TargetReached);
    assert!(h.epochs.len() < 50);
    assert!(h.best().unwrap().validation.unwrap().metric >= 0.9);
    // a diverging run: no improvement after the first epoch; the LR is
    // halved every 2 epochs, early stopping after 5, best weights restored
    let mut net = mlp();
    let mut trainer = Trainer::new(TrainConfig {
        epochs: 50,
        lr: 1e4,
        optimizer: Optimizer::Sgd { momentum: 0.9 },
        early_stopping: Some(5),
        plateau: Some(Plateau {
            factor: 0.5,
            patience: 2,
            min_lr: 0.0,
        }),
        validation_fraction: 0.2,
        ..TrainConfig::default()
    });
    let h = trainer
        .fit(&mut net, &train, None, &mut NoProgress)
        .unwrap();
    assert_eq!(h.stop, Stop::EarlyStopping);
    let best = h.best_epoch.unwrap();
    assert_eq!(h.epochs.len(), best + 6);
    let lrs: Vec<f32> = h.epochs.iter().map(|e| e.lr).collect();
    assert_eq!(lrs[best + 3], 5e3, "{lrs:?}");
    assert_eq!(lrs[best + 5], 2.5e3, "{lrs:?}");
    // restored weights give the best epoch's validation metric
    let (_, v) = train.split(0.2, 0).unwrap();
    let e = evaluate(&net, &v).unwrap();
    assert_eq!(e.metric, h.best().unwrap().validation.unwrap().metric);
}

#[test]
fn distillation_and_autoencoder_training() {
    let (train, val) = blobs();
    let mut teacher = mlp();
    Trainer::new(TrainConfig {
        epochs: 5,
        lr: 1e-2,
        ..TrainConfig::default()
    })
    .fit(&mut teacher, &train, None, &mut NoProgress)
    .unwrap();
    let mut student = crate::model::zoo::mlp(&[8, 6, 4], Activation::Square, 5).unwrap();
    Trainer::new(TrainConfig {
        epochs: 5,
        lr: 1e-2,
        distillation: Some(Distillation {
            teacher,
            temperature: 2.0,
            alpha: 0.5,
        }),
        ..TrainConfig::default()
    })
    .fit(&mut student, &train, None, &mut NoProgress)
    .unwrap();
    assert!(accuracy(&student, &val).unwrap() > 0.85);
    // autoencoder on blobs: MSE goes down
    let ae_data = train.to_autoencoder();
    let mut ae = crate::model::zoo::autoencoder(8, &[4], Activation::Tanh, 1).unwrap();
    let before = evaluate(&ae, &ae_data).unwrap();
    assert_eq!(before.kind, Metric::Mse);
    Trainer::new(TrainConfig {
        epochs: 10,
        lr: 1e-2,
        ..TrainConfig::default()
    })
    .fit(&mut ae, &ae_data, None, &mut NoProgress)
    .unwrap();
    let after = evaluate(&ae, &ae_data).unwrap();
    assert!(after.metric < 0.5 * before.metric, "{before:?} {after:?}");
}

#[test]
fn wrong_data_is_an_error() {
    let (train, _) = blobs();
    let mut net = crate::model::zoo::mlp(&[7, 4], Activation::Relu, 1).unwrap();
    let mut t = Trainer::new(TrainConfig::default());
    assert!(t.fit(&mut net, &train, None, &mut NoProgress).is_err());
    let mut net = crate::model::zoo::mlp(&[8, 3], Activation::Relu, 1).unwrap();
    assert!(t.fit(&mut net, &train, None, &mut NoProgress).is_err());
    let mut net = mlp();
    let mut t = Trainer::new(TrainConfig {
        loss: Some(Loss::Mse),
        ..TrainConfig::default()
    });
    assert!(t.step(&mut net, &train).is_err());
}

#[test]
fn augment_shifts_images_with_zero_fill() {
    // One 2-channel 4x4 sample with a single lit pixel per channel.
    let mut x = vec![0.0f32; 32];
    x[5] = 1.0; // channel 0, (1, 1)
    x[16 + 10] = 2.0; // channel 1, (2, 2)
    let orig = x.clone();
    let a = Augment::shifts(1);
    let mut seen = std::collections::HashSet::new();
    for seed in 0..40 {
        let mut y = orig.clone();
        a.apply(&mut y, &[1, 2, 4, 4], &mut ChaCha8Rng::seed_from_u64(seed))
            .unwrap();
        // Both channels move by the same offset, within one pixel.
        let p0 = y[..16].iter().position(|v| *v == 1.0).unwrap();
        let p1 = y[16..].iter().position(|v| *v == 2.0).unwrap();
        let (dy, dx) = (p0 as isize / 4 - 1, p0 as isize % 4 - 1);
        assert!(dy.abs() <= 1 && dx.abs() <= 1);
        assert_eq!(p1 as isize, (2 + dy) * 4 + 2 + dx);
        assert_eq!(y.iter().filter(|v| **v != 0.0).count(), 2);
        seen.insert((dy, dx));
        // Seeded: the same seed gives the same shift.
        let mut z = orig.clone();
        a.apply(&mut z, &[1, 2, 4, 4], &mut ChaCha8Rng::seed_from_u64(seed))
            .unwrap();
        assert_eq!(y, z);
    }
    assert!(seen.len() > 4, "{seen:?}");
    // A pixel shifted out of the image is gone (zero fill).
    let mut edge = vec![0.0f32; 4];
    edge[0] = 1.0;
    let mut any_lost = false;
    for seed in 0..20 {
        let mut y = edge.clone();
        Augment::shifts(1)
            .apply(&mut y, &[1, 1, 2, 2], &mut ChaCha8Rng::seed_from_u64(seed))
            .unwrap();
        any_lost |= y.iter().all(|v| *v == 0.0);
    }
    assert!(any_lost);
    // Shift 0 is the identity; flat inputs are refused.
    let mut y = orig.clone();
    Augment::shifts(0)
        .apply(&mut y, &[1, 2, 4, 4], &mut ChaCha8Rng::seed_from_u64(1))
        .unwrap();
    assert_eq!(y, orig);
    assert!(
        a.apply(&mut y, &[2, 16], &mut ChaCha8Rng::seed_from_u64(1))
            .is_err()
    );
}

#[test]
fn augmented_training_is_deterministic_and_refuses_flat_inputs() {
    let data = crate::data::Dataset::digits_8x8();
    let idx: Vec<usize> = (0..200).collect();
    let data = data.subset(&idx).unwrap();
    let mut net0 = Network::new(
        vec![1, 8, 8],
        vec![
            conv(2, 1, 3, 1, 0),
            Layer::Activation(Activation::Square),
            Layer::Flatten,
            dense(72, 10),
        ],
    )
    .unwrap();
    net0.init_assign(2);
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 32,
        lr: 1e-2,
        seed: 5,
        augment: Some(Augment::shifts(1)),
        ..TrainConfig::default()
    };
    let run = |cfg: &TrainConfig| {
        let mut n = net0.clone();
        Trainer::new(cfg.clone())
            .fit(&mut n, &data, None, &mut NoProgress)
            .unwrap();
        n
    };
    let (a, b) = (run(&cfg), run(&cfg));
    assert_eq!(a, b);
    let plain = run(&TrainConfig {
        augment: None,
        ..cfg.clone()
    });
    assert_ne!(a, plain);
    // The single-step path augments too (and stays seeded).
    let mut s1 = net0.clone();
    let mut s2 = net0.clone();
    Trainer::new(cfg.clone()).step(&mut s1, &data).unwrap();
    Trainer::new(cfg.clone()).step(&mut s2, &data).unwrap();
    assert_eq!(s1, s2);
    let flat = data.clone().flatten();
    let mut mlp = crate::model::zoo::mlp(&[64, 10], Activation::Relu, 1).unwrap();
    assert!(
        Trainer::new(cfg)
            .fit(&mut mlp, &flat, None, &mut NoProgress)
            .is_err()
    );
}

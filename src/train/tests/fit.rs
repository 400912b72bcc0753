//! The trainer's behaviour: learning and determinism, masks, freezing,
//! early stopping, distillation, augmentation and refused data.

use super::*;

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

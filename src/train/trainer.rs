//! The [`Trainer`]: optimiser state, masks, learning rate and random
//! stream kept between calls; [`Trainer::fit`] runs epochs with early
//! stopping, plateau reduction and best-weight restore.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::backprop::{param_lens, params_mut};
use super::evaluate::{EVAL_CHUNK, check_data, default_loss, evaluate};
use super::loss::Loss;
use super::masks::{Masks, zero_masked};
use super::pass::{Objective, run_pass};
use super::{
    EpochStats, Evaluation, History, Metric, Monitor, NoProgress, Optimizer, Progress, Stop,
    TrainConfig,
};
use crate::data::{Dataset, Targets, gather};
use crate::error::{Error, Result};
use crate::model::{Layer, Network, Tensor};

/// Optimiser state of one parameter (first and second moments).
#[derive(Debug, Clone, Default)]
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
}

/// Trains networks; keeps the optimiser state, learning rate, masks and
/// random stream between calls.
#[derive(Debug, Clone)]
pub struct Trainer {
    config: TrainConfig,
    masks: Masks,
    lr: f32,
    state: Vec<Vec<Moments>>,
    adam_t: i32,
    steps: u64,
    rng: ChaCha8Rng,
}

impl Trainer {
    /// A trainer for `config` (no masks).
    pub fn new(config: TrainConfig) -> Trainer {
        Trainer {
            lr: config.lr,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            masks: Masks::new(),
            state: Vec::new(),
            adam_t: 0,
            steps: 0,
        }
    }

    /// Sets the weight masks (builder style).
    pub fn with_masks(mut self, masks: Masks) -> Trainer {
        self.masks = masks;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The configuration, mutable (e.g. to freeze other layers for the next
    /// `fit`).
    pub fn config_mut(&mut self) -> &mut TrainConfig {
        &mut self.config
    }

    /// The current masks.
    pub fn masks(&self) -> &Masks {
        &self.masks
    }

    /// Replaces the masks; they are applied to the weights at the next step.
    pub fn set_masks(&mut self, masks: Masks) {
        self.masks = masks;
    }

    /// The current learning rate.
    pub fn lr(&self) -> f32 {
        self.lr
    }

    /// Sets the learning rate.
    pub fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    /// Forgets the optimiser's moments (e.g. after changing the network's
    /// shape); they are also reset automatically when shapes change.
    pub fn reset_optimizer(&mut self) {
        self.state.clear();
        self.adam_t = 0;
    }

    /// Optimiser steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    fn loss_for(&self, data: &Dataset) -> Loss {
        self.config
            .loss
            .unwrap_or_else(|| default_loss(data.targets()))
    }

    /// `trainable[i][j]` and `frozen[i]` from the configuration.
    fn trainable(&self, net: &Network) -> Result<(Vec<Vec<bool>>, Vec<bool>)> {
        let layers = net.layers.len();
        if let Some(&bad) = self.config.freeze.layers.iter().find(|&&i| i >= layers) {
            return Err(Error::IndexOutOfRange {
                what: "frozen layer",
                index: bad,
                len: layers,
            });
        }
        let frozen: Vec<bool> = (0..layers)
            .map(|i| self.config.freeze.layers.contains(&i))
            .collect();
        let trainable: Vec<Vec<bool>> = net
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let count = param_lens(l).len();
                (0..count)
                    .map(|j| {
                        !frozen[i]
                            && (!self.config.freeze.bias_only
                                || (j == 1
                                    && matches!(
                                        l,
                                        Layer::Dense(_) | Layer::Conv2d(_) | Layer::BatchNorm(_)
                                    )))
                    })
                    .collect()
            })
            .collect();
        if !trainable.iter().flatten().any(|t| *t) {
            return Err(Error::EmptyInput {
                what: "trainable parameters",
            });
        }
        Ok((trainable, frozen))
    }

    /// One optimiser step on `batch` (shuffle and batch yourself, or use
    /// [`Trainer::fit`]). Returns the batch loss.
    pub fn step(&mut self, net: &mut Network, batch: &Dataset) -> Result<f32> {
        let loss = self.loss_for(batch);
        let k = check_data(net, batch, loss)?;
        net.check_budget(batch.len(), true, &self.config.budget)?;
        let shapes = net.shapes()?;
        let (trainable, frozen) = self.trainable(net)?;
        self.masks.apply_assign(net)?;
        let mut x = batch.inputs().clone();
        if let Some(a) = self.config.augment {
            a.apply(x.data_mut(), batch.inputs().shape(), &mut self.rng)?;
        }
        let teacher = match &self.config.distillation {
            Some(d) => Some(d.teacher.forward(&x)?),
            None => None,
        };
        let loss = self.step_inner(
            net,
            &shapes,
            x.data(),
            batch.targets(),
            k,
            teacher.as_ref().map(Tensor::data),
            &trainable,
            &frozen,
            &mut NoProgress,
        );
        Ok(loss)
    }

    #[expect(clippy::too_many_arguments, reason = "internal entry point")]
    fn step_inner(
        &mut self,
        net: &mut Network,
        shapes: &[Vec<usize>],
        x: &[f32],
        targets: &Targets,
        k: usize,
        teacher: Option<&[f32]>,
        trainable: &[Vec<bool>],
        frozen: &[bool],
        progress: &mut dyn Progress,
    ) -> f32 {
        let n = match targets {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Values(t) => t.shape().first().copied().unwrap_or(0),
        };
        let obj = match (targets, teacher, &self.config.distillation) {
            (Targets::Classes { labels, .. }, Some(t), Some(d)) => Objective::Distill {
                labels,
                k,
                teacher: t,
                temperature: d.temperature,
                alpha: d.alpha,
            },
            (Targets::Classes { labels, .. }, _, _) => Objective::Ce { labels, k },
            (Targets::Values(t), _, _) => Objective::Mse { target: t.data() },
        };
        let pass = run_pass(
            net,
            shapes,
            n,
            x,
            &obj,
            trainable,
            frozen,
            false,
            &mut self.rng,
        );
        self.update(net, pass.grads, trainable);
        for (layer, stats) in net.layers.iter_mut().zip(pass.bn_stats) {
            if let (Layer::BatchNorm(b), Some(s)) = (layer, stats) {
                let m = b.momentum;
                for c in 0..b.mean.len() {
                    b.mean[c] = (1.0 - m) * b.mean[c] + m * s.mean[c];
                    b.var[c] = (1.0 - m) * b.var[c] + m * s.var_unbiased[c];
                }
            }
        }
        self.steps += 1;
        progress.on_step(self.steps, net, &mut self.masks);
        // The callback may have changed the masks; a mask that no longer
        // fits is dropped rather than aborting training mid-way.
        if self.masks.apply_assign(net).is_err() {
            self.masks = Masks::new();
        }
        pass.loss
    }

    /// Applies the optimiser to the trainable parameters, keeping masked
    /// weights (and their moments) at exactly zero.
    fn update(
        &mut self,
        net: &mut Network,
        mut grads: Vec<Vec<Vec<f32>>>,
        trainable: &[Vec<bool>],
    ) {
        let fits = self.state.len() == net.layers.len()
            && self
                .state
                .iter()
                .zip(&net.layers)
                .all(|(s, l)| s.len() == param_lens(l).len());
        if !fits {
            self.state = net
                .layers
                .iter()
                .map(|l| vec![Moments::default(); param_lens(l).len()])
                .collect();
            self.adam_t = 0;
        }
        self.adam_t = self.adam_t.saturating_add(1);
        let lr = self.lr;
        let wd = self.config.weight_decay;
        let opt = self.config.optimizer;
        let t = self.adam_t;
        for (i, layer) in net.layers.iter_mut().enumerate() {
            let has_weight = matches!(layer, Layer::Dense(_) | Layer::Conv2d(_));
            let mask = self.masks.get(i);
            for (j, p) in params_mut(layer).into_iter().enumerate() {
                if !trainable[i][j] {
                    continue;
                }
                let g = &mut grads[i][j];
                let mom = &mut self.state[i][j];
                let masked = if has_weight && j == 0 { mask } else { None };
                if let Some(m) = masked {
                    zero_masked(g, m);
                }
                if wd > 0.0 && has_weight && j == 0 {
                    g.iter_mut().zip(p.iter()).for_each(|(g, w)| *g += wd * w);
                }
                if mom.m.len() != p.len() {
                    mom.m = vec![0.0; p.len()];
                    mom.v = vec![0.0; p.len()];
                }
                match opt {
                    Optimizer::Sgd { momentum } => {
                        for ((w, g), v) in p.iter_mut().zip(g.iter()).zip(&mut mom.m) {
                            *v = momentum * *v + *g;
                            *w -= lr * *v;
                        }
                    }
                    Optimizer::Adam { beta1, beta2, eps } => {
                        let c1 = 1.0 - beta1.powi(t);
                        let c2 = 1.0 - beta2.powi(t);
                        let step = lr * c2.sqrt() / c1;
                        for (((w, g), m), v) in
                            p.iter_mut().zip(g.iter()).zip(&mut mom.m).zip(&mut mom.v)
                        {
                            *m = beta1 * *m + (1.0 - beta1) * *g;
                            *v = beta2 * *v + (1.0 - beta2) * *g * *g;
                            *w -= step * *m / (v.sqrt() + eps * c2.sqrt());
                        }
                    }
                }
                if let Some(m) = masked {
                    zero_masked(p, m);
                    zero_masked(&mut mom.m, m);
                    zero_masked(&mut mom.v, m);
                }
            }
        }
    }

    /// Trains `net` on `train` for up to `config.epochs` epochs, validating
    /// on `validation` (or on a seeded `validation_fraction` hold-out of
    /// `train` when `None`), with early stopping, plateau LR reduction,
    /// stop-at-target and best-weight restore as configured.
    ///
    /// The monitored quantity is the validation metric (ties broken by the
    /// validation loss) or the validation loss ([`Monitor`]), or the
    /// training loss without a validation set.
    pub fn fit(
        &mut self,
        net: &mut Network,
        train: &Dataset,
        validation: Option<&Dataset>,
        progress: &mut dyn Progress,
    ) -> Result<History> {
        let held_out;
        let (train, validation) = match validation {
            Some(v) => (train, Some(v)),
            None if self.config.validation_fraction > 0.0 => {
                held_out = train.split(self.config.validation_fraction, self.config.seed)?;
                (&held_out.0, Some(&held_out.1))
            }
            None => (train, None),
        };
        let setup = self.prepare(net, train, validation)?;
        let mut best = Best::new(
            Metric::for_targets(train.targets()),
            self.config.monitor,
            self.config.restore_best,
        );
        let mut history = History {
            epochs: Vec::new(),
            best_epoch: None,
            stop: Stop::Epochs,
        };
        let mut idx: Vec<usize> = (0..train.len()).collect();
        for epoch in 0..self.config.epochs {
            let lr_used = self.lr;
            let train_loss = self.train_epoch(net, train, &setup, &mut idx, progress)?;
            let val = match validation {
                Some(v) => Some(evaluate(net, v)?),
                None => None,
            };
            let improved = best.observe(net, val, train_loss);
            if improved {
                history.best_epoch = Some(epoch);
            }
            let stats = EpochStats {
                epoch,
                train_loss,
                validation: val,
                lr: lr_used,
                improved,
            };
            history.epochs.push(stats);
            progress.on_epoch(&stats);
            if let Some(stop) = self.stop_or_reduce_lr(&mut best, val) {
                history.stop = stop;
                break;
            }
        }
        if let Some(b) = best.net {
            *net = b;
        }
        Ok(history)
    }

    /// Checks the data, budget and teacher against `net`, applies the masks
    /// and precomputes what every epoch needs.
    fn prepare(
        &mut self,
        net: &mut Network,
        train: &Dataset,
        validation: Option<&Dataset>,
    ) -> Result<FitSetup> {
        let loss = self.loss_for(train);
        let classes = check_data(net, train, loss)?;
        if let Some(v) = validation {
            check_data(net, v, loss)?;
        }
        if train.is_empty() || self.config.batch_size == 0 {
            return Err(Error::EmptyInput {
                what: "training samples or batch size",
            });
        }
        net.check_budget(
            self.config.batch_size.min(train.len()),
            true,
            &self.config.budget,
        )?;
        if let Some(d) = &self.config.distillation
            && (d.teacher.input_shape != net.input_shape
                || d.teacher.output_shape()? != net.output_shape()?)
        {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: net.output_shape()?,
                found: d.teacher.output_shape()?,
            });
        }
        let shapes = net.shapes()?;
        let (trainable, frozen) = self.trainable(net)?;
        self.masks.apply_assign(net)?;
        let teacher_all = match &self.config.distillation {
            Some(d) if self.config.augment.is_none() => Some(teacher_logits(&d.teacher, train)?),
            _ => None,
        };
        Ok(FitSetup {
            classes,
            shapes,
            trainable,
            frozen,
            teacher_all,
        })
    }

    /// One pass over `train` in a fresh shuffled order; returns the mean
    /// training loss.
    fn train_epoch(
        &mut self,
        net: &mut Network,
        train: &Dataset,
        setup: &FitSetup,
        idx: &mut [usize],
        progress: &mut dyn Progress,
    ) -> Result<f32> {
        idx.shuffle(&mut self.rng);
        let bs = self.config.batch_size;
        let batches = train.len().div_ceil(bs);
        let mut total = 0.0f64;
        for (b, chunk) in idx.chunks(bs).enumerate() {
            let mut x = gather(train.inputs(), chunk);
            if let Some(a) = self.config.augment {
                let shape = x.shape().to_vec();
                a.apply(x.data_mut(), &shape, &mut self.rng)?;
            }
            let targets = batch_targets(train.targets(), chunk);
            // The teacher sees the same (augmented) batch as the student.
            let tl = match (&self.config.distillation, self.config.augment) {
                (Some(d), Some(_)) => Some(d.teacher.forward(&x)?),
                _ => setup.teacher_all.as_ref().map(|t| gather(t, chunk)),
            };
            let l = self.step_inner(
                net,
                &setup.shapes,
                x.data(),
                &targets,
                setup.classes,
                tl.as_ref().map(Tensor::data),
                &setup.trainable,
                &setup.frozen,
                progress,
            );
            total += f64::from(l) * chunk.len() as f64;
            progress.on_batch(b + 1, batches);
        }
        Ok((total / train.len() as f64) as f32)
    }

    /// After an epoch: why to stop (target reached, early stopping), if at
    /// all; otherwise reduces the learning rate on a plateau.
    fn stop_or_reduce_lr(&mut self, best: &mut Best, val: Option<Evaluation>) -> Option<Stop> {
        if let (Some(t), Some(e)) = (self.config.target_metric, val)
            && best.metric.reaches(e.metric, t)
        {
            return Some(Stop::TargetReached);
        }
        if let Some(p) = self.config.early_stopping
            && best.since_best >= p.max(1)
        {
            return Some(Stop::EarlyStopping);
        }
        if let Some(p) = self.config.plateau
            && best.since_lr >= p.patience.max(1)
        {
            self.lr = (self.lr * p.factor).max(p.min_lr);
            best.since_lr = 0;
        }
        None
    }
}

/// What every epoch of one [`Trainer::fit`] call needs.
struct FitSetup {
    /// The objective's class count (0 for values).
    classes: usize,
    /// Activation shapes per layer.
    shapes: Vec<Vec<usize>>,
    /// Per layer and parameter: whether it trains.
    trainable: Vec<Vec<bool>>,
    /// Per layer: whether it is frozen.
    frozen: Vec<bool>,
    /// The teacher's outputs on the whole set (distillation without
    /// augmentation).
    teacher_all: Option<Tensor>,
}

/// The best epoch so far and the epochs since it (early stopping, plateau).
struct Best {
    metric: Metric,
    monitor: Monitor,
    restore: bool,
    /// (metric, loss) of the best epoch; metric is NaN without validation.
    value: Option<(f32, f32)>,
    net: Option<Network>,
    since_best: usize,
    since_lr: usize,
}

impl Best {
    fn new(metric: Metric, monitor: Monitor, restore: bool) -> Best {
        Best {
            metric,
            monitor,
            restore,
            value: None,
            net: None,
            since_best: 0,
            since_lr: 0,
        }
    }

    /// Records an epoch's result; returns whether it improved on the best.
    fn observe(&mut self, net: &Network, val: Option<Evaluation>, train_loss: f32) -> bool {
        let current = match val {
            Some(e) => (e.metric, e.loss),
            None => (f32::NAN, train_loss),
        };
        let improved = match self.value {
            None => current.0.is_finite() || current.1.is_finite(),
            Some(b) => {
                if val.is_some() && self.monitor == Monitor::Metric {
                    self.metric.better(current.0, b.0) || (current.0 == b.0 && current.1 < b.1)
                } else {
                    current.1 < b.1
                }
            }
        };
        if improved {
            self.value = Some(current);
            self.since_best = 0;
            self.since_lr = 0;
            if self.restore {
                self.net = Some(net.clone());
            }
        } else {
            self.since_best += 1;
            self.since_lr += 1;
        }
        improved
    }
}

/// The targets of the samples `chunk` of `all`.
fn batch_targets(all: &Targets, chunk: &[usize]) -> Targets {
    match all {
        Targets::Classes { labels, classes } => Targets::Classes {
            labels: chunk.iter().map(|&i| labels[i]).collect(),
            classes: *classes,
        },
        Targets::Values(t) => Targets::Values(gather(t, chunk)),
    }
}

/// The teacher's outputs on every sample of `data`, `[N, K]`.
fn teacher_logits(teacher: &Network, data: &Dataset) -> Result<Tensor> {
    let mut out = Vec::new();
    let mut shape = Vec::new();
    for b in data.batches(EVAL_CHUNK) {
        let y = teacher.forward(b.inputs())?;
        shape = y.shape().to_vec();
        out.extend_from_slice(y.data());
    }
    if let Some(first) = shape.first_mut() {
        *first = data.len();
    }
    Tensor::new(shape, out)
}

//! The training engine: forward and backward passes for every layer of the
//! [`Network`] IR (checked against finite differences), softmax
//! cross-entropy, MSE and distillation losses, SGD with momentum and Adam,
//! weight [`Masks`] that pin pruned weights to exactly `0.0`, freezing of
//! layers (or training biases only), early stopping with best-weight
//! restore, reduce-LR-on-plateau, stop-at-target, seeded random shifts of
//! image batches ([`Augment`]), a seeded train/validation split and a
//! [`Progress`] callback.
//!
//! A [`Trainer`] is built from a [`TrainConfig`] and can be called again
//! and again on the same (or a modified) network: the HE-friendly transform
//! and the pruning schedules fine-tune through it.
//!
//! Training is deterministic for a given seed: each batch runs on one
//! thread (im2col + `matrixmultiply` sgemm), reductions have a fixed order;
//! only the evaluation forward passes use rayon, per sample. Design notes
//! and measurements: `docs/training.md`.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::budget::Budget;
use crate::data::{Dataset, Targets, gather};
use crate::error::{Error, Result};
use crate::model::{Layer, Network, Tensor};

mod backprop;
mod loss;
mod masks;

pub use backprop::Gradients;
use backprop::{BnStats, Cache, LayerMode, forward_train, layer_backward, param_lens, params_mut};
pub use loss::Loss;
pub use masks::Masks;
use masks::zero_masked;

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Stochastic gradient descent with (heavy-ball) momentum.
    Sgd {
        /// Momentum (0 for plain SGD).
        momentum: f32,
    },
    /// Adam (Kingma & Ba).
    Adam {
        /// Decay of the first moment.
        beta1: f32,
        /// Decay of the second moment.
        beta2: f32,
        /// Added to the root of the second moment.
        eps: f32,
    },
}

impl Optimizer {
    /// Adam with the usual defaults (0.9, 0.999, 1e-8).
    pub fn adam() -> Optimizer {
        Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Knowledge distillation from a teacher network (classification only):
/// loss = `alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) +
/// (1 - alpha) * cross-entropy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Distillation {
    /// The teacher (e.g. the original network before the transform).
    pub teacher: Network,
    /// Softmax temperature `T`.
    pub temperature: f32,
    /// Weight of the distillation term, in `[0, 1]`.
    pub alpha: f32,
}

/// Reduce the learning rate when the monitored quantity stops improving.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plateau {
    /// Multiply the learning rate by this factor (e.g. 0.5).
    pub factor: f32,
    /// Epochs without improvement before reducing.
    pub patience: usize,
    /// Lower bound for the learning rate.
    pub min_lr: f32,
}

/// Data augmentation of image batches while training: every sample of a
/// `[N, C, H, W]` batch is translated by a random whole-pixel offset (zero
/// fill), drawn from the trainer's seeded stream, so training stays
/// deterministic per seed. Evaluation never augments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    /// Largest shift in pixels along each axis: offsets are uniform in
    /// `[-max_shift, max_shift]` per axis.
    pub max_shift: usize,
}

impl Augment {
    /// Random shifts of at most `max_shift` pixels.
    pub fn shifts(max_shift: usize) -> Augment {
        Augment { max_shift }
    }

    /// Shifts every sample of `x` (a `[N, C, H, W]` batch, row-major) by an
    /// offset drawn from `rng`; the channels of one sample move together.
    /// Inputs that are not images are refused.
    pub fn apply(&self, x: &mut [f32], shape: &[usize], rng: &mut impl rand::Rng) -> Result<()> {
        let &[n, c, h, w] = shape else {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: vec![0, 0, 0, 0],
                found: shape.to_vec(),
            });
        };
        if x.len() != n * c * h * w {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: shape.to_vec(),
                found: vec![x.len()],
            });
        }
        if self.max_shift == 0 {
            return Ok(());
        }
        let s = self.max_shift.min(i32::MAX as usize) as i32;
        let (hi, wi) = (h as isize, w as isize);
        let mut plane = vec![0.0f32; h * w];
        for sample in x.chunks_mut((c * h * w).max(1)) {
            let dy = rng.random_range(-s..=s) as isize;
            let dx = rng.random_range(-s..=s) as isize;
            if dy == 0 && dx == 0 {
                continue;
            }
            for ch in sample.chunks_mut((h * w).max(1)) {
                plane.copy_from_slice(ch);
                for i in 0..hi {
                    let si = i - dy;
                    for j in 0..wi {
                        let sj = j - dx;
                        ch[(i * wi + j) as usize] =
                            if (0..hi).contains(&si) && (0..wi).contains(&sj) {
                                plane[(si * wi + sj) as usize]
                            } else {
                                0.0
                            };
                    }
                }
            }
        }
        Ok(())
    }
}

/// Which parameters train.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Freeze {
    /// Indices of layers whose parameters stay fixed (their batch norms use
    /// running statistics).
    pub layers: Vec<usize>,
    /// Train only biases (dense/conv bias, batch-norm beta) of the
    /// non-frozen layers; MOFHEI retrains biases after culling.
    pub bias_only: bool,
}

impl Freeze {
    /// Freeze layers `0..n` (everything before layer `n`).
    pub fn before(n: usize) -> Freeze {
        Freeze {
            layers: (0..n).collect(),
            bias_only: false,
        }
    }
}

/// The quantity early stopping, plateau reduction and best-weight restore
/// watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Monitor {
    /// The validation metric (accuracy or MSE), ties broken by the
    /// validation loss.
    #[default]
    Metric,
    /// The validation loss (Keras' default `val_loss`).
    Loss,
}

/// Training hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Samples per optimiser step.
    pub batch_size: usize,
    /// Initial learning rate.
    pub lr: f32,
    /// The optimiser.
    pub optimizer: Optimizer,
    /// The loss; `None` picks cross-entropy for class labels, MSE for values.
    pub loss: Option<Loss>,
    /// L2 weight decay added to weight gradients (not biases).
    pub weight_decay: f32,
    /// Seed of shuffling, the validation split and dropout.
    pub seed: u64,
    /// When `fit` gets no validation set: hold out this fraction of the
    /// training set (seeded) for validation; 0 = none.
    pub validation_fraction: f32,
    /// Stop after this many epochs without improvement (patience).
    pub early_stopping: Option<usize>,
    /// Restore the best weights seen (by the monitored quantity) at the end.
    pub restore_best: bool,
    /// What counts as an improvement (with a validation set; without one
    /// the training loss is watched).
    pub monitor: Monitor,
    /// Reduce the learning rate on plateaus.
    pub plateau: Option<Plateau>,
    /// Stop as soon as the validation metric reaches this value (accuracy
    /// >= target, or MSE <= target).
    pub target_metric: Option<f32>,
    /// Knowledge distillation.
    pub distillation: Option<Distillation>,
    /// Frozen layers / biases only.
    pub freeze: Freeze,
    /// Data augmentation of training batches (image inputs only).
    pub augment: Option<Augment>,
    /// Memory limit of a training batch: all activations of a batch of
    /// `batch_size` samples together within
    /// [`Budget::max_tensor_elements`], checked before the first step.
    pub budget: Budget,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            optimizer: Optimizer::adam(),
            loss: None,
            weight_decay: 0.0,
            seed: 0,
            validation_fraction: 0.0,
            early_stopping: None,
            restore_best: true,
            monitor: Monitor::Metric,
            plateau: None,
            target_metric: None,
            distillation: None,
            freeze: Freeze::default(),
            augment: None,
            budget: Budget::default(),
        }
    }
}

/// The quality measure reported per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Fraction of correctly classified samples (higher is better).
    Accuracy,
    /// Mean squared error (lower is better).
    Mse,
}

impl Metric {
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f32, b: f32) -> bool {
        match self {
            Metric::Accuracy => a > b,
            Metric::Mse => a < b,
        }
    }

    /// Whether `value` reaches `target`.
    pub fn reaches(self, value: f32, target: f32) -> bool {
        match self {
            Metric::Accuracy => value >= target,
            Metric::Mse => value <= target,
        }
    }

    /// The metric for a data set's targets.
    pub fn for_targets(t: &Targets) -> Metric {
        match t {
            Targets::Classes { .. } => Metric::Accuracy,
            Targets::Values(_) => Metric::Mse,
        }
    }
}

/// Loss and metric of a network on a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean loss (cross-entropy or MSE).
    pub loss: f32,
    /// The metric's value.
    pub metric: f32,
    /// Which metric.
    pub kind: Metric,
}

/// What happened in one epoch (passed to [`Progress::on_epoch`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// Epoch number, from 0.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f32,
    /// Validation evaluation, if there is a validation set.
    pub validation: Option<Evaluation>,
    /// The learning rate used in this epoch.
    pub lr: f32,
    /// Whether this epoch is the best so far (its weights are kept).
    pub improved: bool,
}

/// Why training ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// All epochs ran.
    Epochs,
    /// Early stopping (no improvement for `patience` epochs).
    EarlyStopping,
    /// The validation metric reached the target.
    TargetReached,
}

/// The record of a [`Trainer::fit`] run.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// One entry per epoch run.
    pub epochs: Vec<EpochStats>,
    /// The epoch whose weights the network holds at the end (when
    /// `restore_best`), i.e. the best one.
    pub best_epoch: Option<usize>,
    /// Why training ended.
    pub stop: Stop,
}

impl History {
    /// The best epoch's statistics.
    pub fn best(&self) -> Option<&EpochStats> {
        self.best_epoch.and_then(|e| self.epochs.get(e))
    }
}

/// Progress callbacks. Every method has an empty default; a closure
/// `FnMut(&EpochStats)` implements the trait (epoch callback only).
pub trait Progress {
    /// After every epoch.
    fn on_epoch(&mut self, _stats: &EpochStats) {}
    /// After every batch: `done` of `total` batches of the epoch.
    fn on_batch(&mut self, _done: usize, _total: usize) {}
    /// After every optimiser step; may change the masks (e.g. a pruning
    /// schedule recomputing them every k steps). The trainer re-applies the
    /// masks to the weights right after.
    fn on_step(&mut self, _step: u64, _net: &Network, _masks: &mut Masks) {}
}

impl<F: FnMut(&EpochStats)> Progress for F {
    fn on_epoch(&mut self, stats: &EpochStats) {
        self(stats)
    }
}

/// A [`Progress`] that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

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

/// What one batch's loss is computed against.
enum Objective<'a> {
    Ce {
        labels: &'a [usize],
        k: usize,
    },
    Mse {
        target: &'a [f32],
    },
    Distill {
        labels: &'a [usize],
        k: usize,
        teacher: &'a [f32],
        temperature: f32,
        alpha: f32,
    },
}

impl Objective<'_> {
    fn eval(&self, out: &[f32]) -> (f32, Vec<f32>) {
        match self {
            Objective::Ce { labels, k } => loss::cross_entropy(out, labels, *k),
            Objective::Mse { target } => loss::mse(out, target),
            Objective::Distill {
                labels,
                k,
                teacher,
                temperature,
                alpha,
            } => loss::distillation(out, teacher, labels, *k, *temperature, *alpha),
        }
    }
}

/// The result of one forward + backward pass.
struct Pass {
    loss: f32,
    grads: Vec<Vec<Vec<f32>>>,
    bn_stats: Vec<Option<BnStats>>,
    dx: Option<Vec<f32>>,
}

/// Forward + backward over one batch. `trainable[i][j]` says whether
/// parameter `j` of layer `i` needs a gradient; backpropagation stops at the
/// lowest layer with a trainable parameter (or goes to the input when
/// `want_input`).
#[expect(clippy::too_many_arguments, reason = "internal entry point")]
fn run_pass(
    net: &Network,
    shapes: &[Vec<usize>],
    n: usize,
    x: &[f32],
    objective: &Objective<'_>,
    trainable: &[Vec<bool>],
    frozen: &[bool],
    want_input: bool,
    rng: &mut ChaCha8Rng,
) -> Pass {
    let layers = net.layers.len();
    let first = if want_input {
        0
    } else {
        trainable
            .iter()
            .position(|t| t.iter().any(|b| *b))
            .unwrap_or(layers)
    };
    let modes: Vec<LayerMode> = (0..layers)
        .map(|i| LayerMode {
            cache: i >= first,
            bn_batch: !frozen[i],
        })
        .collect();
    let (out, caches) = forward_train(net, shapes, n, x, &modes, rng);
    let (loss, mut dy) = objective.eval(&out);
    let mut grads: Vec<Vec<Vec<f32>>> = net
        .layers
        .iter()
        .map(|l| param_lens(l).into_iter().map(|k| vec![0.0; k]).collect())
        .collect();
    let mut dx = None;
    for i in (first..layers).rev() {
        let in_shape = if i == 0 {
            &net.input_shape
        } else {
            &shapes[i - 1]
        };
        let want_params = trainable[i].iter().any(|b| *b);
        let want_dx = i > first || want_input;
        let r = layer_backward(
            &net.layers[i],
            in_shape,
            n,
            dy,
            &caches[i],
            &mut grads[i],
            want_params,
            want_dx,
        );
        match r {
            Some(d) if i > 0 => dy = d,
            Some(d) => {
                dx = Some(d);
                break;
            }
            None => break,
        }
    }
    let bn_stats = caches
        .into_iter()
        .map(|c| match c {
            Cache::BatchNorm { batch_stats, .. } => batch_stats,
            _ => None,
        })
        .collect();
    Pass {
        loss,
        grads,
        bn_stats,
        dx,
    }
}

/// Checks that `data` fits `net` and returns the objective's class count
/// (0 for values).
fn check_data(net: &Network, data: &Dataset, loss: Loss) -> Result<usize> {
    if data.sample_shape() != net.input_shape.as_slice() {
        return Err(Error::ShapeMismatch {
            layer: 0,
            expected: net.input_shape.clone(),
            found: data.sample_shape().to_vec(),
        });
    }
    let out = net.output_shape()?;
    let out_len: usize = out.iter().product();
    match (data.targets(), loss) {
        (Targets::Classes { classes, .. }, Loss::CrossEntropy) => {
            if out_len < *classes {
                return Err(Error::ShapeMismatch {
                    layer: net.layers.len().saturating_sub(1),
                    expected: vec![*classes],
                    found: out,
                });
            }
            Ok(out_len)
        }
        (Targets::Values(t), Loss::Mse) => {
            let per = t.len().checked_div(data.len()).unwrap_or(out_len);
            if per != out_len {
                return Err(Error::ShapeMismatch {
                    layer: net.layers.len().saturating_sub(1),
                    expected: vec![per],
                    found: out,
                });
            }
            Ok(0)
        }
        (Targets::Values(_), Loss::CrossEntropy) => Err(Error::Incompatible {
            what: "cross-entropy loss",
            with: "target values (it needs class labels)",
        }),
        (Targets::Classes { .. }, Loss::Mse) => Err(Error::Incompatible {
            what: "MSE loss",
            with: "class labels (it needs target values)",
        }),
    }
}

fn default_loss(t: &Targets) -> Loss {
    match t {
        Targets::Classes { .. } => Loss::CrossEntropy,
        Targets::Values(_) => Loss::Mse,
    }
}

/// Samples per chunk when evaluating (bounds memory on large sets).
const EVAL_CHUNK: usize = 1024;

/// Loss and metric (accuracy for class labels, MSE for values) of `net` on
/// `data`, in inference mode.
pub fn evaluate(net: &Network, data: &Dataset) -> Result<Evaluation> {
    let loss_kind = default_loss(data.targets());
    let k = check_data(net, data, loss_kind)?;
    let n = data.len();
    let mut loss_sum = 0.0f64;
    let mut metric_sum = 0.0f64;
    let mut s = 0;
    while s < n {
        let e = (s + EVAL_CHUNK).min(n);
        let idx: Vec<usize> = (s..e).collect();
        let batch = data.subset(&idx)?;
        let out = net.forward(batch.inputs())?;
        let m = (e - s) as f64;
        match batch.targets() {
            Targets::Classes { labels, .. } => {
                let (l, _) = loss::cross_entropy(out.data(), labels, k);
                loss_sum += f64::from(l) * m;
                let pred = crate::model::forward::argmax_rows(&out);
                metric_sum += pred.iter().zip(labels).filter(|(p, y)| p == y).count() as f64;
            }
            Targets::Values(t) => {
                let (l, _) = loss::mse(out.data(), t.data());
                loss_sum += f64::from(l) * m;
                metric_sum += f64::from(l) * m;
            }
        }
        s = e;
    }
    let n = n.max(1) as f64;
    Ok(Evaluation {
        loss: (loss_sum / n) as f32,
        metric: (metric_sum / n) as f32,
        kind: Metric::for_targets(data.targets()),
    })
}

/// Classification accuracy of `net` on `data`.
pub fn accuracy(net: &Network, data: &Dataset) -> Result<f32> {
    Ok(evaluate(net, data)?.metric)
}

/// Mean loss and parameter gradients of `net` on one batch, in training
/// mode (batch statistics for batch norm, dropout drawn from `seed`), e.g.
/// for gradient-based pruning scores. The batch's activations must fit
/// the default [`Budget`].
pub fn gradients(
    net: &Network,
    batch: &Dataset,
    loss: Loss,
    seed: u64,
) -> Result<(f32, Gradients)> {
    let (l, g, _) = gradients_with_input(net, batch, loss, seed)?;
    Ok((l, g))
}

/// [`gradients`] plus the gradient with respect to the input batch.
pub(crate) fn gradients_with_input(
    net: &Network,
    batch: &Dataset,
    loss: Loss,
    seed: u64,
) -> Result<(f32, Gradients, Vec<f32>)> {
    let k = check_data(net, batch, loss)?;
    net.check_budget(batch.len(), true, &Budget::default())?;
    let shapes = net.shapes()?;
    let trainable: Vec<Vec<bool>> = net
        .layers
        .iter()
        .map(|l| vec![true; param_lens(l).len()])
        .collect();
    let frozen = vec![false; net.layers.len()];
    let obj = match batch.targets() {
        Targets::Classes { labels, .. } => Objective::Ce { labels, k },
        Targets::Values(t) => Objective::Mse { target: t.data() },
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let p = run_pass(
        net,
        &shapes,
        batch.len(),
        batch.inputs().data(),
        &obj,
        &trainable,
        &frozen,
        true,
        &mut rng,
    );
    Ok((
        p.loss,
        Gradients { layers: p.grads },
        p.dx.unwrap_or_default(),
    ))
}

/// The training-mode loss (what [`gradients`] differentiates), for
/// finite-difference checks.
#[cfg(test)]
pub(crate) fn train_mode_loss(net: &Network, batch: &Dataset, loss: Loss, seed: u64) -> f32 {
    gradients(net, batch, loss, seed)
        .map(|r| r.0)
        .unwrap_or(f32::NAN)
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
        let loss = self.loss_for(train);
        let k = check_data(net, train, loss)?;
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
        let metric_kind = Metric::for_targets(train.targets());
        let bs = self.config.batch_size;
        let batches = train.len().div_ceil(bs);
        let mut history = History {
            epochs: Vec::new(),
            best_epoch: None,
            stop: Stop::Epochs,
        };
        // (metric, loss) of the best epoch; metric is NaN without validation.
        let mut best: Option<(f32, f32)> = None;
        let mut best_net: Option<Network> = None;
        let mut since_best = 0usize;
        let mut since_lr = 0usize;
        let mut idx: Vec<usize> = (0..train.len()).collect();
        for epoch in 0..self.config.epochs {
            idx.shuffle(&mut self.rng);
            let lr_used = self.lr;
            let mut total = 0.0f64;
            for (b, chunk) in idx.chunks(bs).enumerate() {
                let mut x = gather(train.inputs(), chunk);
                if let Some(a) = self.config.augment {
                    let shape = x.shape().to_vec();
                    a.apply(x.data_mut(), &shape, &mut self.rng)?;
                }
                let targets = match train.targets() {
                    Targets::Classes { labels, classes } => Targets::Classes {
                        labels: chunk.iter().map(|&i| labels[i]).collect(),
                        classes: *classes,
                    },
                    Targets::Values(t) => Targets::Values(gather(t, chunk)),
                };
                // The teacher sees the same (augmented) batch as the student.
                let tl = match (&self.config.distillation, self.config.augment) {
                    (Some(d), Some(_)) => Some(d.teacher.forward(&x)?),
                    _ => teacher_all.as_ref().map(|t| gather(t, chunk)),
                };
                let l = self.step_inner(
                    net,
                    &shapes,
                    x.data(),
                    &targets,
                    k,
                    tl.as_ref().map(Tensor::data),
                    &trainable,
                    &frozen,
                    progress,
                );
                total += f64::from(l) * chunk.len() as f64;
                progress.on_batch(b + 1, batches);
            }
            let train_loss = (total / train.len() as f64) as f32;
            let val = match validation {
                Some(v) => Some(evaluate(net, v)?),
                None => None,
            };
            let current = match val {
                Some(e) => (e.metric, e.loss),
                None => (f32::NAN, train_loss),
            };
            let improved = match best {
                None => current.0.is_finite() || current.1.is_finite(),
                Some(b) => {
                    if val.is_some() && self.config.monitor == Monitor::Metric {
                        metric_kind.better(current.0, b.0) || (current.0 == b.0 && current.1 < b.1)
                    } else {
                        current.1 < b.1
                    }
                }
            };
            if improved {
                best = Some(current);
                since_best = 0;
                since_lr = 0;
                history.best_epoch = Some(epoch);
                if self.config.restore_best {
                    best_net = Some(net.clone());
                }
            } else {
                since_best += 1;
                since_lr += 1;
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
            if let (Some(t), Some(e)) = (self.config.target_metric, val)
                && metric_kind.reaches(e.metric, t)
            {
                history.stop = Stop::TargetReached;
                break;
            }
            if let Some(p) = self.config.early_stopping
                && since_best >= p.max(1)
            {
                history.stop = Stop::EarlyStopping;
                break;
            }
            if let Some(p) = self.config.plateau
                && since_lr >= p.patience.max(1)
            {
                self.lr = (self.lr * p.factor).max(p.min_lr);
                since_lr = 0;
            }
        }
        if let Some(b) = best_net {
            *net = b;
        }
        Ok(history)
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

#[cfg(test)]
mod tests;

//! Training hyper-parameters: optimiser, distillation, plateau, freezing,
//! the monitored quantity and [`TrainConfig`].

use super::augment::Augment;
use super::loss::Loss;
use crate::budget::Budget;
use crate::model::Network;

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

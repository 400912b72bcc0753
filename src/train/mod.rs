//! The training engine: forward and backward passes for every layer of the
//! [`Network`](crate::model::Network) IR (checked against finite differences), softmax
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

mod augment;
mod backprop;
mod config;
mod evaluate;
mod history;
mod loss;
mod masks;
mod pass;
mod trainer;

pub use augment::Augment;
pub use backprop::Gradients;
pub use config::{Distillation, Freeze, Monitor, Optimizer, Plateau, TrainConfig};
pub use evaluate::{Evaluation, Metric, accuracy, evaluate};
pub use history::{EpochStats, History, NoProgress, Progress, Stop};
pub use loss::Loss;
pub use masks::Masks;
pub use pass::gradients;
#[cfg(test)]
use pass::gradients_with_input;
pub use trainer::Trainer;

#[cfg(test)]
mod tests;

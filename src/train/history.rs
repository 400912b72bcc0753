//! What a training run reports: per-epoch statistics, why it stopped, and
//! the [`Progress`] callbacks every long-running stage (training, the
//! HE-friendly transform, the pruning schedules) reports through.

use super::evaluate::Evaluation;
use super::masks::Masks;
use crate::model::Network;

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

/// The record of a [`Trainer::fit`](super::Trainer::fit) run.
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

/// Progress callbacks of every long-running stage: training, the
/// HE-friendly transform (which also reports its replacement stages) and
/// the pruning schedules. Every method has an empty default; a closure
/// `FnMut(&EpochStats)` implements the trait (epoch callback only).
pub trait Progress {
    /// A stage of a multi-stage run starts, e.g. a replacement step of
    /// [`crate::transform::make_he_friendly`]: `stage` of `total` (from 1),
    /// working on layer `layer` (`kind` names what is replaced).
    fn on_stage(&mut self, _stage: usize, _total: usize, _layer: usize, _kind: &str) {}
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

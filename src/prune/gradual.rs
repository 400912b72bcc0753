//! Pruning schedules: when masks are recomputed and at what sparsity,
//! with fine-tuning under the masks in between and early stopping.
//!
//! - [`Schedule::OneShot`]: prune to the target once, then fine-tune with the
//!   mask fixed.
//! - [`Schedule::Constant`] (MOFHEI): the target sparsity is constant from the
//!   first step; the mask is recomputed from the current weights every
//!   `every` optimiser steps while training.
//! - [`Schedule::Polynomial`] (gradual pruning, Zhu & Gupta): the sparsity
//!   rises from `initial` to the target as `s_t = s_f + (s_i - s_f) (1 -
//!   t / ramp)^power` over `ramp` steps, the mask recomputed every `every`
//!   steps.
//!
//! Fine-tuning is abstracted by [`FineTune`] (one optimiser step under a
//! mask, and a validation metric), so the schedule does not depend on how
//! training is done; `train::Trainer` implements it through
//! [`TrainerTune`]. Early stopping watches the validation
//! metric once the final target is reached and restores the best weights.

use serde::{Deserialize, Serialize};

use super::blocks::LayerBlocks;
use super::score::{PruneOptions, check_target, select};
use super::selection::keep_all;
use crate::error::{Error, Result};
use crate::model::Network;
use crate::train::Masks;

/// Fine-tuning under masks, as the schedules need it.
pub trait FineTune {
    /// One optimiser step on the next batch; weights not kept by `keep`
    /// must stay exactly 0.0.
    fn step(&mut self, net: &mut Network, keep: &Masks) -> Result<()>;
    /// The validation metric of `net` (higher is better: accuracy, or minus
    /// a loss).
    fn validate(&mut self, net: &Network) -> Result<f64>;
    /// Optimiser steps per epoch (early stopping checks once per epoch).
    fn steps_per_epoch(&self) -> usize;
}

/// When and how far to prune.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// Prune once at the start, then fine-tune.
    OneShot,
    /// MOFHEI: constant target, mask recomputed every `every` steps.
    Constant {
        /// Steps between mask updates (MOFHEI: 5).
        every: usize,
    },
    /// Gradual pruning from `initial` to the target over `ramp` steps.
    Polynomial {
        /// Steps between mask updates.
        every: usize,
        /// Steps over which the sparsity rises.
        ramp: usize,
        /// Sparsity at step 0.
        initial: f64,
        /// Exponent of the ramp (3 in Zhu & Gupta).
        power: f64,
    },
}

impl Schedule {
    /// The sparsity target at step `t` for a final `target`.
    pub fn target_at(&self, t: usize, target: f64) -> f64 {
        match *self {
            Schedule::OneShot | Schedule::Constant { .. } => target,
            Schedule::Polynomial {
                ramp,
                initial,
                power,
                ..
            } => {
                if ramp == 0 || t >= ramp {
                    target
                } else {
                    let frac = 1.0 - t as f64 / ramp as f64;
                    target + (initial - target) * frac.powf(power)
                }
            }
        }
    }

    /// Whether the mask is recomputed at step `t`.
    pub fn updates_at(&self, t: usize) -> bool {
        match *self {
            Schedule::OneShot => t == 0,
            Schedule::Constant { every } | Schedule::Polynomial { every, .. } => {
                t.is_multiple_of(every.max(1))
            }
        }
    }

    /// The first step from which the target is final.
    pub fn settled_at(&self) -> usize {
        match *self {
            Schedule::Polynomial { ramp, .. } => ramp,
            _ => 0,
        }
    }
}

/// A schedule run's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// The schedule.
    pub schedule: Schedule,
    /// Final target sparsity (fraction of the pruned layers' weights).
    pub target: f64,
    /// Maximum epochs of fine-tuning.
    pub epochs: usize,
    /// Early stopping: epochs without improvement (after the target is
    /// reached) before stopping; `None` runs every epoch.
    pub patience: Option<usize>,
}

/// What a schedule run did.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleReport {
    /// Optimiser steps taken.
    pub steps: usize,
    /// Epochs run.
    pub epochs: usize,
    /// Validation metric per epoch.
    pub metrics: Vec<f64>,
    /// Best validation metric at the final target (the weights returned).
    pub best: f64,
    /// The final mask.
    pub keep: Masks,
}

/// Prunes `net` in `blocks` by `opts` following `config`, fine-tuning with
/// `tune` between mask updates; leaves the best weights (at the final
/// target) in `net`.
pub fn run(
    net: &mut Network,
    blocks: &LayerBlocks,
    opts: &PruneOptions,
    config: &ScheduleConfig,
    tune: &mut dyn FineTune,
) -> Result<ScheduleReport> {
    check_target(config.target)?;
    let per_epoch = tune.steps_per_epoch();
    if per_epoch == 0 {
        return Err(Error::InvalidParameter {
            name: "steps per epoch",
            value: 0,
            allowed: "at least 1",
        });
    }
    let mut current = f64::NAN;
    let mut keep = keep_all(net);
    let mut best: Option<(f64, Network, Masks)> = None;
    let mut metrics = Vec::new();
    let mut since_best = 0usize;
    let mut t = 0usize;
    let mut epochs = 0usize;
    for _ in 0..config.epochs {
        for _ in 0..per_epoch {
            if config.schedule.updates_at(t) {
                let s = config.schedule.target_at(t, config.target);
                current = s;
                keep = select(net, blocks, opts, s)?;
                keep.apply_assign(net)?;
            }
            tune.step(net, &keep)?;
            t += 1;
        }
        epochs += 1;
        let m = tune.validate(net)?;
        metrics.push(m);
        if current >= config.target {
            let improved = best.as_ref().is_none_or(|(b, _, _)| m > *b);
            if improved {
                best = Some((m, net.clone(), keep.clone()));
                since_best = 0;
            } else {
                since_best += 1;
            }
            if config.patience.is_some_and(|p| since_best > p) {
                break;
            }
        }
    }
    // Make sure the final mask holds the final target even if the ramp did
    // not finish.
    if best.is_none() {
        keep = select(net, blocks, opts, config.target)?;
        keep.apply_assign(net)?;
        let m = tune.validate(net)?;
        best = Some((m, net.clone(), keep.clone()));
    }
    let (best_metric, best_net, best_keep) = best.ok_or(Error::EmptyInput { what: "epochs" })?;
    *net = best_net;
    Ok(ScheduleReport {
        steps: t,
        epochs,
        metrics,
        best: best_metric,
        keep: best_keep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polynomial_ramp() {
        let s = Schedule::Polynomial {
            every: 5,
            ramp: 100,
            initial: 0.0,
            power: 3.0,
        };
        assert_eq!(s.target_at(0, 0.9), 0.0);
        assert!((s.target_at(50, 0.9) - 0.9 * (1.0 - 0.125)).abs() < 1e-12);
        assert_eq!(s.target_at(100, 0.9), 0.9);
        assert_eq!(s.target_at(1000, 0.9), 0.9);
        let mut last = 0.0;
        for t in 0..120 {
            let v = s.target_at(t, 0.9);
            assert!(v >= last);
            last = v;
        }
        assert!(s.updates_at(10) && !s.updates_at(11));
        assert!(Schedule::OneShot.updates_at(0) && !Schedule::OneShot.updates_at(5));
    }

    /// Wraps the trainer and checks after every step that every weight the
    /// mask drops is exactly 0.0.
    struct Checked<'a>(TrainerTune<'a>, usize);

    impl FineTune for Checked<'_> {
        fn step(&mut self, net: &mut Network, keep: &Masks) -> Result<()> {
            self.0.step(net, keep)?;
            self.1 += 1;
            for (i, l) in net.layers.iter().enumerate() {
                if let (Some(w), Some(m)) = (crate::prune::blocks::matrix(l), keep.get(i)) {
                    for (v, k) in w.iter().zip(m) {
                        assert!(
                            *k || *v == 0.0,
                            "layer {i}: pruned weight {v} at step {}",
                            self.1
                        );
                    }
                }
            }
            Ok(())
        }
        fn validate(&mut self, net: &Network) -> Result<f64> {
            self.0.validate(net)
        }
        fn steps_per_epoch(&self) -> usize {
            self.0.steps_per_epoch()
        }
    }

    #[test]
    fn pruned_weights_stay_exactly_zero_while_fine_tuning() {
        use crate::model::{Activation, zoo};
        use crate::prune::{BlockShape, LayerBlocks, PruneOptions};
        let data = crate::data::Dataset::digits_8x8().flatten();
        let (valid, train) = data.split(0.8, 1).unwrap();
        let mut net = zoo::mlp(&[64, 32, 10], Activation::Relu, 1).unwrap();
        for (shape, schedule) in [
            (BlockShape::Weight, Schedule::Constant { every: 3 }),
            (
                BlockShape::Tile { rows: 4, cols: 8 },
                Schedule::Polynomial {
                    every: 2,
                    ramp: 20,
                    initial: 0.2,
                    power: 3.0,
                },
            ),
            (BlockShape::Column, Schedule::OneShot),
        ] {
            let trainer = crate::train::Trainer::new(crate::train::TrainConfig {
                batch_size: 64,
                lr: 1e-2,
                ..crate::train::TrainConfig::default()
            });
            let mut tune = Checked(TrainerTune::new(trainer, &train, &valid), 0);
            let blocks = LayerBlocks::uniform(&net, shape);
            let cfg = ScheduleConfig {
                schedule,
                target: 0.7,
                epochs: 3,
                patience: Some(1),
            };
            let r = run(&mut net, &blocks, &PruneOptions::default(), &cfg, &mut tune).unwrap();
            assert!(tune.1 >= 6, "{}", tune.1);
            assert!(r.keep.pruned() > 0);
            // The returned (best) weights respect the returned mask.
            for (i, l) in net.layers.iter().enumerate() {
                if let (Some(w), Some(m)) = (crate::prune::blocks::matrix(l), r.keep.get(i)) {
                    assert!(w.iter().zip(m).all(|(v, k)| *k || *v == 0.0));
                }
            }
        }
    }
}

/// [`FineTune`] with the crate's trainer: mini-batches of a training set in
/// a seeded order (reshuffled each epoch), the masks handed to the trainer
/// (which keeps masked-out weights exactly 0.0), and validation by
/// [`crate::train::evaluate`] (accuracy, or minus the MSE).
#[derive(Debug)]
pub struct TrainerTune<'a> {
    /// The trainer (its optimiser state persists across mask updates).
    pub trainer: crate::train::Trainer,
    train: &'a crate::data::Dataset,
    validation: &'a crate::data::Dataset,
    batch_size: usize,
    order: Vec<usize>,
    pos: usize,
    epoch: u64,
}

impl<'a> TrainerTune<'a> {
    /// Fine-tuning on `train` with the trainer's batch size and seed,
    /// validating on `validation`.
    pub fn new(
        trainer: crate::train::Trainer,
        train: &'a crate::data::Dataset,
        validation: &'a crate::data::Dataset,
    ) -> TrainerTune<'a> {
        let batch_size = trainer.config().batch_size.max(1);
        TrainerTune {
            trainer,
            train,
            validation,
            batch_size,
            order: Vec::new(),
            pos: 0,
            epoch: 0,
        }
    }
}

impl FineTune for TrainerTune<'_> {
    fn step(&mut self, net: &mut Network, keep: &Masks) -> Result<()> {
        if self.trainer.masks() != keep {
            self.trainer.set_masks(keep.clone());
        }
        if self.pos >= self.order.len() {
            let seed = self.trainer.config().seed ^ (self.epoch.wrapping_mul(0x9E37_79B9));
            self.order = self.train.permutation(seed);
            self.pos = 0;
            self.epoch += 1;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let batch = self.train.subset(&self.order[self.pos..end])?;
        self.pos = end;
        self.trainer.step(net, &batch)?;
        Ok(())
    }

    fn validate(&mut self, net: &Network) -> Result<f64> {
        let e = crate::train::evaluate(net, self.validation)?;
        Ok(match e.kind {
            crate::train::Metric::Accuracy => f64::from(e.metric),
            crate::train::Metric::Mse => -f64::from(e.metric),
        })
    }

    fn steps_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.batch_size)
    }
}

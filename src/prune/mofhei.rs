//! MOFHEI's pruning recipe: block pruning with a schedule, culling of dead
//! units, bias-only then full retraining, optionally best-of-k over the
//! unit kept in the first pruned layer.

use super::cull::units;
use crate::error::{Error, Result};
use crate::model::Network;

/// Settings of MOFHEI's pipeline: iterative block pruning, culling, bias
/// retraining, fine-tuning.
#[derive(Debug, Clone, PartialEq)]
pub struct MofheiConfig {
    /// Block shape (MOFHEI: [`super::BlockShape::Column`], whole units).
    pub shape: super::BlockShape,
    /// Scoring (MOFHEI: mean |w|, per layer, output exempt).
    pub opts: super::PruneOptions,
    /// The schedule (MOFHEI: constant target, mask every 5 steps); its
    /// target is replaced by each sweep target.
    pub schedule: super::ScheduleConfig,
    /// Trainer settings for pruning and retraining (epochs of each retrain
    /// stage are `retrain_epochs`). Its `distillation` (e.g. with the dense
    /// network as teacher) applies to both; docs/pruning.md has the measured
    /// effect.
    pub train: crate::train::TrainConfig,
    /// Epochs of the bias-only and of the full retraining after culling.
    pub retrain_epochs: usize,
    /// Learning rate of the full retraining as a fraction of `train.lr`
    /// (MOFHEI fine-tunes at a tenth).
    pub retrain_lr_factor: f32,
    /// Best-of-k (beyond MOFHEI): when the target removes units of the
    /// first pruned layer, run the whole pipeline once per candidate, each
    /// time protecting another of the `candidates` highest-scoring units of
    /// that layer (on the dense network) from pruning, and keep the result
    /// with the best validation metric (ties: lower validation loss). 0 or
    /// 1: one plain run. The test set is never looked at.
    pub candidates: usize,
    /// With `candidates`: compare the candidates right after pruning and
    /// fine-tuning (before culling) and cull and retrain only the best one,
    /// instead of retraining every candidate (roughly half the time).
    pub screen_before_retraining: bool,
    /// Budgets in optimiser steps instead of epochs (`None`: the epochs
    /// above as they are). A preset tuned on one data set then transfers
    /// to another of a different size: [`MofheiConfig::for_data`] turns the
    /// steps into epochs of the training set at hand.
    pub steps: Option<StepBudget>,
}

/// Budgets of MOFHEI's pipeline in optimiser steps (batches), so that a
/// preset means the same amount of training on 121 samples as on 60,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepBudget {
    /// Steps of pruning with fine-tuning under the masks (the schedule's
    /// ramp included).
    pub prune: usize,
    /// Steps of each retraining stage after culling (bias-only, then full).
    pub retrain: usize,
    /// Early-stopping patience, in steps.
    pub patience: usize,
}

impl MofheiConfig {
    /// The settings measured on MOFHEI's HE-friendly LeNet on the digits
    /// (32x32, about 1,300 training images, batches of 32; docs/pruning.md):
    /// whole units, mean |w| per layer with the output exempt, a polynomial
    /// ramp to the target over 300 steps with the mask recomputed every 10,
    /// up to 30 epochs of fine-tuning (Adam, lr 3e-3, early stopping 8
    /// epochs after the target is reached), then 20 epochs of bias-only and
    /// of full retraining (plateau halving after 2 epochs, early stopping 8);
    /// every training batch shifted by up to 2 pixels
    /// ([`crate::train::Augment`]); best of 6 runs, one per choice of the
    /// unit kept in the first layer (all 6 conv0 filters of the LeNet), by
    /// validation accuracy. `seed` drives the batch order and the shifts
    /// (the pruning seed). Inputs must be images (`[N, C, H, W]`) for the
    /// shifts; set `train.augment = None` otherwise.
    pub fn digits_lenet(seed: u64) -> MofheiConfig {
        MofheiConfig {
            shape: super::BlockShape::Column,
            opts: super::PruneOptions::default(),
            schedule: super::ScheduleConfig {
                schedule: super::Schedule::Polynomial {
                    every: 10,
                    ramp: 300,
                    initial: 0.0,
                    power: 3.0,
                },
                target: 0.9,
                epochs: 30,
                patience: Some(8),
            },
            train: crate::train::TrainConfig {
                epochs: 12,
                batch_size: 32,
                lr: 3e-3,
                seed,
                early_stopping: Some(8),
                plateau: Some(crate::train::Plateau {
                    factor: 0.5,
                    patience: 2,
                    min_lr: 1e-5,
                }),
                augment: Some(crate::train::Augment::shifts(2)),
                ..crate::train::TrainConfig::default()
            },
            retrain_epochs: 20,
            retrain_lr_factor: 1.0,
            candidates: 6,
            screen_before_retraining: false,
            steps: None,
        }
    }

    /// A preset for convolutional networks on images of any data set size:
    /// the digits recipe ([`MofheiConfig::digits_lenet`]: whole units, the
    /// polynomial ramp over 300 steps, shifts of up to 2 pixels, Adam at
    /// 3e-3, plateau halving) with budgets in optimiser steps: `steps`
    /// steps of pruning and fine-tuning, as many of each retraining stage,
    /// early stopping after a quarter of that without improvement; best of
    /// `candidates` runs (1: one run). docs/pruning.md ("Real MNIST") has
    /// the measured figures.
    pub fn cnn(seed: u64, steps: usize, candidates: usize) -> MofheiConfig {
        MofheiConfig {
            candidates,
            steps: Some(StepBudget {
                prune: steps,
                retrain: steps,
                patience: steps.div_ceil(4),
            }),
            ..MofheiConfig::digits_lenet(seed)
        }
    }

    /// A preset for dense networks on flat (e.g. tabular) inputs: as
    /// [`MofheiConfig::cnn`] without the image shifts and with one run.
    pub fn mlp(seed: u64, steps: usize) -> MofheiConfig {
        let mut cfg = MofheiConfig::cnn(seed, steps, 1);
        cfg.train.augment = None;
        cfg
    }

    /// This configuration with its step budgets ([`MofheiConfig::steps`])
    /// turned into epochs of a training set of `samples` samples (at least
    /// one epoch each); unchanged without step budgets.
    pub fn for_data(&self, samples: usize) -> MofheiConfig {
        let mut cfg = self.clone();
        if let Some(b) = self.steps {
            let per_epoch = samples.div_ceil(self.train.batch_size.max(1)).max(1);
            let epochs = |steps: usize| steps.div_ceil(per_epoch).max(1);
            cfg.schedule.epochs = epochs(b.prune);
            cfg.retrain_epochs = epochs(b.retrain);
            let patience = epochs(b.patience);
            cfg.schedule.patience = Some(patience);
            cfg.train.early_stopping = Some(patience);
            cfg.steps = None;
        }
        cfg
    }
}

/// MOFHEI's pipeline on a trained `net` at `target`: prune with the
/// schedule, cull, retrain the biases, then everything (pruned weights stay
/// zero). Returns the culled network and the culling report.
///
/// With [`MofheiConfig::candidates`] > 1 the pipeline runs once per
/// candidate unit of the first pruned layer and the best by validation
/// metric is returned.
pub fn mofhei_prune(
    net: &Network,
    target: f64,
    cfg: &MofheiConfig,
    train: &crate::data::Dataset,
    validation: &crate::data::Dataset,
) -> Result<(Network, super::CullReport)> {
    let cfg = &cfg.for_data(train.len());
    let candidates = first_layer_candidates(net, target, cfg)?;
    if candidates.is_empty() {
        return mofhei_prune_once(net, target, cfg, &cfg.opts, train, validation);
    }
    // The candidates are independent (each trains its own copy with its own
    // seeded trainer), so they run in parallel; the choice below goes in
    // candidate order, so the result does not depend on the thread count.
    use rayon::prelude::*;
    let runs: Vec<(crate::train::Evaluation, Network, Option<super::CullReport>)> = candidates
        .par_iter()
        .map(|&protect| {
            let opts = super::PruneOptions {
                protect: Some(protect),
                ..cfg.opts
            };
            let pruned = prune_stage(net, target, cfg, &opts, train, validation)?;
            let (n, r) = if cfg.screen_before_retraining {
                (pruned, None)
            } else {
                let (n, r) = retrain_stage(net, &pruned, cfg, train, validation)?;
                (n, Some(r))
            };
            let e = crate::train::evaluate(&n, validation)?;
            Ok((e, n, r))
        })
        .collect::<Result<_>>()?;
    // (validation, network, its report once culled and retrained)
    let mut best: Option<(crate::train::Evaluation, Network, Option<super::CullReport>)> = None;
    for (e, n, r) in runs {
        let better = best.as_ref().is_none_or(|(b, _, _)| {
            e.kind.better(e.metric, b.metric) || (e.metric == b.metric && e.loss < b.loss)
        });
        if better {
            best = Some((e, n, r));
        }
    }
    match best {
        Some((_, n, Some(r))) => Ok((n, r)),
        Some((_, n, None)) => retrain_stage(net, &n, cfg, train, validation),
        None => Err(Error::EmptyInput { what: "candidates" }),
    }
}

/// The protected blocks best-of-k tries: the `cfg.candidates` highest
/// scoring blocks (on `net`) of the first pruned layer, if the target makes
/// that layer lose blocks; empty for a single plain run.
fn first_layer_candidates(
    net: &Network,
    target: f64,
    cfg: &MofheiConfig,
) -> Result<Vec<(usize, usize)>> {
    if cfg.candidates <= 1 {
        return Ok(Vec::new());
    }
    let mut blocks = super::LayerBlocks::uniform(net, cfg.shape);
    let weighted = super::blocks::weighted_layers(net);
    if cfg.opts.exempt_output
        && let Some(&last) = weighted.last()
    {
        blocks.exempt_assign(last);
    }
    let Some((first, grid)) = weighted
        .iter()
        .find_map(|&i| blocks.grid(net, i).map(|g| (i, g)))
    else {
        return Ok(Vec::new());
    };
    let sel = super::select(net, &blocks, &cfg.opts, target)?;
    let kept = nonzero_block_count(sel.get(first), &grid);
    let live = nonzero_block_count(None, &grid);
    if kept >= live {
        return Ok(Vec::new());
    }
    let scores = super::score::block_scores(net, first, &grid, cfg.opts.score);
    let mut order: Vec<usize> = (0..scores.len())
        .filter(|&b| !grid.positions(b).is_empty())
        .collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
    Ok(order
        .into_iter()
        .take(cfg.candidates)
        .map(|b| (first, b))
        .collect())
}

/// Blocks of `grid` with at least one weight kept by `keep` (all non-empty
/// blocks when `keep` is `None`).
fn nonzero_block_count(keep: Option<&[bool]>, grid: &super::BlockGrid) -> usize {
    let inp = grid.inp();
    (0..grid.count())
        .filter(|&b| {
            let pos = grid.positions(b);
            !pos.is_empty()
                && keep.is_none_or(|k| pos.iter().any(|&(r, c)| k.get(r * inp + c) == Some(&true)))
        })
        .count()
}

/// One run of MOFHEI's pipeline with scoring options `opts`.
fn mofhei_prune_once(
    net: &Network,
    target: f64,
    cfg: &MofheiConfig,
    opts: &super::PruneOptions,
    train: &crate::data::Dataset,
    validation: &crate::data::Dataset,
) -> Result<(Network, super::CullReport)> {
    let pruned = prune_stage(net, target, cfg, opts, train, validation)?;
    retrain_stage(net, &pruned, cfg, train, validation)
}

/// Pruning with the schedule (fine-tuning under the masks).
fn prune_stage(
    net: &Network,
    target: f64,
    cfg: &MofheiConfig,
    opts: &super::PruneOptions,
    train: &crate::data::Dataset,
    validation: &crate::data::Dataset,
) -> Result<Network> {
    use crate::train::Trainer;
    let mut pruned = net.clone();
    let blocks = super::LayerBlocks::uniform(&pruned, cfg.shape);
    let mut tune =
        super::gradual::TrainerTune::new(Trainer::new(cfg.train.clone()), train, validation);
    let sched = super::ScheduleConfig {
        target,
        ..cfg.schedule
    };
    super::gradual::run(&mut pruned, &blocks, opts, &sched, &mut tune)?;
    Ok(pruned)
}

/// Culling of `pruned`, then bias-only and full retraining (zeros kept);
/// the report counts parameters against the dense `net`.
fn retrain_stage(
    net: &Network,
    pruned: &Network,
    cfg: &MofheiConfig,
    train: &crate::data::Dataset,
    validation: &crate::data::Dataset,
) -> Result<(Network, super::CullReport)> {
    use crate::train::{Masks, NoProgress, Trainer};
    let (mut culled, mut report) = super::cull(pruned)?;
    report.params_before = net.param_count();
    for bias_only in [true, false] {
        if cfg.retrain_epochs == 0 {
            break;
        }
        let mut tc = cfg.train.clone();
        tc.epochs = cfg.retrain_epochs;
        tc.freeze.bias_only = bias_only;
        if !bias_only {
            tc.lr *= cfg.retrain_lr_factor;
        }
        let mut t = Trainer::new(tc).with_masks(Masks::from_nonzero(&culled));
        t.fit(&mut culled, train, Some(validation), &mut NoProgress)?;
    }
    report.params_after = culled.param_count();
    report.units_after = units(&culled);
    Ok((culled, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Activation;

    #[test]
    fn step_budgets_become_epochs_of_the_data_at_hand() {
        // 3000 steps of batches of 32: 1 epoch of 96,000 samples, 3000 of
        // 32, 24 of 4,000 (125 steps each); patience a quarter (750 steps).
        let cfg = MofheiConfig::cnn(1, 3000, 6);
        for (samples, epochs, patience) in [(96_000, 1, 1), (32, 3000, 750), (4000, 24, 6)] {
            let c = cfg.for_data(samples);
            assert_eq!(c.schedule.epochs, epochs, "{samples}");
            assert_eq!(c.retrain_epochs, epochs, "{samples}");
            assert_eq!(c.schedule.patience, Some(patience), "{samples}");
            assert_eq!(c.train.early_stopping, Some(patience), "{samples}");
            assert_eq!(c.steps, None);
        }
        // Without step budgets nothing changes (the digits preset).
        let digits = MofheiConfig::digits_lenet(1);
        assert_eq!(digits.for_data(10), digits);
        // The MLP preset does not shift (flat inputs).
        assert_eq!(MofheiConfig::mlp(1, 100).train.augment, None);
    }

    #[test]
    fn mofhei_prune_trains_and_validates_autoencoders_by_mse() {
        // Value targets: the trainer minimises MSE and the schedule's
        // validation is minus the MSE (examples/models.rs relies on this).
        let data = crate::data::Dataset::digits_8x8()
            .flatten()
            .to_autoencoder();
        let (train, valid) = data.split(0.2, 1).unwrap();
        let net = crate::model::zoo::autoencoder(64, &[16], Activation::Square, 1).unwrap();
        let mse = |n: &Network| {
            let e = crate::train::evaluate(n, &valid).unwrap();
            assert_eq!(e.kind, crate::train::Metric::Mse);
            e.metric
        };
        let cfg = MofheiConfig {
            shape: crate::prune::BlockShape::Column,
            opts: crate::prune::PruneOptions::default(),
            schedule: crate::prune::ScheduleConfig {
                schedule: crate::prune::Schedule::Polynomial {
                    every: 5,
                    ramp: 60,
                    initial: 0.0,
                    power: 3.0,
                },
                target: 0.9,
                epochs: 4,
                patience: None,
            },
            train: crate::train::TrainConfig {
                lr: 3e-3,
                batch_size: 32,
                ..crate::train::TrainConfig::default()
            },
            retrain_epochs: 2,
            retrain_lr_factor: 1.0,
            candidates: 1,
            screen_before_retraining: false,
            steps: None,
        };
        let (pruned, report) = mofhei_prune(&net, 0.9, &cfg, &train, &valid).unwrap();
        // 90% of 16 hidden neurons pruned (rounded down), the output exempt.
        assert_eq!(report.units_after, vec![2, 64]);
        let (before, after) = (mse(&net), mse(&pruned));
        assert!(
            after.is_finite() && after < before,
            "MSE {before} -> {after}"
        );
    }

    #[test]
    fn best_of_k_keeps_the_best_validation_run() {
        let data = crate::data::Dataset::digits_8x8()
            .flatten()
            .to_autoencoder();
        let (train, valid) = data.split(0.2, 3).unwrap();
        let net = crate::model::zoo::autoencoder(64, &[16], Activation::Square, 3).unwrap();
        let plain = MofheiConfig {
            train: crate::train::TrainConfig {
                lr: 3e-3,
                batch_size: 32,
                seed: 3,
                ..crate::train::TrainConfig::default()
            },
            schedule: crate::prune::ScheduleConfig {
                epochs: 2,
                patience: None,
                ..MofheiConfig::digits_lenet(3).schedule
            },
            retrain_epochs: 1,
            candidates: 1,
            ..MofheiConfig::digits_lenet(3)
        };
        // Candidates: the 3 hidden units with the largest mean |w|.
        let grid = crate::prune::LayerBlocks::uniform(&net, plain.shape)
            .grid(&net, 0)
            .unwrap();
        let scores = crate::prune::score::block_scores(&net, 0, &grid, plain.opts.score);
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
        let runs: Vec<(f32, Network)> = order[..3]
            .iter()
            .map(|&b| {
                let cfg = MofheiConfig {
                    opts: crate::prune::PruneOptions {
                        protect: Some((0, b)),
                        ..plain.opts
                    },
                    ..plain.clone()
                };
                let (n, r) = mofhei_prune(&net, 0.9, &cfg, &train, &valid).unwrap();
                assert_eq!(r.units_after, vec![2, 64]);
                (crate::train::evaluate(&n, &valid).unwrap().metric, n)
            })
            .collect();
        let best = runs
            .iter()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|r| r.1.clone())
            .unwrap();
        let (chosen, _) = mofhei_prune(
            &net,
            0.9,
            &MofheiConfig {
                candidates: 3,
                ..plain.clone()
            },
            &train,
            &valid,
        )
        .unwrap();
        assert_eq!(chosen, best);
        // The runs differ (else the test could not fail).
        assert!(runs.iter().any(|r| r.1 != best));
    }
}

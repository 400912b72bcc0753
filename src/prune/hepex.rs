//! The HE-PEx pruning recipe: weight pruning, permutation of hidden
//! neurons, dropping almost-empty tiles, expansion, retraining.

use super::cull::units;
use crate::error::Result;
use crate::model::Network;

/// Settings of the HE-PEx pipeline on a trained network.
#[derive(Debug, Clone, PartialEq)]
pub struct HePexConfig {
    /// The weight tile (e.g. `Tile { rows: 4, cols: 8 }`).
    pub tile: super::BlockShape,
    /// Sparsity of the first, weight-level pruning.
    pub weight_target: f64,
    /// Scoring of the weight-level pruning.
    pub opts: super::PruneOptions,
    /// Schedule of the weight-level pruning (target = `weight_target`).
    pub schedule: super::Schedule,
    /// Tiles at or below this density are dropped (HE-PEx: 1/16).
    pub density: f64,
    /// Permute before dropping tiles (`None`: the same pipeline without
    /// permutation, for comparison).
    pub permute: Option<super::PermuteOptions>,
    /// Trainer settings (pruning and retraining).
    pub train: crate::train::TrainConfig,
    /// Epochs of weight-level pruning and of the retraining after expansion.
    pub epochs: usize,
}

/// What the HE-PEx pipeline produced.
#[derive(Debug, Clone, PartialEq)]
pub struct HePexResult {
    /// The pruned (and permuted) network.
    pub network: Network,
    /// The permutation (identity without permutation); the client applies
    /// its input and output parts.
    pub permutation: super::Permutation,
    /// Non-zero tiles before any pruning.
    pub tiles_dense: usize,
    /// Non-zero tiles after weight pruning (before permutation).
    pub tiles_pruned: usize,
    /// Non-zero tiles after permutation.
    pub tiles_permuted: usize,
    /// Non-zero tiles at the end (after dropping sparse tiles, expansion and
    /// retraining).
    pub tiles_final: usize,
}

/// HE-PEx on a trained dense chain: prune weights, retrain, permute, drop
/// almost-empty tiles, expand (every weight of a surviving tile trainable),
/// retrain.
pub fn hepex_prune(
    net: &Network,
    cfg: &HePexConfig,
    train: &crate::data::Dataset,
    validation: &crate::data::Dataset,
) -> Result<HePexResult> {
    use crate::train::{NoProgress, Trainer};
    let tiles = super::LayerBlocks::uniform(net, cfg.tile);
    let count = |n: &Network| super::nonzero_blocks(n, &tiles).iter().sum::<usize>();
    let tiles_dense = count(net);
    let mut pruned = net.clone();
    let weights = super::LayerBlocks::uniform(net, super::BlockShape::Weight);
    let mut tune =
        super::gradual::TrainerTune::new(Trainer::new(cfg.train.clone()), train, validation);
    let sched = super::ScheduleConfig {
        schedule: cfg.schedule,
        target: cfg.weight_target,
        epochs: cfg.epochs,
        patience: None,
    };
    super::gradual::run(&mut pruned, &weights, &cfg.opts, &sched, &mut tune)?;
    let tiles_pruned = count(&pruned);
    let (mut permuted, permutation) = match &cfg.permute {
        Some(p) => super::permute(&pruned, &tiles, p)?,
        None => {
            let sizes: Vec<usize> = std::iter::once(net.input_shape.iter().product())
                .chain(units(net))
                .collect();
            (pruned, super::Permutation::identity(&sizes))
        }
    };
    let tiles_permuted = count(&permuted);
    let drop = super::prune_sparse(&permuted, &tiles, cfg.density)?;
    drop.apply_assign(&mut permuted)?;
    let expanded = super::expand(&permuted, &tiles);
    let mut tc = cfg.train.clone();
    tc.epochs = cfg.epochs;
    let mut t = Trainer::new(tc).with_masks(expanded);
    // The permuted network sees its data in the permuted order.
    let (ptrain, pvalid) = (
        permutation.permute_dataset(train)?,
        permutation.permute_dataset(validation)?,
    );
    t.fit(&mut permuted, &ptrain, Some(&pvalid), &mut NoProgress)?;
    Ok(HePexResult {
        tiles_final: count(&permuted),
        network: permuted,
        permutation,
        tiles_dense,
        tiles_pruned,
        tiles_permuted,
    })
}

//! Block scores and the choice of blocks to prune.
//!
//! A block's importance is a statistic of its weights' magnitudes
//! ([`Score`]); MOFHEI uses the mean `|w|` of a whole unit. Blocks are ranked
//! per layer or across layers ([`Scope`]), optionally by importance per unit
//! of HE cost saved ([`super::op_savings`]), and the lowest are zeroed until the
//! target fraction of the layer's (or network's) weights is reached.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use super::blocks::{BlockGrid, LayerBlocks, matrix, weighted_layers};
use super::op_savings::{OpPrices, savings};
use super::selection::{drop_weights, keep_all};
use crate::error::{Error, Result};
use crate::model::Network;
use crate::train::Masks;

/// How a block's importance is computed from its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Score {
    /// Mean of `|w|` (MOFHEI).
    MeanAbs,
    /// Euclidean norm `sqrt(sum w^2)` (favours larger blocks when blocks
    /// differ in size).
    L2,
    /// Smallest `|w|` in the block (tile min).
    MinAbs,
    /// Largest `|w|` in the block (tile max).
    MaxAbs,
}

impl Score {
    fn of(self, values: impl Iterator<Item = f32>) -> f64 {
        let (mut n, mut sum, mut sq, mut min, mut max) = (0usize, 0.0f64, 0.0f64, f64::MAX, 0.0f64);
        for v in values {
            let a = f64::from(v.abs());
            n += 1;
            sum += a;
            sq += a * a;
            min = min.min(a);
            max = max.max(a);
        }
        if n == 0 {
            return 0.0;
        }
        match self {
            Score::MeanAbs => sum / n as f64,
            Score::L2 => sq.sqrt(),
            Score::MinAbs => min,
            Score::MaxAbs => max,
        }
    }
}

/// Whether blocks compete within their layer or across the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Each layer reaches the target on its own (MOFHEI).
    PerLayer,
    /// One ranking over all pruned layers; layers end up unevenly sparse.
    Global,
}

/// How blocks are scored and chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PruneOptions {
    /// Importance statistic.
    pub score: Score,
    /// Per-layer or global ranking.
    pub scope: Scope,
    /// Never prune the last dense/convolution layer (MOFHEI).
    pub exempt_output: bool,
    /// Rank by `score / saving` with these op prices instead of by score.
    pub cost_aware: Option<OpPrices>,
    /// A block that is never pruned: (network layer index, block index in
    /// that layer's grid). Its weights still count towards the layer's
    /// target, so the layer loses other blocks instead; best-of-k pruning
    /// ([`super::MofheiConfig::candidates`]) uses it to try each choice of
    /// the unit that survives.
    pub protect: Option<(usize, usize)>,
}

impl Default for PruneOptions {
    /// MOFHEI's choice: mean `|w|`, per layer, output layer exempt, by
    /// magnitude only.
    fn default() -> Self {
        PruneOptions {
            score: Score::MeanAbs,
            scope: Scope::PerLayer,
            exempt_output: true,
            cost_aware: None,
            protect: None,
        }
    }
}

/// The score of every block of layer `i` of `net` under `grid`.
pub fn block_scores(net: &Network, i: usize, grid: &BlockGrid, score: Score) -> Vec<f64> {
    let Some(w) = net.layers.get(i).and_then(matrix) else {
        return Vec::new();
    };
    let inp = grid.inp();
    (0..grid.count())
        .map(|b| score.of(grid.positions(b).into_iter().map(|(r, c)| w[r * inp + c])))
        .collect()
}

/// One candidate block.
#[derive(Debug, Clone)]
struct Candidate {
    layer: usize,
    block: usize,
    weights: usize,
    score: f64,
    saving: f64,
    group: Option<usize>,
}

/// Heap entry: lowest priority first, ties by (layer, block) for
/// determinism; `version` invalidates stale entries.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    priority: f64,
    idx: usize,
    version: u32,
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .priority
            .total_cmp(&self.priority)
            .then_with(|| other.idx.cmp(&self.idx))
    }
}

/// Checks a target fraction.
pub(crate) fn check_target(target: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&target) || target.is_nan() {
        return Err(Error::InvalidValue {
            name: "target sparsity",
            value: target,
            allowed: "0..=1",
        });
    }
    Ok(())
}

/// Chooses the blocks to prune, lowest first, while the zeroed weights stay
/// within `target` of the pruned layers' weights (per layer or overall, by
/// `opts.scope`; a block that would cross the target ends the layer's
/// pruning), and returns the weights that stay as a mask. Already-zero blocks score 0
/// and go first; every layer keeps at least one non-empty block.
pub fn select(
    net: &Network,
    blocks: &LayerBlocks,
    opts: &PruneOptions,
    target: f64,
) -> Result<Masks> {
    check_target(target)?;
    let mut blocks = blocks.clone();
    if blocks.len() != net.layers.len() {
        return Err(Error::ShapeMismatch {
            layer: 0,
            expected: vec![net.layers.len()],
            found: vec![blocks.len()],
        });
    }
    if opts.exempt_output
        && let Some(&last) = weighted_layers(net).last()
    {
        blocks.exempt_assign(last);
    }
    let mut sel = keep_all(net);
    let pruned: Vec<(usize, BlockGrid)> = (0..net.layers.len())
        .filter_map(|i| blocks.grid(net, i).map(|g| (i, g)))
        .collect();
    let groups: Vec<Vec<(usize, BlockGrid)>> = match opts.scope {
        Scope::PerLayer => pruned.into_iter().map(|p| vec![p]).collect(),
        Scope::Global => vec![pruned],
    };
    for group in groups {
        prune_group(net, &group, opts, target, &mut sel)?;
    }
    Ok(sel)
}

/// Greedy pruning of one competition group of layers.
fn prune_group(
    net: &Network,
    layers: &[(usize, BlockGrid)],
    opts: &PruneOptions,
    target: f64,
    sel: &mut Masks,
) -> Result<()> {
    let mut cands = Vec::new();
    // Per (layer, group): remaining unpruned blocks; bonus per layer.
    let mut group_left: Vec<Vec<usize>> = Vec::new();
    let mut group_bonus: Vec<f64> = Vec::new();
    let mut first_cand: Vec<usize> = Vec::new();
    let mut total = 0usize;
    for (li, (i, grid)) in layers.iter().enumerate() {
        let scores = block_scores(net, *i, grid, opts.score);
        let sizes = grid.sizes();
        let sv = match &opts.cost_aware {
            Some(p) => Some(savings(net, *i, grid, p)?),
            None => None,
        };
        let mut left = Vec::new();
        if let Some(s) = &sv {
            for &g in &s.group_of {
                if g >= left.len() {
                    left.resize(g + 1, 0);
                }
                left[g] += 1;
            }
        }
        group_left.push(left);
        group_bonus.push(sv.as_ref().map(|s| s.group_bonus).unwrap_or(0.0));
        first_cand.push(cands.len());
        for b in 0..grid.count() {
            if sizes[b] == 0 {
                continue;
            }
            total += sizes[b];
            if opts.protect == Some((*i, b)) {
                continue;
            }
            cands.push(Candidate {
                layer: li,
                block: b,
                weights: sizes[b],
                score: scores[b],
                saving: sv.as_ref().map(|s| s.base[b]).unwrap_or(1.0),
                group: sv.as_ref().and_then(|s| s.group_of.get(b).copied()),
            });
        }
    }
    // Whole blocks up to the target (MOFHEI: 90% of 16 filters prunes 14).
    let goal = (target * total as f64 + 1e-9).floor() as usize;
    let mut layer_left: Vec<usize> = layers
        .iter()
        .map(|(_, g)| g.sizes().iter().filter(|&&s| s > 0).count())
        .collect();
    let priority = |c: &Candidate, bonus: f64| -> f64 {
        if opts.cost_aware.is_some() {
            c.score / (c.saving + bonus).max(f64::MIN_POSITIVE)
        } else {
            c.score
        }
    };
    let mut version = vec![0u32; cands.len()];
    let mut heap: BinaryHeap<Entry> = cands
        .iter()
        .enumerate()
        .map(|(idx, c)| {
            let bonus = match c.group {
                Some(g) if group_left[c.layer][g] == 1 => group_bonus[c.layer],
                _ => 0.0,
            };
            Entry {
                priority: priority(c, bonus),
                idx,
                version: 0,
            }
        })
        .collect();
    let mut done = vec![false; cands.len()];
    let mut removed = 0usize;
    while removed < goal {
        let Some(e) = heap.pop() else { break };
        if done[e.idx] || e.version != version[e.idx] {
            continue;
        }
        let c = &cands[e.idx];
        if layer_left[c.layer] <= 1 || removed + c.weights > goal {
            continue;
        }
        done[e.idx] = true;
        layer_left[c.layer] -= 1;
        removed += c.weights;
        let (i, grid) = &layers[c.layer];
        let inp = grid.inp();
        drop_weights(
            sel,
            net,
            *i,
            grid.positions(c.block)
                .into_iter()
                .map(|(r, col)| r * inp + col),
        );
        if let Some(g) = c.group {
            group_left[c.layer][g] -= 1;
            if group_left[c.layer][g] == 1 {
                // The last block of this group now also frees the group.
                let start = first_cand[c.layer];
                let end = first_cand.get(c.layer + 1).copied().unwrap_or(cands.len());
                for idx in start..end {
                    if !done[idx] && cands[idx].group == Some(g) {
                        version[idx] += 1;
                        heap.push(Entry {
                            priority: priority(&cands[idx], group_bonus[c.layer]),
                            idx,
                            version: version[idx],
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// Scores, selects and zeroes in one go: returns the selection applied.
pub fn prune_assign(
    net: &mut Network,
    blocks: &LayerBlocks,
    opts: &PruneOptions,
    target: f64,
) -> Result<Masks> {
    let sel = select(net, blocks, opts, target)?;
    sel.apply_assign(net)?;
    Ok(sel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Dense, Layer, Tensor};
    use crate::prune::blocks::BlockShape;

    fn dense(out: usize, inp: usize, w: Vec<f32>) -> Layer {
        Layer::Dense(Dense {
            weight: Tensor::new(vec![out, inp], w).unwrap(),
            bias: vec![0.0; out],
        })
    }

    #[test]
    fn scores_on_hand_made_weights() {
        // 2 x 4 matrix, tiles 2 x 2: left tile [1,-2;3,-4], right [0,0.5;0,-0.5].
        let net = Network::new(
            vec![4],
            vec![dense(2, 4, vec![1.0, -2.0, 0.0, 0.5, 3.0, -4.0, 0.0, -0.5])],
        )
        .unwrap();
        let g = BlockShape::Tile { rows: 2, cols: 2 }.grid(2, 4);
        let s = |sc| block_scores(&net, 0, &g, sc);
        assert_eq!(s(Score::MeanAbs), vec![2.5, 0.25]);
        assert_eq!(s(Score::MinAbs), vec![1.0, 0.0]);
        assert_eq!(s(Score::MaxAbs), vec![4.0, 0.5]);
        assert!((s(Score::L2)[0] - 30f64.sqrt()).abs() < 1e-12);
        let col = BlockShape::Column.grid(2, 4);
        assert_eq!(
            block_scores(&net, 0, &col, Score::MeanAbs),
            vec![0.875, 1.875]
        );
        let diag = BlockShape::Diagonal { size: 4 }.grid(2, 4);
        // k = 0: (0,0),(1,1) -> 1, 4; k = 1: (0,1),(1,2) -> 2, 0;
        // k = 2: (0,2),(1,3) -> 0, 0.5; k = 3: (0,3),(1,0) -> 0.5, 3.
        assert_eq!(
            block_scores(&net, 0, &diag, Score::MaxAbs),
            vec![4.0, 2.0, 0.5, 3.0]
        );
    }

    fn two_layer() -> Network {
        let w1: Vec<f32> = (0..32).map(|i| (i as f32 - 15.5) / 8.0).collect();
        let w2: Vec<f32> = (0..16).map(|i| (i as f32 + 1.0) / 4.0).collect();
        Network::new(
            vec![8],
            vec![
                dense(4, 8, w1),
                Layer::Activation(Activation::Square),
                dense(4, 4, w2),
            ],
        )
        .unwrap()
    }

    #[test]
    fn per_layer_target_and_output_exempt() {
        let net = two_layer();
        let blocks = LayerBlocks::uniform(&net, BlockShape::Column);
        let sel = select(&net, &blocks, &PruneOptions::default(), 0.5).unwrap();
        let k0 = sel.get(0).unwrap();
        assert_eq!(k0.iter().filter(|k| !**k).count(), 16);
        assert!(sel.get(2).unwrap().iter().all(|k| *k));
        // Rows 1 and 2 have the smallest mean |w| (weights near zero).
        assert!(!k0[8] && !k0[16] && k0[0] && k0[24]);
    }

    #[test]
    fn a_layer_keeps_one_block() {
        let net = two_layer();
        let blocks = LayerBlocks::uniform(&net, BlockShape::Column);
        let opts = PruneOptions {
            exempt_output: false,
            ..PruneOptions::default()
        };
        let sel = select(&net, &blocks, &opts, 1.0).unwrap();
        assert_eq!(crate::prune::selection::kept(&sel, &net), 8 + 4);
        assert!(select(&net, &blocks, &opts, 1.5).is_err());
    }

    #[test]
    fn a_protected_block_survives_and_counts_towards_the_target() {
        let net = two_layer();
        let blocks = LayerBlocks::uniform(&net, BlockShape::Column);
        let base = PruneOptions {
            exempt_output: false,
            ..PruneOptions::default()
        };
        let rows_kept = |sel: &Masks, cols: usize| -> Vec<usize> {
            sel.get(0)
                .unwrap()
                .chunks(cols)
                .enumerate()
                .filter(|(_, r)| r.iter().any(|k| *k))
                .map(|(i, _)| i)
                .collect()
        };
        let cols = matrix(&net.layers[0]).unwrap().len() / 4;
        let plain = select(&net, &blocks, &base, 0.75).unwrap();
        let kept = rows_kept(&plain, cols);
        assert_eq!(kept.len(), 1);
        // Protect the lowest-scoring row instead: it stays, and it is the
        // only one (the layer still reaches the same target).
        let scores = block_scores(&net, 0, &blocks.grid(&net, 0).unwrap(), Score::MeanAbs);
        let weakest = (0..scores.len())
            .min_by(|a, b| scores[*a].total_cmp(&scores[*b]))
            .unwrap();
        assert_ne!(kept, vec![weakest]);
        let opts = PruneOptions {
            protect: Some((0, weakest)),
            ..base
        };
        let sel = select(&net, &blocks, &opts, 0.75).unwrap();
        assert_eq!(rows_kept(&sel, cols), vec![weakest]);
        assert_eq!(sel.pruned(), plain.pruned());
    }

    #[test]
    fn cost_aware_prefers_freeing_a_tile_row() {
        // 2 x 4 matrix, 1 x 2 tiles: row 0 tiles (a, b), row 1 tiles (c, d).
        // Plain magnitude prunes the two smallest tiles a and c (different
        // rows, no rotation freed); cost-aware pruning takes a then b, which
        // empties row 0 and frees its rotation.
        let w = vec![0.10, 0.10, 0.30, 0.30, 0.12, 0.12, 1.0, 1.0];
        let net = Network::new(vec![4], vec![dense(2, 4, w)]).unwrap();
        let blocks = LayerBlocks::uniform(&net, BlockShape::Tile { rows: 1, cols: 2 });
        let base = PruneOptions {
            exempt_output: false,
            ..PruneOptions::default()
        };
        let plain = select(&net, &blocks, &base, 0.5).unwrap();
        assert_eq!(
            plain.get(0).unwrap(),
            &[false, false, true, true, false, false, true, true]
        );
        let prices = OpPrices {
            rotation: 100.0,
            ..OpPrices::default()
        };
        let aware = PruneOptions {
            cost_aware: Some(prices),
            ..base
        };
        let sel = select(&net, &blocks, &aware, 0.5).unwrap();
        assert_eq!(
            sel.get(0).unwrap(),
            &[false, false, false, false, true, true, true, true]
        );
    }

    #[test]
    fn global_scope_prunes_unevenly() {
        let net = two_layer();
        let blocks = LayerBlocks::uniform(&net, BlockShape::Weight);
        let opts = PruneOptions {
            scope: Scope::Global,
            exempt_output: false,
            ..PruneOptions::default()
        };
        let sel = select(&net, &blocks, &opts, 0.5).unwrap();
        assert_eq!(sel.pruned(), 24);
        // Layer 0 holds the small weights, so it loses more than half.
        let lost0 = sel.get(0).unwrap().iter().filter(|k| !**k).count();
        assert!(lost0 > 16, "{lost0}");
    }
}

//! Block pruning aligned with the packing, culling, and HE-PEx permutation
//! and expansion.
//!
//! Design notes and measured figures: `docs/pruning.md`.
//!
//! - [`blocks`]: block views of a layer's weights ([`BlockShape`], im2col
//!   view of convolutions, tiles, diagonals).
//! - [`score`]: block scores, per-layer or global ranking, [`select`].
//! - [`cost`]: cost-aware ranking (what a zero block saves under HE).
//! - [`schedule`]: one-shot, constant (MOFHEI) and polynomial schedules.
//! - [`mod@cull`]: removing dead neurons/filters (MOFHEI).
//! - [`mod@sweep`]: pruning at several targets, op counts.
//! - [`mod@permute`]: HE-PEx permutation of hidden neurons.
//! - [`tiles`]: tile counts, pruning almost-empty tiles, expansion.

pub mod blocks;
pub mod cost;
pub mod cull;
pub mod permute;
pub mod schedule;
pub mod score;
pub mod selection;
pub mod sweep;
pub mod tiles;

pub(crate) use blocks::BlockShape;
pub use blocks::{BlockGrid, LayerBlocks};
pub use cost::OpPrices;
pub use cull::{CullReport, cull};
pub use permute::{Permutation, PermuteOptions, permute};
pub use schedule::{FineTune, Schedule, ScheduleConfig, ScheduleReport, TrainerTune};
pub use score::{PruneOptions, Scope, Score, prune_assign, select};
pub use sweep::{
    HePexConfig, HePexResult, MofheiConfig, SweepPoint, batch_op_counts, compiled_op_counts,
    hepex_prune, mofhei_prune, sweep,
};
pub use tiles::{expand, nonzero_blocks, prune_sparse};

//! Block pruning aligned with the packing, culling, and HE-PEx permutation
//! and expansion.
//!
//! Design notes and measured figures: `docs/pruning.md`.
//!
//! - [`blocks`]: block views of a layer's weights ([`BlockShape`], im2col
//!   view of convolutions, tiles, diagonals).
//! - [`score`]: block scores, per-layer or global ranking, [`select`].
//! - [`op_savings`]: cost-aware ranking (what a zero block saves under HE).
//! - [`gradual`]: one-shot, constant (MOFHEI) and polynomial schedules.
//! - [`cull()`]: removing dead neurons/filters (MOFHEI).
//! - [`mofhei_prune`]: MOFHEI's recipe (schedule, culling, retraining,
//!   best-of-k) with its presets ([`MofheiConfig`]).
//! - [`hepex_prune`]: HE-PEx's recipe (weight pruning, [`permute()`] of
//!   hidden neurons, tile dropping, expansion).
//! - [`sweep()`]: pruning at several targets, op counts.
//! - [`tiles`]: tile counts, pruning almost-empty tiles, expansion.

pub mod blocks;
mod cull;
pub mod gradual;
mod hepex;
mod mofhei;
pub mod op_savings;
mod permute;
pub mod score;
pub mod selection;
mod sweep;
pub mod tiles;

pub(crate) use blocks::BlockShape;
pub use blocks::{BlockGrid, LayerBlocks};
pub use cull::{CullReport, cull, units};
pub use gradual::{FineTune, Schedule, ScheduleConfig, ScheduleReport, TrainerTune};
pub use hepex::{HePexConfig, HePexResult, hepex_prune};
pub use mofhei::{MofheiConfig, StepBudget, mofhei_prune};
pub use op_savings::OpPrices;
pub use permute::{Permutation, PermuteOptions, apply_permutation, permute, tile_count};
pub use score::{PruneOptions, Scope, Score, prune_assign, select};
pub use sweep::{OpCounter, SweepPoint, batch_op_counts, compiled_op_counts, sweep};
pub use tiles::{expand, nonzero_blocks, prune_sparse};

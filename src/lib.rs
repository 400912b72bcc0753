#![doc = include_str!("../README.md")]

pub mod budget;
pub mod compile;
pub mod data;
pub mod error;
pub mod eval;
pub mod he;
pub mod import;
pub mod lower;
pub mod model;
pub mod packing;
pub mod plan;
pub mod prune;
pub mod quant;
pub mod report;
pub mod train;
pub mod transform;

pub use budget::Budget;
pub use error::{Error, Result};

#[cfg(test)]
mod testutil;

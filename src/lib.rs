#![doc = include_str!("../README.md")]

pub mod budget;
pub mod compile;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod data;
pub mod error;
pub mod eval;
pub mod he;
pub mod import;
pub mod model;
pub mod packing;
pub mod prune;
pub mod quant;
pub mod report;
pub mod train;
pub mod transform;

pub use budget::Budget;
pub use error::{Error, Result};

#[cfg(test)]
mod testutil;

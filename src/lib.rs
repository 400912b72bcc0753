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
pub mod lower;
pub mod model;
pub mod packing;
pub mod plan;
pub mod prelude;
pub mod prune;
pub mod quant;
pub mod report;
pub mod train;
pub mod transform;

pub use budget::Budget;
pub use error::{Error, Result};

#[cfg(test)]
mod testutil;

/// The code of `docs/compile.md`, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../docs/compile.md")]
struct CompileDoc;

/// The code of `docs/import.md`, compiled as a doctest (not run: it reads
/// model files).
#[cfg(doctest)]
#[doc = include_str!("../docs/import.md")]
struct ImportDoc;

/// The code of `docs/bfv.md`, compiled and run as a doctest.
#[cfg(all(doctest, feature = "bfv"))]
#[doc = include_str!("../docs/bfv.md")]
struct BfvDoc;

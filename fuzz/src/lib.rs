//! The fuzz target bodies and seeds, compiled from the crate's test tree so
//! that `cargo fuzz` and the smoke run in `cargo test` share them.

#[path = "../../tests/fuzz_targets/mod.rs"]
mod fuzz_targets;

pub use fuzz_targets::*;

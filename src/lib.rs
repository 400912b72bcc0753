#![doc = include_str!("../README.md")]

pub mod error;
pub mod he;
pub mod model;
pub mod prune;

pub use error::{Error, Result};

#![doc = include_str!("../README.md")]

pub mod data;
pub mod error;
pub mod he;
pub mod model;
pub mod prune;
pub mod train;

pub use error::{Error, Result};

#![doc = include_str!("../README.md")]

pub mod data;
pub mod error;
pub mod he;
pub mod import;
pub mod model;
pub mod quant;
pub mod report;
pub mod train;
pub mod transform;

pub use error::{Error, Result};

#![doc = include_str!("../README.md")]

pub mod error;
pub mod he;
pub mod import;
pub mod model;

pub use error::{Error, Result};

//! Resource budgets: the most memory and work that sizes read from outside
//! (a network file, an imported model, a data file) may make mofhei spend.
//!
//! A 45-byte network can describe a 4 TB activation and a 2 MiB gzip file
//! can inflate to gigabytes. Every size derived from such input is computed
//! with checked arithmetic and compared with a [`Budget`] **before** the
//! memory is allocated or the work started; going over is
//! [`Error::BudgetExceeded`], which names the quantity, what it needed and
//! the limit. The defaults are generous for real networks and data sets (the
//! MOFHEI LeNet and 784-input MLPs at a batch of 8192, MNIST-sized IDX
//! files); a caller who needs more raises one field. See
//! `docs/security.md` ("Resource budgets and validation").

use crate::error::{Error, Result};

/// Limits on the memory and work that untrusted sizes may cause.
///
/// Used by [`crate::model::Network::from_bytes_with_budget`] and
/// [`crate::model::Network::validate_with_budget`] (per sample),
/// [`crate::model::Network::forward_with_budget`] (per batch),
/// [`crate::compile::CompileOptions::budget`] (folding),
/// [`crate::train::TrainConfig::budget`] (training batches) and
/// [`crate::data::idx::parse_with_budget`] (data files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The most `f32` elements of one buffer sized from a network: one
    /// activation over the whole batch, one convolution scratch (im2col)
    /// matrix; for [`crate::model::Network::forward_all`] and training, all
    /// activations of the batch together (they are all kept). Default
    /// `2^28` (1 GiB of `f32`): LeNet's largest activation at a batch of
    /// 8192 is `2^25.2` elements. Peak memory of a forward pass is a small
    /// multiple of this (input, output and a per-thread scratch).
    pub max_tensor_elements: u64,
    /// The most work the compiler may spend folding and lowering a network
    /// ([`crate::lower::Folded`]): the input elements plus, per layer, its
    /// output elements and its weight terms (outputs times fan-in), all
    /// computed from the shapes before anything is built. Measured with
    /// batch packing: about 0.2 microseconds and 55 bytes per unit (4
    /// million units: 0.8 s and 220 MB peak; 16.7 million: 2.9 s and 0.9
    /// GB). Default `2^22` (4.2 million: the MOFHEI LeNet needs 0.5
    /// million, a 784-1024-1024-10 MLP 1.9 million).
    pub max_compile_terms: u64,
    /// The most elements (bytes) of one decoded data array, e.g. an IDX
    /// file after decompression; the decoded images take 4 bytes per
    /// element, labels 8. Default `2^27` (MNIST's training images are
    /// `2^25.5`).
    pub max_data_elements: u64,
}

impl Budget {
    /// The default budget (see the fields).
    pub const DEFAULT: Budget = Budget {
        max_tensor_elements: 1 << 28,
        max_compile_terms: 1 << 22,
        max_data_elements: 1 << 27,
    };

    /// Refuses `needed > limit` with [`Error::BudgetExceeded`].
    pub(crate) fn check(what: &'static str, needed: u64, limit: u64) -> Result<()> {
        if needed > limit {
            return Err(Error::BudgetExceeded {
                what,
                needed,
                limit,
            });
        }
        Ok(())
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::DEFAULT
    }
}

/// `a * b`, saturating at `u64::MAX` (an overflowing size exceeds every budget).
pub(crate) fn mul(a: u64, b: u64) -> u64 {
    a.saturating_mul(b)
}

/// The product of `dims` as `u64`, saturating.
pub(crate) fn product(dims: &[usize]) -> u64 {
    dims.iter().fold(1u64, |acc, &d| mul(acc, d as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_and_saturation() {
        assert!(Budget::check("x", 5, 5).is_ok());
        assert!(matches!(
            Budget::check("x", 6, 5),
            Err(Error::BudgetExceeded {
                what: "x",
                needed: 6,
                limit: 5
            })
        ));
        assert_eq!(product(&[usize::MAX, 3]), u64::MAX);
        assert_eq!(product(&[]), 1);
        assert_eq!(product(&[2, 3, 7]), 42);
        assert_eq!(Budget::default(), Budget::DEFAULT);
    }
}

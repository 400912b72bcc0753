//! What a plan records about the packing it was compiled with
//! ([`PackingKind`], with the [`TileShape`] of a tile packing).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which packing a plan was compiled with (recorded in the plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackingKind {
    /// [`crate::packing::Batch`].
    Batch,
    /// [`crate::packing::Tile`] with its tile shape.
    Tile(TileShape),
    /// [`crate::packing::Diagonal`].
    Diagonal,
}

/// The tile: `rows x cols` with `batch` samples per slot position
/// (`rows * cols * batch` slots, all powers of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TileShape {
    /// Tile size along the first dimension (t1).
    pub rows: usize,
    /// Tile size along the second dimension (t2).
    pub cols: usize,
    /// Samples per tile (innermost dimension).
    pub batch: usize,
}

impl TileShape {
    /// A tile shape; every size must be a power of two.
    /// The product `rows * cols * batch` must fit in `usize`.
    pub fn new(rows: usize, cols: usize, batch: usize) -> Result<TileShape> {
        for (name, v) in [
            ("tile rows", rows),
            ("tile cols", cols),
            ("tile batch", batch),
        ] {
            if v == 0 || !v.is_power_of_two() {
                return Err(Error::InvalidParameter {
                    name,
                    value: v as i64,
                    allowed: "a power of two",
                });
            }
        }
        if rows
            .checked_mul(cols)
            .and_then(|x| x.checked_mul(batch))
            .is_none()
        {
            return Err(Error::InvalidParameter {
                name: "tile slots",
                value: i64::MAX,
                allowed: "rows * cols * batch within usize",
            });
        }
        Ok(TileShape { rows, cols, batch })
    }

    /// Slots one tile occupies.
    pub fn slots(&self) -> usize {
        self.rows * self.cols * self.batch
    }

    /// Slot of `(row, col, sample)` in a tile.
    pub fn slot(&self, row: usize, col: usize, sample: usize) -> usize {
        (row * self.cols + col) * self.batch + sample
    }
}

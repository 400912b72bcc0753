//! Tile shapes and the tile-tensor shape notation (HElayers).
//!
//! A tile tensor cuts a tensor into tiles whose sizes multiply to the slot
//! count (one tile = one ciphertext, or one period of a replicated
//! ciphertext). Its shape lists, per dimension, the original size over the
//! tile size, with markers:
//!
//! | notation | meaning |
//! |---|---|
//! | `n/t` | `n` elements, `t` per tile (`ceil(n/t)` tiles along this dimension) |
//! | `*/t` | duplicated: one element repeated over all `t` slots |
//! | `n?/t` | `n` valid elements; the other slots of the dimension hold unknown values (cleared by a mask before use) |
//! | `~n/t` | interleaved: element `e` sits in tile `e mod k`, slot `e / k` (`k = n / t` tiles; `n` is the zero-padded extent `k t`) |
//!
//! For example a vector of 300 features laid along the rows of 64 x 128 tiles
//! and duplicated along the columns, 2 samples per tile, is `[300/64, */128,
//! 2/2]`: 5 ciphertexts.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a dimension of a tile tensor is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DimKind {
    /// Elements in order, `tile` per tile.
    Plain,
    /// One element duplicated over the tile dimension (`*`).
    Duplicated,
    /// Valid elements plus unknown slots (`?`).
    Unknown,
    /// Elements interleaved across tiles (`~`).
    Interleaved,
}

/// One dimension of a tile-tensor shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileDim {
    /// Original size (1 for a duplicated dimension).
    pub size: usize,
    /// Tile size.
    pub tile: usize,
    /// Layout marker.
    pub kind: DimKind,
}

impl TileDim {
    /// Number of tiles along this dimension.
    pub fn tiles(&self) -> usize {
        match self.kind {
            DimKind::Duplicated => 1,
            _ => self.size.div_ceil(self.tile.max(1)),
        }
    }
}

/// A tile-tensor shape, e.g. `[300/64, */128, 2/2]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileTensorShape {
    /// The dimensions, outermost first.
    pub dims: Vec<TileDim>,
}

impl TileTensorShape {
    /// Number of tiles (ciphertexts); [`Error::InvalidParameter`] when the
    /// product overflows (sizes are untrusted: parsed or deserialised).
    pub fn tile_count(&self) -> Result<usize> {
        self.dims
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(d.tiles()))
            .ok_or(Error::InvalidParameter {
                name: "tile tensor shape (tile count)",
                value: i64::MAX,
                allowed: "a product of tile counts that fits in usize",
            })
    }

    /// Slots per tile; [`Error::InvalidParameter`] when the product overflows.
    pub fn tile_slots(&self) -> Result<usize> {
        self.dims
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(d.tile))
            .ok_or(Error::InvalidParameter {
                name: "tile tensor shape (tile slots)",
                value: i64::MAX,
                allowed: "a product of tile sizes that fits in usize",
            })
    }

    /// Parse the notation of the module docs.
    pub fn parse(s: &str) -> Result<TileTensorShape> {
        let bad = |v: usize| Error::InvalidParameter {
            name: "tile tensor shape",
            value: v as i64,
            allowed: "[dim, ...] with dim = n/t, */t, n?/t or ~n/t",
        };
        let inner = s
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or(bad(0))?;
        let mut dims = Vec::new();
        for (i, part) in inner.split(',').enumerate() {
            let (orig, tile) = part.trim().split_once('/').ok_or(bad(i))?;
            let tile: usize = tile.trim().parse().map_err(|_| bad(i))?;
            let orig = orig.trim();
            let (kind, num) = if orig == "*" {
                (DimKind::Duplicated, "1")
            } else if let Some(n) = orig.strip_prefix('~') {
                (DimKind::Interleaved, n)
            } else if let Some(n) = orig.strip_suffix('?') {
                (DimKind::Unknown, n)
            } else {
                (DimKind::Plain, orig)
            };
            let size: usize = num.parse().map_err(|_| bad(i))?;
            if tile == 0 || !tile.is_power_of_two() || size == 0 {
                return Err(bad(i));
            }
            dims.push(TileDim { size, tile, kind });
        }
        let shape = TileTensorShape { dims };
        shape.tile_count()?;
        shape.tile_slots()?;
        Ok(shape)
    }
}

impl fmt::Display for TileTensorShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match d.kind {
                DimKind::Plain => write!(f, "{}/{}", d.size, d.tile)?,
                DimKind::Duplicated => write!(f, "*/{}", d.tile)?,
                DimKind::Unknown => write!(f, "{}?/{}", d.size, d.tile)?,
                DimKind::Interleaved => write!(f, "~{}/{}", d.size, d.tile)?,
            }
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TileShape;

    #[test]
    fn notation_round_trips() {
        for s in ["[300/64, */128, 2/2]", "[10?/16, ~49/8]", "[1/1]"] {
            let t = TileTensorShape::parse(s).unwrap();
            assert_eq!(t.to_string(), s);
        }
        let t = TileTensorShape::parse("[300/64, */128, 2/2]").unwrap();
        assert_eq!(t.tile_count().unwrap(), 5);
        assert_eq!(t.tile_slots().unwrap(), 64 * 128 * 2);
        for bad in ["300/64", "[300/63]", "[x/4]", "[3]", "[0/4]"] {
            assert!(TileTensorShape::parse(bad).is_err(), "{bad}");
        }
        assert!(TileShape::new(3, 4, 1).is_err());
        assert!(TileShape::new(1 << 40, 1 << 20, 1 << 10).is_err());
        // Products that overflow are errors, never a wrap or a panic.
        let big = "[18446744073709551615/1, 18446744073709551615/1]";
        assert!(TileTensorShape::parse(big).is_err());
        let wide = "[1/4611686018427387904, 1/4611686018427387904]";
        assert!(TileTensorShape::parse(wide).is_err());
        let hand = TileTensorShape {
            dims: vec![
                TileDim {
                    size: usize::MAX,
                    tile: 1,
                    kind: DimKind::Plain,
                };
                2
            ],
        };
        assert!(hand.tile_count().is_err());
        assert_eq!(TileShape::new(4, 8, 2).unwrap().slot(1, 2, 1), 21);
    }
}

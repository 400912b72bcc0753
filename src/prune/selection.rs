//! Which weights pruning keeps: one flag per weight of every dense and
//! convolution layer.
//!
//! A [`Selection`] is the outcome of scoring (zero these blocks) and the
//! input of fine-tuning (train only these weights). It converts to the
//! training engine's mask, which keeps the unselected weights exactly 0.0.

use serde::{Deserialize, Serialize};

use super::blocks::matrix;
use crate::error::{Error, Result};
use crate::model::Network;

/// Per layer of a network, which weights are kept (`None` for layers
/// without weights; a layer that is not pruned keeps every weight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    keep: Vec<Option<Vec<bool>>>,
}

impl Selection {
    /// Keeps every weight of `net`.
    pub fn all(net: &Network) -> Selection {
        Selection {
            keep: net
                .layers
                .iter()
                .map(|l| matrix(l).map(|w| vec![true; w.len()]))
                .collect(),
        }
    }

    /// Keeps the weights of `net` that are non-zero.
    pub fn nonzero(net: &Network) -> Selection {
        Selection {
            keep: net
                .layers
                .iter()
                .map(|l| matrix(l).map(|w| w.iter().map(|v| *v != 0.0).collect()))
                .collect(),
        }
    }

    /// From explicit flags, one entry per layer of `net`; errors if the
    /// lengths do not match the layers' weights.
    pub fn from_flags(net: &Network, keep: Vec<Option<Vec<bool>>>) -> Result<Selection> {
        let sel = Selection { keep };
        sel.check(net)?;
        Ok(sel)
    }

    /// Errors unless the flags match `net`'s layers and weight counts.
    pub fn check(&self, net: &Network) -> Result<()> {
        if self.keep.len() != net.layers.len() {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: vec![net.layers.len()],
                found: vec![self.keep.len()],
            });
        }
        for (i, (k, l)) in self.keep.iter().zip(&net.layers).enumerate() {
            let expected = matrix(l).map(<[f32]>::len);
            let found = k.as_ref().map(Vec::len);
            if expected != found {
                return Err(Error::ShapeMismatch {
                    layer: i,
                    expected: vec![expected.unwrap_or(0)],
                    found: vec![found.unwrap_or(0)],
                });
            }
        }
        Ok(())
    }

    /// The flags of layer `i` (`None` for layers without weights).
    pub fn layer(&self, i: usize) -> Option<&[bool]> {
        self.keep.get(i).and_then(|k| k.as_deref())
    }

    /// Mutable flags of layer `i`.
    pub fn layer_mut(&mut self, i: usize) -> Option<&mut [bool]> {
        self.keep.get_mut(i).and_then(|k| k.as_deref_mut())
    }

    /// All flags, per layer.
    pub fn layers(&self) -> &[Option<Vec<bool>>] {
        &self.keep
    }

    /// Number of kept weights.
    pub fn kept(&self) -> usize {
        self.keep.iter().flatten().flatten().filter(|k| **k).count()
    }

    /// Number of weights described.
    pub fn total(&self) -> usize {
        self.keep.iter().flatten().map(Vec::len).sum()
    }

    /// Sets every unselected weight of `net` to exactly 0.0.
    pub fn apply_assign(&self, net: &mut Network) -> Result<()> {
        self.check(net)?;
        for (k, l) in self.keep.iter().zip(net.layers.iter_mut()) {
            if let (Some(k), Some(w)) = (k, super::blocks::matrix_mut(l)) {
                for (w, k) in w.iter_mut().zip(k) {
                    if !k {
                        *w = 0.0;
                    }
                }
            }
        }
        Ok(())
    }

    /// Keeps a weight if either selection keeps it.
    pub fn union(&self, other: &Selection) -> Result<Selection> {
        if self.keep.len() != other.keep.len() {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: vec![self.keep.len()],
                found: vec![other.keep.len()],
            });
        }
        let mut keep = self.keep.clone();
        for (i, (a, b)) in keep.iter_mut().zip(&other.keep).enumerate() {
            match (a, b) {
                (Some(a), Some(b)) if a.len() == b.len() => {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x |= *y;
                    }
                }
                (None, None) => {}
                (a, b) => {
                    return Err(Error::ShapeMismatch {
                        layer: i,
                        expected: vec![a.as_ref().map(Vec::len).unwrap_or(0)],
                        found: vec![b.as_ref().map(Vec::len).unwrap_or(0)],
                    });
                }
            }
        }
        Ok(Selection { keep })
    }
}

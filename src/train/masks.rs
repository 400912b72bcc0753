//! Weight masks: per layer a keep/prune flag for every weight of a dense or
//! convolution layer. The trainer keeps pruned weights exactly `0.0`
//! through forward passes, gradients and optimiser updates.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::model::{Layer, Network};

/// Per-layer weight masks (`true` = keep, `false` = pruned, pinned to 0.0).
/// A layer without a mask is dense. Masks cover weights only, not biases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Masks {
    layers: BTreeMap<usize, Vec<bool>>,
}

fn weights_mut(layer: &mut Layer) -> Option<&mut [f32]> {
    match layer {
        Layer::Dense(d) => Some(d.weight.data_mut()),
        Layer::Conv2d(c) => Some(c.weight.data_mut()),
        _ => None,
    }
}

fn weights(layer: &Layer) -> Option<&[f32]> {
    match layer {
        Layer::Dense(d) => Some(d.weight.data()),
        Layer::Conv2d(c) => Some(c.weight.data()),
        _ => None,
    }
}

impl Masks {
    /// No masks (every weight trainable).
    pub fn new() -> Masks {
        Masks::default()
    }

    /// Masks that keep exactly the non-zero weights of `net` (for every
    /// dense and convolution layer).
    pub fn from_nonzero(net: &Network) -> Masks {
        Masks {
            layers: net
                .layers
                .iter()
                .enumerate()
                .filter_map(|(i, l)| weights(l).map(|w| (i, w.iter().map(|v| *v != 0.0).collect())))
                .collect(),
        }
    }

    /// Sets the mask of layer `layer` (one flag per weight, row-major like
    /// the weight tensor). Checked against the network when training starts
    /// and in [`Masks::apply_assign`].
    pub fn set(&mut self, layer: usize, mask: Vec<bool>) {
        self.layers.insert(layer, mask);
    }

    /// Removes the mask of a layer (all its weights trainable again).
    pub fn clear(&mut self, layer: usize) {
        self.layers.remove(&layer);
    }

    /// The mask of a layer, if any.
    pub fn get(&self, layer: usize) -> Option<&[bool]> {
        self.layers.get(&layer).map(Vec::as_slice)
    }

    /// The masked layers' indices with their masks, in layer order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[bool])> + '_ {
        self.layers.iter().map(|(i, m)| (*i, m.as_slice()))
    }

    /// Whether no layer has a mask.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Number of pruned (masked-out) weights.
    pub fn pruned(&self) -> usize {
        self.layers
            .values()
            .map(|m| m.iter().filter(|k| !**k).count())
            .sum()
    }

    /// Checks that every mask belongs to a dense/conv layer of `net` and has
    /// one flag per weight.
    pub fn check(&self, net: &Network) -> Result<()> {
        for (&i, m) in &self.layers {
            match net.layers.get(i).and_then(weights) {
                Some(w) if w.len() == m.len() => {}
                Some(w) => {
                    return Err(Error::ShapeMismatch {
                        layer: i,
                        expected: vec![w.len()],
                        found: vec![m.len()],
                    });
                }
                None => {
                    return Err(Error::UnsupportedLayer {
                        layer: i,
                        kind: net.layers.get(i).map_or("missing", Layer::kind),
                        by: "weight masks",
                    });
                }
            }
        }
        Ok(())
    }

    /// Sets every masked-out weight of `net` to exactly `0.0`.
    pub fn apply_assign(&self, net: &mut Network) -> Result<()> {
        self.check(net)?;
        for (&i, m) in &self.layers {
            if let Some(w) = net.layers.get_mut(i).and_then(weights_mut) {
                zero_masked(w, m);
            }
        }
        Ok(())
    }
}

/// Sets `v[i] = 0.0` wherever `mask[i]` is false.
pub(crate) fn zero_masked(v: &mut [f32], mask: &[bool]) {
    v.iter_mut().zip(mask).for_each(|(x, k)| {
        if !*k {
            *x = 0.0;
        }
    });
}

//! Helpers over the training engine's weight masks ([`Masks`]): the
//! outcome of scoring (which weights stay) is a mask, and fine-tuning keeps
//! the masked-out weights exactly 0.0.

use super::blocks::matrix;
use crate::error::{Error, Result};
use crate::model::Network;
use crate::train::Masks;

/// A mask keeping every weight of every dense/convolution layer of `net`
/// (explicit per-layer flags, ready to be edited).
pub fn keep_all(net: &Network) -> Masks {
    let mut m = Masks::new();
    for (i, l) in net.layers.iter().enumerate() {
        if let Some(w) = matrix(l) {
            m.set(i, vec![true; w.len()]);
        }
    }
    m
}

/// Number of weights `masks` keeps in the dense/convolution layers of
/// `net` (a layer without a mask keeps all of its weights).
pub fn kept(masks: &Masks, net: &Network) -> usize {
    net.layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let w = matrix(l)?;
            Some(match masks.get(i) {
                Some(m) => m.iter().filter(|k| **k).count(),
                None => w.len(),
            })
        })
        .sum()
}

/// Clears flags of layer `i` at the given weight indices (the layer gets an
/// explicit mask if it had none).
pub(crate) fn drop_weights(
    masks: &mut Masks,
    net: &Network,
    i: usize,
    idx: impl Iterator<Item = usize>,
) {
    let Some(w) = net.layers.get(i).and_then(matrix) else {
        return;
    };
    let mut m = masks
        .get(i)
        .map(<[bool]>::to_vec)
        .unwrap_or_else(|| vec![true; w.len()]);
    for j in idx {
        if let Some(k) = m.get_mut(j) {
            *k = false;
        }
    }
    masks.set(i, m);
}

/// A mask keeping a weight if either mask keeps it.
pub fn union(a: &Masks, b: &Masks, net: &Network) -> Result<Masks> {
    a.check(net)?;
    b.check(net)?;
    let mut out = Masks::new();
    for (i, l) in net.layers.iter().enumerate() {
        let Some(w) = matrix(l) else { continue };
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => out.set(i, x.iter().zip(y).map(|(p, q)| *p || *q).collect()),
            _ => out.set(i, vec![true; w.len()]),
        }
    }
    Ok(out)
}

/// Errors unless every dense/convolution layer of `net` has a mask.
pub fn check_complete(masks: &Masks, net: &Network) -> Result<()> {
    masks.check(net)?;
    for (i, l) in net.layers.iter().enumerate() {
        if matrix(l).is_some() && masks.get(i).is_none() {
            return Err(Error::ShapeMismatch {
                layer: i,
                expected: vec![matrix(l).map(<[f32]>::len).unwrap_or(0)],
                found: vec![0],
            });
        }
    }
    Ok(())
}

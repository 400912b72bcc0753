//! A Keras `Rescaling` or `Normalization` layer at the input.
//!
//! tf2onnx writes `Rescaling(scale, offset)` as `Mul` (and `Add`) by
//! constants on the data input, and `Normalization` as `Sub` and `Div` (or
//! `Mul`). The IR has no such layer. The importer takes these nodes out of
//! the network and records the affine map `x -> x * scale + offset` they
//! compute as an input [`Normalizer`] (`(x - mean) / std` with
//! `std = 1 / scale`, `mean = -offset / scale`) in the import report
//! ([`ImportNote::InputNormalizer`]): the client applies it to each raw
//! sample before encryption. That costs no HE operation, and it stays
//! exact where folding it into a zero-padded first convolution would not
//! (the padding would see `offset` instead of zero).

use super::graph::Importer;
use super::state::{Const, InputAffine};
use crate::data::{NormalizeOver, Normalizer};
use crate::error::Result;
use crate::import::report::ImportNote;

/// Why a node on the data input is not an input scaling.
const NOT_PER_CHANNEL: &str = "Mul/Add/Sub/Div of the data input by a constant is imported as an \
     input normaliser only when the constant is a scalar or runs along the channel (or feature) \
     axis; normalise on the client instead (mofhei::data::Normalizer)";

impl<'g, 'r> Importer<'g, 'r> {
    /// Whether the data is still the input as the network will take it: no
    /// layer yet, nothing pending. Constant `Mul`/`Add`/`Sub`/`Div` here are
    /// an input scaling.
    pub(super) fn before_first_layer(&self) -> bool {
        self.layers.is_empty()
            && self.pending_pad.is_none()
            && self.nhwc.is_none()
            && self.shape == self.input_shape
    }

    /// Takes node `index` (`op` of the data and the constant in input slot
    /// `const_slot`) into the input scaling.
    pub(super) fn input_scaling(
        &mut self,
        index: usize,
        op: &str,
        const_slot: usize,
    ) -> Result<()> {
        let (node, bad) = self.node_at(index);
        let c = self.required_const(
            index,
            const_slot,
            "an arithmetic node on the data input needs a constant operand",
        )?;
        let Const::F32 { dims, data } = &c else {
            return Err(bad("input scaling by an integer constant is not supported"));
        };
        let axis = broadcast_axis(dims, &self.shape).ok_or_else(|| bad(NOT_PER_CHANNEL))?;
        let affine = self.input_affine.get_or_insert_with(|| InputAffine {
            axis: None,
            scale: vec![1.0],
            offset: vec![0.0],
            first: index,
            ops: Vec::new(),
            nodes: Vec::new(),
        });
        if let Some(a) = axis {
            match affine.axis {
                Some(b) if b != a => {
                    return Err(bad(
                        "input scalings along two different axes are not supported",
                    ));
                }
                _ => {
                    affine.axis = Some(a);
                    widen(&mut affine.scale, data.len());
                    widen(&mut affine.offset, data.len());
                }
            }
        }
        let at = |i: usize| data[if data.len() == 1 { 0 } else { i }];
        for (i, (s, o)) in affine.scale.iter_mut().zip(&mut affine.offset).enumerate() {
            let v = at(i);
            match op {
                "Mul" => (*s, *o) = (*s * v, *o * v),
                "Div" if v != 0.0 => (*s, *o) = (*s / v, *o / v),
                "Div" => return Err(bad("division of the data input by zero")),
                "Add" => *o += v,
                _ => *o -= v,
            }
        }
        affine.ops.push(op.to_string());
        affine.nodes.push(super::graph::node_label(node, index));
        Ok(())
    }

    /// The input, seen as `[H, W, C]` so far, is now `[C, H, W]` (an NHWC
    /// input absorbed): the scaling's axis moves with it.
    pub(super) fn input_now_chw(&mut self) {
        if let Some(InputAffine { axis: Some(a), .. }) = &mut self.input_affine {
            *a = (*a + 1) % 3;
        }
    }

    /// The import note for the input scaling taken, if any, on the
    /// network's final input shape.
    pub(super) fn input_normalizer_note(&mut self) -> Result<Option<ImportNote>> {
        let Some(affine) = self.input_affine.take() else {
            return Ok(None);
        };
        let bad = |problem| self.node_error(affine.first, problem);
        let over = match (self.input_shape.len(), affine.axis) {
            (1, _) => NormalizeOver::Feature,
            (3, None | Some(0)) => NormalizeOver::Channel,
            _ => {
                return Err(bad(
                    "input scaling along a spatial axis is not supported; normalise on the client",
                ));
            }
        };
        let mut mean = Vec::with_capacity(affine.scale.len());
        let mut std = Vec::with_capacity(affine.scale.len());
        for (&s, &o) in affine.scale.iter().zip(&affine.offset) {
            let (m, d) = (-o / s, 1.0 / s);
            if !(s > 0.0 && m.is_finite() && d.is_finite()) {
                return Err(bad(
                    "input scaling by a negative, zero or extreme factor is not supported \
                     (a normaliser needs a positive finite std); normalise on the client",
                ));
            }
            mean.push(m);
            std.push(d);
        }
        let normalizer = Normalizer::new(over, &self.input_shape, &mean, &std).map_err(|_| {
            bad("the input scaling does not fit the network's input shape; normalise on the client")
        })?;
        Ok(Some(ImportNote::InputNormalizer {
            ops: affine.ops,
            nodes: affine.nodes,
            normalizer,
        }))
    }
}

/// `v` (one value) repeated `n` times; left alone when already `n` long.
fn widen(v: &mut Vec<f32>, n: usize) {
    if v.len() == 1 && n != 1 {
        *v = vec![v[0]; n];
    }
}

/// The axis of the per-sample `shape` a constant of `dims` runs along
/// (ONNX broadcasting, aligned at the right, batch first): `Some(None)`
/// for a scalar, `Some(Some(axis))` when one dimension is not 1 and equals
/// `shape[axis]`, `None` when it does not broadcast that way (several
/// axes, or it would enlarge the data).
fn broadcast_axis(dims: &[usize], shape: &[usize]) -> Option<Option<usize>> {
    let rank = shape.len() + 1;
    let skip = rank.checked_sub(dims.len())?;
    let mut axis = None;
    for (k, &d) in dims.iter().enumerate() {
        let full_axis = skip + k;
        if d == 1 {
            continue;
        }
        let sample_axis = full_axis.checked_sub(1)?;
        if axis.is_some() || shape.get(sample_axis) != Some(&d) {
            return None;
        }
        axis = Some(sample_axis);
    }
    Some(axis)
}

#[cfg(test)]
mod tests {
    use super::broadcast_axis;

    #[test]
    fn constants_broadcast_along_one_axis() {
        assert_eq!(broadcast_axis(&[], &[28, 28, 1]), Some(None));
        assert_eq!(broadcast_axis(&[1, 1, 1, 1], &[28, 28, 1]), Some(None));
        assert_eq!(broadcast_axis(&[3], &[28, 28, 3]), Some(Some(2)));
        assert_eq!(broadcast_axis(&[1, 3, 1, 1], &[3, 28, 28]), Some(Some(0)));
        assert_eq!(broadcast_axis(&[3, 1, 1], &[3, 28, 28]), Some(Some(0)));
        assert_eq!(broadcast_axis(&[1, 10], &[10]), Some(Some(0)));
        // Several axes, a batch axis, an enlarging or too long constant.
        assert_eq!(broadcast_axis(&[28, 3], &[28, 28, 3]), None);
        assert_eq!(broadcast_axis(&[2, 1, 1, 1], &[28, 28, 3]), None);
        assert_eq!(broadcast_axis(&[4], &[28, 28, 3]), None);
        assert_eq!(broadcast_axis(&[1, 1, 1, 1, 1], &[28, 28, 3]), None);
    }
}

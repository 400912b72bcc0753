//! `AveragePool` and `MaxPool`.

use super::super::attributes::{attr_int, attr_ints, dim};
use super::super::graph::Importer;
use crate::error::{Error, Result};
use crate::model::{Layer, Pool2d};

impl<'g, 'r> Importer<'g, 'r> {
    pub(super) fn pool(&mut self, index: usize, max: bool) -> Result<()> {
        let (node, bad) = self.node_at(index);
        let kernel = match attr_ints(node, "kernel_shape").map_err(bad)? {
            Some(&[kh, kw]) => (
                dim(kh).ok_or_else(|| bad("kernel_shape out of range"))?,
                dim(kw).ok_or_else(|| bad("kernel_shape out of range"))?,
            ),
            _ => return Err(bad("kernel_shape must name two dimensions")),
        };
        if attr_ints(node, "dilations")
            .map_err(bad)?
            .is_some_and(|d| d.iter().any(|&v| v != 1))
        {
            return Err(bad(
                "dilations other than 1 are not supported: retrain without dilation",
            ));
        }
        let [_, h, w] = self.shape[..] else {
            return Err(Error::ShapeMismatch {
                layer: self.layers.len(),
                expected: vec![0, 0, 0],
                found: self.shape.clone(),
            });
        };
        let stride = self.strides(index)?;
        let (ph, pw) = self.padding(index, (h, w), kernel, stride)?;
        let include_pad = attr_int(node, "count_include_pad")
            .map_err(bad)?
            .unwrap_or(0)
            != 0;
        if !max && !include_pad && (ph, pw) != (0, 0) {
            return Err(bad(
                "count_include_pad = 0 with padding: the IR's average pooling counts the padding",
            ));
        }
        let extra = match self.pending_pad.take() {
            Some(_) if max => {
                return Err(bad(
                    "a zero Pad before MaxPool cannot be folded (MaxPool pads with -inf)",
                ));
            }
            Some((_, p)) => p,
            None => (0, 0),
        };
        let padding = (ph + extra.0, pw + extra.1);
        if attr_int(node, "ceil_mode").map_err(bad)?.unwrap_or(0) != 0 {
            let exact = |n: usize, k: usize, s: usize, p: usize| {
                (n + 2 * p).checked_sub(k).is_some_and(|r| r % s == 0)
            };
            if !exact(h, kernel.0, stride.0, padding.0) || !exact(w, kernel.1, stride.1, padding.1)
            {
                return Err(bad(
                    "ceil_mode = 1 changes the output size here; the IR rounds down",
                ));
            }
        }
        let pool = Pool2d {
            kernel,
            stride,
            padding,
        };
        self.push(if max {
            Layer::MaxPool2d(pool)
        } else {
            Layer::AvgPool2d(pool)
        })
    }
}

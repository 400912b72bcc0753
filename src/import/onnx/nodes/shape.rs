//! `Reshape` and `Squeeze`: flattening, or nothing.

use super::super::attributes::{attr_int, attr_ints};
use super::super::graph::Importer;
use crate::error::Result;
use crate::import::report::NhwcFold;
use crate::model::Layer;

impl<'g, 'r> Importer<'g, 'r> {
    pub(super) fn reshape(&mut self, index: usize, cur: &str) -> Result<()> {
        let (node, bad) = self.node_at(index);
        let target = self.required_const(
            index,
            1,
            "Reshape needs a shape computable without data values",
        )?;
        let Some(t) = target.ints() else {
            return Err(bad("Reshape's shape must be an integer tensor"));
        };
        let allow_zero = attr_int(node, "allowzero").map_err(bad)?.unwrap_or(0) != 0;
        let per_sample: Vec<i64> = self.shape.iter().map(|&d| d as i64).collect();
        let features: i64 = per_sample.iter().product();
        let batch = self.batch;
        let batch_ok = move |v: i64| v == batch || (v == 0 && !allow_zero);
        let flat = match *t {
            [b, f] => (batch_ok(b) && (f == features || f == -1)) || (b == -1 && f == features),
            _ => false,
        };
        let same = t.len() == per_sample.len() + 1
            && (batch_ok(t[0]) || t[0] == -1)
            && t[1..]
                .iter()
                .zip(&per_sample)
                .all(|(&a, &b)| a == b || (a == 0 && !allow_zero));
        if flat && self.flatten_nhwc_input(index, cur)? {
            return Ok(());
        }
        if let (&[h, w, 1], [b, 1, th, tw]) = (self.shape.as_slice(), t)
            && (batch_ok(*b) || *b == -1)
            && (*th, *tw) == (h as i64, w as i64)
            && self.at_input(cur)
        {
            // tf2onnx's NHWC -> NCHW for one channel: the same pixel order.
            self.input_to_chw([h, w, 1], NhwcFold::Reshape);
            return Ok(());
        }
        if flat {
            if self.shape.len() != 1 {
                self.push(Layer::Flatten)?;
            }
            if let Some(t) = &mut self.nhwc {
                t.flat = true;
            }
            Ok(())
        } else if same && self.nhwc.is_none() {
            Ok(())
        } else {
            Err(bad(
                "Reshape other than to [N, features] (or [N, H, W, 1] -> [N, 1, H, W] at the input) is not supported",
            ))
        }
    }

    /// `Squeeze` of the two trailing unit dimensions of `[N, C, 1, 1]`
    /// (after a global pool): a Flatten.
    pub(super) fn squeeze(&mut self, index: usize) -> Result<()> {
        let (node, bad) = self.node_at(index);
        let axes = match self.const_input(index, 1)? {
            Some(c) => c.ints().map(<[i64]>::to_vec),
            None => attr_ints(node, "axes").map_err(bad)?.map(<[i64]>::to_vec),
        };
        let mut axes: Vec<i64> = axes
            .ok_or_else(|| bad("Squeeze without axes is not supported (it could drop the batch): give axes [2, 3], or flatten(1)"))?
            .iter()
            .map(|&a| if a < 0 { a + 4 } else { a })
            .collect();
        axes.sort_unstable();
        if self.nhwc.is_none() && matches!(self.shape[..], [_, 1, 1]) && axes == [2, 3] {
            self.push(Layer::Flatten)
        } else {
            Err(bad(
                "Squeeze other than [N, C, 1, 1] -> [N, C] is not supported",
            ))
        }
    }
}

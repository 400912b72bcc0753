//! The channels-last idioms tf2onnx writes for Keras models: an NHWC input
//! transposed (or, with one channel, reshaped) to NCHW, a Keras `Flatten`
//! of the input, and a `Transpose` to NHWC before `Flatten` + `Dense`,
//! folded into the dense layer's columns.

use super::attributes::attr_ints;
use super::graph::Importer;
use super::state::Nhwc;
use crate::error::Result;
use crate::import::report::{ImportNote, NhwcFold};
use crate::model::Layer;

impl<'g, 'r> Importer<'g, 'r> {
    /// Whether `cur` is the untouched data input.
    pub(super) fn at_input(&self, cur: &str) -> bool {
        cur == self.input_name
            && self.layers.is_empty()
            && self.pending_pad.is_none()
            && self.nhwc.is_none()
            && self.shape == self.input_shape
    }

    /// The data input, `[H, W, C]` so far, is taken as `[C, H, W]` from now
    /// on (the network's input); the report says `how`.
    pub(super) fn input_to_chw(&mut self, [h, w, c]: [usize; 3], how: NhwcFold) {
        self.shape = vec![c, h, w];
        self.input_shape = self.shape.clone();
        self.input_now_chw();
        self.notes.push(ImportNote::NhwcInput {
            hwc: [h, w, c],
            how,
        });
    }

    /// A Flatten (or Reshape to flat) of an NHWC data input, as a Keras
    /// MLP on images starts: the network takes `[C, H, W]` and the next
    /// dense layer's columns are put in that order. `Ok(false)` when the
    /// input is not NHWC or this is not the input.
    pub(super) fn flatten_nhwc_input(&mut self, index: usize, cur: &str) -> Result<bool> {
        let &[h, w, c] = self.shape.as_slice() else {
            return Ok(false);
        };
        if !self.nhwc_input || !self.at_input(cur) {
            return Ok(false);
        }
        self.input_to_chw([h, w, c], NhwcFold::Flatten);
        self.push(Layer::Flatten)?;
        self.nhwc = Some(Nhwc {
            node: index,
            chw: (c, h, w),
            flat: true,
        });
        Ok(true)
    }

    /// `Transpose`: NHWC -> NCHW right at the data input is absorbed (the
    /// network then takes NCHW input); NCHW -> NHWC before a Flatten is
    /// folded into the next Dense layer; the identity permutation is a no-op.
    pub(super) fn transpose(&mut self, index: usize, cur: &str) -> Result<()> {
        let (node, bad) = self.node_at(index);
        let rank = self.shape.len() + 1;
        let perm = attr_ints(node, "perm").map_err(bad)?;
        let perm: Vec<i64> = match perm {
            Some(p) => p.to_vec(),
            None => (0..rank as i64).rev().collect(),
        };
        if perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
            return Ok(());
        }
        match (perm.as_slice(), self.shape.as_slice()) {
            ([0, 3, 1, 2], &[h, w, c])
                if cur == self.input_name
                    && self.layers.is_empty()
                    && self.pending_pad.is_none() =>
            {
                self.input_to_chw([h, w, c], NhwcFold::Transpose);
                Ok(())
            }
            ([0, 2, 3, 1], &[c, h, w]) if self.pending_pad.is_none() => {
                self.nhwc = Some(Nhwc {
                    node: index,
                    chw: (c, h, w),
                    flat: false,
                });
                Ok(())
            }
            _ => Err(bad(
                "Transpose other than NHWC->NCHW at the input or NCHW->NHWC before Flatten is not supported",
            )),
        }
    }

    /// A Dense weight `[out, inp]` whose columns are in NHWC order (after a
    /// folded Transpose) with its columns put in the IR's NCHW order.
    pub(super) fn columns_from_nhwc(
        &mut self,
        weight: Vec<f32>,
        out: usize,
        inp: usize,
    ) -> Vec<f32> {
        let Some(Nhwc {
            chw: (c, h, w),
            flat: true,
            ..
        }) = self.nhwc
        else {
            return weight;
        };
        self.nhwc = None;
        if c * h * w != inp || weight.len() != out * inp {
            // The shape check in `push` reports the mismatch.
            return weight;
        }
        let mut permuted = vec![0.0; weight.len()];
        for o in 0..out {
            let row = &weight[o * inp..(o + 1) * inp];
            let dst = &mut permuted[o * inp..(o + 1) * inp];
            for ci in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        dst[(ci * h + y) * w + x] = row[(y * w + x) * c + ci];
                    }
                }
            }
        }
        permuted
    }
}

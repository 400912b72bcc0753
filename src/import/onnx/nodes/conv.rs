//! `Conv`, and a zero `Pad` waiting to be folded into the next Conv or
//! AveragePool.

use super::super::attributes::{attr_int, attr_ints, attr_string, pad_dim};
use super::super::graph::Importer;
use super::super::state::Const;
use crate::error::{Error, Result};
use crate::model::{Conv2d, Layer, Tensor};

impl<'g, 'r> Importer<'g, 'r> {
    pub(super) fn conv(&mut self, index: usize) -> Result<()> {
        let (node, bad) = self.node_at(index);
        if attr_int(node, "group").map_err(bad)?.unwrap_or(1) != 1 {
            return Err(bad(
                "group != 1 (grouped or depthwise convolution) is not supported: use a full convolution (groups = 1) before export",
            ));
        }
        if attr_ints(node, "dilations")
            .map_err(bad)?
            .is_some_and(|d| d.iter().any(|&v| v != 1))
        {
            return Err(bad(
                "dilations other than 1 are not supported: retrain without dilation",
            ));
        }
        let w = self.required_const(index, 1, "Conv needs constant weights")?;
        let (Const::F32 { data, .. }, &[o, i, kh, kw]) = (&w, w.dims()) else {
            return Err(bad("Conv weights must be a 4-d float tensor (OIHW)"));
        };
        if let Some(ks) = attr_ints(node, "kernel_shape").map_err(bad)?
            && ks != [kh as i64, kw as i64]
        {
            return Err(bad("kernel_shape disagrees with the weights"));
        }
        let [_, h, wd] = self.shape[..] else {
            return Err(Error::ShapeMismatch {
                layer: self.layers.len(),
                expected: vec![i, 0, 0],
                found: self.shape.clone(),
            });
        };
        let stride = self.strides(index)?;
        let (ph, pw) = self.padding(index, (h, wd), (kh, kw), stride)?;
        let (eh, ew) = self.pending_pad.take().map(|(_, p)| p).unwrap_or((0, 0));
        let bias = match self.const_input(index, 2)? {
            None => vec![0.0; o],
            Some(c) if c.len() == o => c.to_f32(),
            Some(_) => return Err(bad("Conv bias length differs from the output channels")),
        };
        self.push(Layer::Conv2d(Conv2d {
            weight: Tensor::new(vec![o, i, kh, kw], data.clone())?,
            bias,
            stride,
            padding: (ph + eh, pw + ew),
        }))
    }

    pub(super) fn pad(&mut self, index: usize) -> Result<()> {
        let (node, bad) = self.node_at(index);
        let mode = attr_string(node, "mode")
            .map_err(bad)?
            .unwrap_or(b"constant");
        if mode != b"constant" {
            return Err(bad("only constant (zero) padding is supported"));
        }
        let pads = match self.const_input(index, 1)? {
            Some(c) => c
                .ints()
                .ok_or_else(|| bad("pads must be integers"))?
                .to_vec(),
            None => attr_ints(node, "pads")
                .map_err(bad)?
                .ok_or_else(|| bad("Pad needs pads"))?
                .to_vec(),
        };
        if let Some(v) = self.const_input(index, 2)?
            && v.to_f32().iter().any(|&x| x != 0.0)
        {
            return Err(bad("only zero padding is supported"));
        }
        let rank = self.shape.len() + 1;
        let pads = match self.const_input(index, 3)? {
            None => pads,
            Some(axes) => {
                let axes = axes.ints().ok_or_else(|| bad("axes must be integers"))?;
                if pads.len() != 2 * axes.len() {
                    return Err(bad("pads and axes disagree"));
                }
                let mut full = vec![0i64; 2 * rank];
                for (k, &a) in axes.iter().enumerate() {
                    let a = if a < 0 { a + rank as i64 } else { a };
                    let a = usize::try_from(a)
                        .ok()
                        .filter(|&a| a < rank)
                        .ok_or_else(|| bad("axis out of range"))?;
                    full[a] = pads[k];
                    full[a + rank] = pads[k + axes.len()];
                }
                full
            }
        };
        if rank != 4 || pads.len() != 8 {
            return Err(bad("Pad is supported on [N, C, H, W] data only"));
        }
        if pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0 {
            return Err(bad(
                "padding of the batch or channel dimension is not supported",
            ));
        }
        if pads[2] != pads[6] || pads[3] != pads[7] {
            return Err(bad("asymmetric padding is not supported"));
        }
        let (Some(ph), Some(pw)) = (pad_dim(pads[2]), pad_dim(pads[3])) else {
            return Err(bad(
                "pads out of range (negative pads crop, which is not supported)",
            ));
        };
        let (oh, ow) = self.pending_pad.map(|(_, p)| p).unwrap_or((0, 0));
        self.pending_pad = Some((index, (ph + oh, pw + ow)));
        Ok(())
    }
}

//! `Gemm`, `MatMul` and a constant `Add`/`Sub` folded into the bias.

use super::super::attributes::{attr_float, attr_int};
use super::super::graph::Importer;
use super::super::state::Const;
use crate::error::{Error, Result};
use crate::model::{Dense, Layer, Tensor};

impl<'g, 'r> Importer<'g, 'r> {
    /// The current shape must be flat (`[features]`).
    pub(super) fn require_flat(&self) -> Result<usize> {
        match self.shape[..] {
            [f] => Ok(f),
            _ => Err(Error::ShapeMismatch {
                layer: self.layers.len(),
                expected: vec![self.shape.iter().product()],
                found: self.shape.clone(),
            }),
        }
    }

    pub(super) fn gemm(&mut self, index: usize) -> Result<()> {
        let (node, bad) = self.node_at(index);
        let alpha = attr_float(node, "alpha").map_err(bad)?.unwrap_or(1.0);
        let beta = attr_float(node, "beta").map_err(bad)?.unwrap_or(1.0);
        if attr_int(node, "transA").map_err(bad)?.unwrap_or(0) != 0 {
            return Err(bad(
                "transA = 1 (a transposed data matrix) is not supported: export with the data as the untransposed first operand",
            ));
        }
        let trans_b = attr_int(node, "transB").map_err(bad)?.unwrap_or(0) != 0;
        self.require_flat()?;
        let b = self.required_const(index, 1, "Gemm needs a constant B (weights)")?;
        let (Const::F32 { dims, data }, [d0, d1]) = (&b, b.dims()) else {
            return Err(bad("B must be a 2-d float tensor"));
        };
        let _ = dims;
        let (out, inp) = if trans_b { (*d0, *d1) } else { (*d1, *d0) };
        let weight = if trans_b {
            data.iter().map(|&v| alpha * v).collect()
        } else {
            transpose(data, *d0, *d1, alpha)
        };
        let weight = self.columns_from_nhwc(weight, out, inp);
        let bias = match self.const_input(index, 2)? {
            None => vec![0.0; out],
            Some(c) => {
                broadcast_bias(&c, out, beta).ok_or_else(|| bad("C does not broadcast to [out]"))?
            }
        };
        self.push(Layer::Dense(Dense {
            weight: Tensor::new(vec![out, inp], weight)?,
            bias,
        }))
    }

    pub(super) fn matmul(&mut self, index: usize) -> Result<()> {
        self.require_flat()?;
        let b = self.required_const(
            index,
            1,
            "MatMul needs constant weights as its second input",
        )?;
        let (Const::F32 { data, .. }, &[inp, out]) = (&b, b.dims()) else {
            return Err(
                self.node_error(index, "MatMul weights must be a 2-d float tensor [in, out]")
            );
        };
        let weight = transpose(data, inp, out, 1.0);
        let weight = self.columns_from_nhwc(weight, out, inp);
        self.push(Layer::Dense(Dense {
            weight: Tensor::new(vec![out, inp], weight)?,
            bias: vec![0.0; out],
        }))
    }

    /// `Add`/`Sub` of a constant right after Gemm/MatMul/Conv: folded into
    /// the bias.
    pub(super) fn add_bias(
        &mut self,
        index: usize,
        const_slot: usize,
        negate: bool,
        foldable: bool,
    ) -> Result<()> {
        let c = self.required_const(
            index,
            const_slot,
            "Add/Sub of two data tensors is not supported (the graph must be a chain)",
        )?;
        if negate && const_slot == 0 {
            return Err(self.node_error(index, "constant minus data is not supported: write data minus constant, or fold the sign into the next layer"));
        }
        let sign = if negate { -1.0 } else { 1.0 };
        let err = self.node_error(
            index,
            "Add/Sub of a constant must follow Gemm, MatMul or Conv and broadcast per output",
        );
        if !foldable {
            return Err(err);
        }
        let layer_index = self.layers.len().wrapping_sub(1);
        let values = c.to_f32();
        let dims = c.dims().to_vec();
        let (bias, per_channel_ok) = match self.layers.last_mut() {
            Some(Layer::Dense(d)) => {
                let n = d.bias.len();
                let ok = values.len() == 1 || (values.len() == n && dims.last() == Some(&n));
                (&mut d.bias, ok)
            }
            Some(Layer::Conv2d(cv)) => {
                let n = cv.bias.len();
                // [C, 1, 1] or [1, C, 1, 1] (or a scalar).
                let ok = values.len() == 1
                    || (values.len() == n
                        && dims.len() >= 3
                        && dims[dims.len() - 3] == n
                        && dims[dims.len() - 2..] == [1, 1]);
                (&mut cv.bias, ok)
            }
            _ => return Err(err),
        };
        if !per_channel_ok {
            return Err(Error::ShapeMismatch {
                layer: layer_index,
                expected: vec![bias.len()],
                found: dims,
            });
        }
        let n = bias.len();
        for (i, b) in bias.iter_mut().enumerate() {
            *b += sign * values[if values.len() == 1 { 0 } else { i % n }];
        }
        self.bias_foldable = true;
        Ok(())
    }
}

/// `[rows, cols]` row-major into `[cols, rows]`, scaled.
pub(super) fn transpose(data: &[f32], rows: usize, cols: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = scale * data[r * cols + c];
        }
    }
    out
}

/// A bias broadcast to `[out]` (from `[out]`, `[1, out]` or a scalar), scaled.
pub(super) fn broadcast_bias(c: &Const, out: usize, scale: f32) -> Option<Vec<f32>> {
    let v = c.to_f32();
    let ok_dims = c.dims().iter().rev().skip(1).all(|&d| d == 1);
    match v.len() {
        1 => Some(vec![scale * v[0]; out]),
        n if n == out && ok_dims => Some(v.iter().map(|&x| scale * x).collect()),
        _ => None,
    }
}

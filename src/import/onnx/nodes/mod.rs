//! One converter per operator family; [`Importer::convert`] dispatches on
//! the node's `op_type`.

mod batch_norm;
mod conv;
mod dense;
mod pool;
mod shape;

use super::attributes::attr_int;
use super::graph::{Importer, node_label};
use super::state::NHWC_PROBLEM;
use crate::error::{Error, Result};
use crate::import::report::ImportNote;
use crate::model::{Activation, Layer, Pool2d};

impl<'g, 'r> Importer<'g, 'r> {
    /// Converts node `index`, whose data input is `cur`; returns its data output.
    pub(super) fn convert(&mut self, index: usize, cur: &'g str) -> Result<&'g str> {
        let graph = self.graph;
        let node = &graph.node[index];
        let op = node.op_type.as_deref().unwrap_or_default();
        let domain = node.domain.as_deref().unwrap_or_default();
        if !matches!(domain, "" | "ai.onnx") {
            return Err(Error::UnsupportedOperator {
                op_type: format!("{domain}.{op}"),
                node: node_label(node, index),
                hint: "an operator outside the standard ONNX domain (e.g. onnxruntime's fused \
                       ops): save the model before any onnxruntime graph optimisation",
            });
        }
        let out = node
            .output
            .first()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.node_error(index, "has no output"))?;
        // Extra outputs (Dropout mask, MaxPool indices, BatchNorm running
        // statistics) must be unused.
        if node.output.iter().skip(1).any(|o| {
            !o.is_empty() && self.consumers.contains_key(o.as_str())
                || graph.output.iter().any(|g| g.name.as_deref() == Some(o))
        }) {
            return Err(self.node_error(
                index,
                "a secondary output is used (the graph must be a chain)",
            ));
        }
        // The data input must be the first input, except for the
        // commutative Add / Mul.
        let data_slot = node.input.iter().position(|s| s == cur).unwrap_or(0);
        if data_slot != 0 && !matches!(op, "Add" | "Mul") {
            return Err(self.node_error(
                index,
                "takes the data tensor in a position other than the first",
            ));
        }
        if let Some((pad_node, _)) = self.pending_pad
            && !matches!(
                op,
                "Conv" | "AveragePool" | "MaxPool" | "Pad" | "Identity" | "Dropout"
            )
        {
            return Err(self.node_error(
                pad_node,
                "a zero Pad must be followed by Conv or AveragePool",
            ));
        }
        if let Some(t) = self.nhwc {
            let allowed = if t.flat {
                matches!(op, "Gemm" | "MatMul" | "Identity" | "Dropout")
            } else {
                matches!(op, "Flatten" | "Reshape" | "Identity" | "Dropout")
            };
            if !allowed {
                return Err(self.node_error(t.node, NHWC_PROBLEM));
            }
        }
        let foldable = std::mem::replace(&mut self.bias_foldable, false);
        let (_, bad) = self.node_at(index);
        if matches!(op, "Mul" | "Add" | "Sub" | "Div")
            && node.input.first() != node.input.get(1)
            && self.before_first_layer()
        {
            // A Keras Rescaling / Normalization: an input normaliser.
            self.input_scaling(index, op, 1 - data_slot.min(1))?;
            if cur == self.input_name {
                self.input_name = out;
            }
            return Ok(out);
        }
        match op {
            "Identity" => self.bias_foldable = foldable,
            "Dropout" => {
                if let Some(t) = self.const_input(index, 2)?
                    && t.to_f32().iter().any(|&v| v != 0.0)
                {
                    return Err(bad(
                        "training_mode is true: export in inference mode (model.eval())",
                    ));
                }
                self.bias_foldable = foldable;
            }
            "Relu" => self.push(Layer::Activation(Activation::Relu))?,
            "Tanh" => self.push(Layer::Activation(Activation::Tanh))?,
            "Sigmoid" => self.push(Layer::Activation(Activation::Sigmoid))?,
            "Mul" => {
                if node.input.len() == 2 && node.input[0] == node.input[1] {
                    self.push(Layer::Activation(Activation::Square))?;
                } else {
                    return Err(bad(
                        "Mul other than x * x (Square), or by a constant on the data input \
                         (an input scaling), is not supported: fold the factor into the \
                         neighbouring layer's weights before export",
                    ));
                }
            }
            "Pow" => {
                let e = self.required_const(index, 1, "Pow needs a constant exponent")?;
                if e.len() == 1 && e.to_f32().first() == Some(&2.0) {
                    self.push(Layer::Activation(Activation::Square))?;
                } else {
                    return Err(bad(
                        "Pow with an exponent other than 2 is not supported: use x * x, or a supported activation",
                    ));
                }
            }
            "Gemm" => self.gemm(index)?,
            "MatMul" => self.matmul(index)?,
            "Add" | "Sub" => self.add_bias(index, 1 - data_slot.min(1), op == "Sub", foldable)?,
            "Conv" => self.conv(index)?,
            "AveragePool" | "MaxPool" => self.pool(index, op == "MaxPool")?,
            "GlobalAveragePool" | "GlobalMaxPool" => {
                let [_, h, w] = self.shape[..] else {
                    return Err(Error::ShapeMismatch {
                        layer: self.layers.len(),
                        expected: vec![0, 0, 0],
                        found: self.shape.clone(),
                    });
                };
                let pool = Pool2d {
                    kernel: (h, w),
                    stride: (1, 1),
                    padding: (0, 0),
                };
                self.push(if op == "GlobalMaxPool" {
                    Layer::MaxPool2d(pool)
                } else {
                    Layer::AvgPool2d(pool)
                })?;
            }
            "BatchNormalization" => self.batch_norm(index)?,
            "Flatten" => {
                let rank = self.shape.len() as i64 + 1;
                let axis = attr_int(node, "axis").map_err(bad)?.unwrap_or(1);
                let axis = if axis < 0 { axis + rank } else { axis };
                if axis != 1 {
                    return Err(bad(
                        "Flatten with an axis other than 1 is not supported: flatten from axis 1 (x.flatten(1))",
                    ));
                }
                if self.flatten_nhwc_input(index, cur)? {
                    return Ok(out);
                }
                if self.shape.len() != 1 {
                    self.push(Layer::Flatten)?;
                }
                if let Some(t) = &mut self.nhwc {
                    t.flat = true;
                }
            }
            "Reshape" => self.reshape(index, cur)?,
            "Transpose" => self.transpose(index, cur)?,
            "Squeeze" => self.squeeze(index)?,
            "Softmax" | "LogSoftmax"
                if self.shape.len() == 1
                    && graph.output.iter().any(|o| o.name.as_deref() == Some(out))
                    && matches!(
                        attr_int(node, "axis").map_err(bad)?,
                        None | Some(1) | Some(-1)
                    ) =>
            {
                if !self.options.drop_final_softmax {
                    return Err(Error::UnsupportedOperator {
                        op_type: op.to_string(),
                        node: node_label(node, index),
                        hint: "the IR has no softmax; a final Softmax/LogSoftmax is dropped when \
                               ImportOptions::drop_final_softmax is true (the default): the \
                               network then returns logits with the same argmax",
                    });
                }
                // The logits are the output: argmax unchanged.
                self.notes.push(ImportNote::DroppedFinalSoftmax {
                    op_type: op.to_string(),
                    node: node_label(node, index),
                });
                self.bias_foldable = false;
            }
            "Pad" => self.pad(index)?,
            _ => {
                return Err(Error::UnsupportedOperator {
                    op_type: op.to_string(),
                    node: node_label(node, index),
                    hint: unsupported_hint(op),
                });
            }
        }
        Ok(out)
    }
}

/// What to do about an operator the IR does not have.
pub(super) fn unsupported_hint(op: &str) -> &'static str {
    match op {
        "Softmax" | "LogSoftmax" => {
            "Softmax/LogSoftmax is imported only as the graph's last node over the classes \
             (then dropped, see ImportOptions::drop_final_softmax); apply it after decryption"
        }
        "Clip" | "LeakyRelu" | "Elu" | "Selu" | "Gelu" | "Erf" | "HardSigmoid" | "HardSwish"
        | "Softplus" | "Mish" => {
            "an activation the IR does not have (Relu, Tanh, Sigmoid and x*x are): retrain with \
             one of those, or let mofhei::transform replace it by a polynomial"
        }
        "Concat" | "Split" | "Slice" | "Gather" => {
            "data-dependent tensor plumbing: the IR takes chain-shaped networks (see docs/import.md)"
        }
        "Div" => {
            "Div by a constant is imported only on the data input (as an input normaliser, see \
             ImportReport::input_normalizer); elsewhere fold the divisor into the neighbouring \
             layer's weights before export"
        }
        "Cast" | "QuantizeLinear" | "DequantizeLinear" => {
            "export the float32 model (no quantisation, no dtype casts on the data path)"
        }
        _ => "the IR has no such layer; docs/import.md lists the supported operators",
    }
}

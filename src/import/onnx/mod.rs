//! ONNX import: a chain-shaped ONNX graph into a [`Network`](crate::model::Network).
//!
//! Reads models as `torch.onnx.export` writes them (NCHW activations, OIHW
//! convolution weights, `Gemm` with `transB = 1`, `Flatten`) and as the Keras
//! converter `tf2onnx` writes them (`MatMul` + `Add` with `[in, out]`
//! weights, `Reshape` to `[-1, features]`, NHWC `Transpose`s around a
//! convolutional stack, which are folded away), opset 11 and newer.
//! [`from_bytes_with`] takes [`ImportOptions`] (e.g. dropping a final
//! `Softmax`).
//!
//! The graph must be a chain: one data input, one output, and every node on
//! the path between them takes the previous node's output plus constants
//! (initializers, `Constant` nodes, or shape arithmetic on the data's shape
//! such as `Shape -> Gather -> Unsqueeze -> Concat` feeding a `Reshape`).
//! Operators the IR cannot express are refused with
//! [`Error::UnsupportedOperator`](crate::Error::UnsupportedOperator); attribute values it cannot express
//! (grouped convolution, dilation, asymmetric padding, ...) with
//! [`Error::ImportNode`](crate::Error::ImportNode). Untrusted bytes never panic.
//!
//! The mapping rules are in `docs/import.md`.
//!
//! The files follow the import's jobs: `api` (the entry points and
//! [`ImportOptions`]), `graph` (the walk along the chain), `nodes` (one
//! converter per operator family), `nhwc` (the layouts tf2onnx writes),
//! `input_scaling` (a Keras `Rescaling` / `Normalization` at the input),
//! `constants` (constant folding), `tensor` (initializer decoding) and
//! `attributes` (node attributes).

mod api;
mod attributes;
mod constants;
mod graph;
mod input_scaling;
mod nhwc;
mod nodes;
mod options;
mod state;
mod tensor;
#[cfg(test)]
mod tests;

pub use api::{
    from_bytes, from_bytes_with, from_bytes_with_source, from_file, from_file_with, from_path,
};
pub use options::{DEFAULT_MAX_EXTERNAL_BYTES, ImportOptions, InputLayout, MAX_MODEL_BYTES};

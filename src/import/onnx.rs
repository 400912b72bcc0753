//! ONNX import: a chain-shaped ONNX graph into a [`Network`].
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
//! [`Error::UnsupportedOperator`]; attribute values it cannot express
//! (grouped convolution, dilation, asymmetric padding, ...) with
//! [`Error::ImportNode`]. Untrusted bytes never panic.
//!
//! The mapping rules are in `docs/import.md`.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;

use crate::error::{DecodeError, Error, Result};
use crate::import::onnx_proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, attribute_proto::AttributeType,
    tensor_proto::DataLocation, tensor_proto::DataType, tensor_shape_proto::dimension, type_proto,
};
use crate::import::{bf16_to_f32, f16_to_f32};
use crate::model::{Activation, BatchNorm, Conv2d, Dense, Layer, Network, Pool2d, Tensor};

/// Largest ONNX file [`from_bytes`] accepts (protobuf's own limit is 2 GiB).
pub const MAX_MODEL_BYTES: usize = 1 << 31;

/// Largest single dimension, kernel size, stride or padding accepted.
const MAX_DIM: i64 = 1 << 24;

/// Largest number of elements in one tensor (and in one sample).
const MAX_ELEMENTS: usize = 1 << 31;

/// Why a pending NHWC Transpose failed to fold.
const NHWC_PROBLEM: &str =
    "a Transpose to NHWC must be followed by Flatten (or Reshape to flat) and Gemm/MatMul";

/// Lowest default-domain opset read.
const MIN_OPSET: i64 = 11;

/// The value standing for a symbolic batch dimension in shape arithmetic.
const BATCH_MARKER: i64 = 1 << 40;

/// Deepest chain of constant-producing nodes followed (guards against
/// cycles and stack exhaustion on hostile graphs).
const MAX_CONST_DEPTH: usize = 64;

/// Choices for [`from_bytes_with`] / [`from_file_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Skip a `Softmax` / `LogSoftmax` over the features when it is the
    /// graph's last node (Keras classifiers end in one). The imported
    /// network then returns the logits: the predicted class (argmax) is
    /// the same, the values are not. Default `false`: refused as an
    /// unsupported operator.
    pub drop_final_softmax: bool,
    /// Limits on what one sample of the imported network may allocate
    /// (activations and convolution scratch, [`crate::Budget`]); checked
    /// after import, before the network is returned.
    pub budget: crate::Budget,
}

/// Reads an ONNX model file into a [`Network`]; see [`from_bytes`].
pub fn from_file(path: impl AsRef<Path>) -> Result<Network> {
    from_file_with(path, ImportOptions::default())
}

/// Reads an ONNX model file into a [`Network`] with `options`; see
/// [`from_bytes`].
pub fn from_file_with(path: impl AsRef<Path>, options: ImportOptions) -> Result<Network> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_bytes_with(&bytes, options)
}

/// Reads ONNX model bytes into a [`Network`].
///
/// The network's input shape is the graph input's shape without the batch
/// dimension (`[C, H, W]` or `[F]`).
///
/// # Errors
/// [`Error::Decode`] when the bytes are not an ONNX protobuf,
/// [`Error::InvalidParameter`] for opsets below 11,
/// [`Error::UnsupportedOperator`] naming the first operator the IR does not
/// have, [`Error::ImportNode`] / [`Error::ImportGraph`] for attribute
/// values or graph shapes the IR cannot express, [`Error::Weight`] for
/// unreadable initializers and [`Error::ShapeMismatch`] /
/// [`Error::InvalidLayer`] when the shapes do not chain, and
/// [`Error::BudgetExceeded`] when one sample's activations exceed the
/// budget ([`ImportOptions::budget`]).
pub fn from_bytes(bytes: &[u8]) -> Result<Network> {
    from_bytes_with(bytes, ImportOptions::default())
}

/// Reads ONNX model bytes into a [`Network`] with `options`; see
/// [`from_bytes`].
pub fn from_bytes_with(bytes: &[u8], options: ImportOptions) -> Result<Network> {
    if bytes.len() > MAX_MODEL_BYTES {
        return Err(Error::Decode {
            what: "onnx model",
            reason: DecodeError::TooLarge {
                len: bytes.len() as u64,
                limit: MAX_MODEL_BYTES as u64,
            },
        });
    }
    let model = ModelProto::decode(bytes).map_err(|_| Error::Decode {
        what: "onnx model",
        reason: DecodeError::Invalid { format: "protobuf" },
    })?;
    let net = from_model(&model, options)?;
    net.check_budget(1, false, &options.budget)?;
    Ok(net)
}

/// Converts a decoded model.
fn from_model(model: &ModelProto, options: ImportOptions) -> Result<Network> {
    let opset = model
        .opset_import
        .iter()
        .filter(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .filter_map(|o| o.version)
        .max()
        .ok_or(Error::ImportGraph {
            problem: "the model imports no default-domain (ai.onnx) opset",
        })?;
    if opset < MIN_OPSET {
        return Err(Error::InvalidParameter {
            name: "onnx opset",
            value: opset,
            allowed: "11 or newer",
        });
    }
    let graph = model.graph.as_ref().ok_or(Error::ImportGraph {
        problem: "the model has no graph",
    })?;
    let mut importer = Importer::new(graph)?;
    importer.options = options;
    importer.run()
}

/// A constant tensor: initializer, `Constant` output or folded shape value.
#[derive(Debug, Clone)]
enum Const {
    /// Floating-point values (any float type, converted to `f32`).
    F32 { dims: Vec<usize>, data: Vec<f32> },
    /// Integer values (any integer type, widened to `i64`).
    I64 { dims: Vec<usize>, data: Vec<i64> },
}

impl Const {
    fn dims(&self) -> &[usize] {
        match self {
            Const::F32 { dims, .. } | Const::I64 { dims, .. } => dims,
        }
    }

    fn len(&self) -> usize {
        match self {
            Const::F32 { data, .. } => data.len(),
            Const::I64 { data, .. } => data.len(),
        }
    }

    /// The values as `f32` (integers converted).
    fn to_f32(&self) -> Vec<f32> {
        match self {
            Const::F32 { data, .. } => data.clone(),
            Const::I64 { data, .. } => data.iter().map(|&v| v as f32).collect(),
        }
    }

    /// The values as `i64`, if they are integers.
    fn ints(&self) -> Option<&[i64]> {
        match self {
            Const::I64 { data, .. } => Some(data),
            Const::F32 { .. } => None,
        }
    }
}

/// The conversion state.
struct Importer<'g> {
    graph: &'g GraphProto,
    /// Tensor name -> index of the node producing it.
    producer: HashMap<&'g str, usize>,
    /// Tensor name -> indices of the nodes reading it.
    consumers: HashMap<&'g str, Vec<usize>>,
    /// Initializers by name.
    initializers: HashMap<&'g str, &'g TensorProto>,
    /// Constants resolved so far.
    consts: HashMap<String, Const>,
    /// Full shapes (batch first, `BATCH_MARKER` when symbolic) of the data
    /// tensors on the chain, for `Shape` nodes.
    data_shapes: HashMap<&'g str, Vec<i64>>,
    /// The batch dimension as it appears in shape arithmetic.
    batch: i64,
    /// Layers emitted so far.
    layers: Vec<Layer>,
    /// Per-sample shape after the last emitted layer.
    shape: Vec<usize>,
    /// The network's per-sample input shape.
    input_shape: Vec<usize>,
    /// A zero `Pad` waiting to be folded into the next Conv / AveragePool:
    /// `(node index, (ph, pw))`.
    pending_pad: Option<(usize, (usize, usize))>,
    /// Whether a constant `Add`/`Sub` may fold into the last layer's bias.
    bias_foldable: bool,
    /// The graph's data input.
    input_name: &'g str,
    /// A `Transpose` to NHWC waiting to be folded into the next Dense
    /// layer's columns (tf2onnx writes one before Keras's Flatten).
    nhwc: Option<Nhwc>,
    /// The caller's choices.
    options: ImportOptions,
}

/// A pending NCHW -> NHWC `Transpose` (see [`Importer::nhwc`]).
#[derive(Debug, Clone, Copy)]
struct Nhwc {
    /// The Transpose node.
    node: usize,
    /// The `[C, H, W]` shape it transposed.
    chw: (usize, usize, usize),
    /// Whether the Flatten after it has been seen.
    flat: bool,
}

/// A printable name of node `index`.
fn node_label(node: &NodeProto, index: usize) -> String {
    match node.name.as_deref() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!("#{index}"),
    }
}

/// An [`Error::ImportNode`] for node `index` of `graph`.
fn node_err(graph: &GraphProto, index: usize, problem: &'static str) -> Error {
    match graph.node.get(index) {
        Some(node) => Error::ImportNode {
            node: node_label(node, index),
            op_type: node.op_type.clone().unwrap_or_default(),
            problem,
        },
        None => Error::ImportGraph { problem },
    }
}

/// An attribute's kind as stored (falls back to what is set when the type
/// field is missing).
fn attr_kind(a: &AttributeProto) -> Option<AttributeType> {
    a.r#type.and_then(|t| AttributeType::try_from(t).ok())
}

impl<'g> Importer<'g> {
    fn new(graph: &'g GraphProto) -> Result<Self> {
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, node) in graph.node.iter().enumerate() {
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                if producer.insert(out.as_str(), i).is_some() {
                    return Err(Error::ImportNode {
                        node: node_label(node, i),
                        op_type: node.op_type.clone().unwrap_or_default(),
                        problem: "writes a tensor another node also writes",
                    });
                }
            }
            for inp in node.input.iter().filter(|s| !s.is_empty()) {
                let list = consumers.entry(inp.as_str()).or_default();
                // A node reading the same tensor twice (Mul(x, x)) counts once.
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        let initializers = graph
            .initializer
            .iter()
            .filter_map(|t| t.name.as_deref().map(|n| (n, t)))
            .collect();
        Ok(Importer {
            graph,
            producer,
            consumers,
            initializers,
            consts: HashMap::new(),
            data_shapes: HashMap::new(),
            batch: BATCH_MARKER,
            layers: Vec::new(),
            shape: Vec::new(),
            input_shape: Vec::new(),
            pending_pad: None,
            bias_foldable: false,
            input_name: "",
            nhwc: None,
            options: ImportOptions::default(),
        })
    }

    /// The single data input: its name, per-sample shape and batch value.
    fn data_input(&mut self) -> Result<&'g str> {
        let graph = self.graph;
        let mut inputs = graph.input.iter().filter(|v| {
            v.name
                .as_deref()
                .is_some_and(|n| !self.initializers.contains_key(n))
        });
        let input = inputs.next().ok_or(Error::ImportGraph {
            problem: "the graph has no data input",
        })?;
        if inputs.next().is_some() {
            return Err(Error::ImportGraph {
                problem: "the graph has more than one data input",
            });
        }
        let name = input.name.as_deref().unwrap_or_default();
        let tensor = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t,
            _ => {
                return Err(Error::ImportGraph {
                    problem: "the data input is not a tensor",
                });
            }
        };
        if tensor.elem_type != Some(DataType::Float as i32) {
            return Err(Error::ImportGraph {
                problem: "the data input is not float32",
            });
        }
        let dims = &tensor
            .shape
            .as_ref()
            .ok_or(Error::ImportGraph {
                problem: "the data input has no shape",
            })?
            .dim;
        if dims.len() != 2 && dims.len() != 4 {
            return Err(Error::ImportGraph {
                problem: "the data input must be [N, features] or [N, C, H, W]",
            });
        }
        self.batch = match dims.first().and_then(|d| d.value.as_ref()) {
            Some(dimension::Value::DimValue(b)) if *b > 0 => *b,
            _ => BATCH_MARKER,
        };
        let mut shape = Vec::with_capacity(dims.len() - 1);
        for d in &dims[1..] {
            match d.value {
                Some(dimension::Value::DimValue(v)) if v > 0 && v <= MAX_DIM => {
                    shape.push(v as usize);
                }
                _ => {
                    return Err(Error::ImportGraph {
                        problem: "the data input's dimensions after the batch must be fixed positive sizes",
                    });
                }
            }
        }
        if checked_product(&shape).is_none_or(|n| n > MAX_ELEMENTS) {
            return Err(Error::ImportGraph {
                problem: "the data input is too large",
            });
        }
        self.input_shape = shape.clone();
        self.shape = shape;
        self.input_name = name;
        self.record_shape(name);
        Ok(name)
    }

    /// Records the current full shape (with the pending padding) of data
    /// tensor `name`.
    fn record_shape(&mut self, name: &'g str) {
        let mut full = Vec::with_capacity(self.shape.len() + 1);
        full.push(self.batch);
        full.extend(self.shape.iter().map(|&d| d as i64));
        if let Some((_, (ph, pw))) = self.pending_pad
            && full.len() == 4
        {
            full[2] += 2 * ph as i64;
            full[3] += 2 * pw as i64;
        }
        if self.nhwc.is_some_and(|t| !t.flat) && full.len() == 4 {
            full[1..].rotate_left(1);
        }
        self.data_shapes.insert(name, full);
    }

    /// Walks the chain from the data input to the output.
    fn run(mut self) -> Result<Network> {
        let graph = self.graph;
        let output = match graph.output.as_slice() {
            [o] => o.name.as_deref().unwrap_or_default(),
            [] => {
                return Err(Error::ImportGraph {
                    problem: "the graph has no output",
                });
            }
            _ => {
                return Err(Error::ImportGraph {
                    problem: "the graph has more than one output",
                });
            }
        };
        let mut cur = self.data_input()?;
        // Every step consumes one node, so the walk ends within node.len() steps.
        for _ in 0..=graph.node.len() {
            if cur == output {
                if let Some((i, _)) = self.pending_pad {
                    return Err(
                        self.node_error(i, "a zero Pad must be followed by Conv or AveragePool")
                    );
                }
                if let Some(t) = self.nhwc {
                    return Err(self.node_error(t.node, NHWC_PROBLEM));
                }
                return Network::new(self.input_shape, self.layers);
            }
            let next: Vec<usize> = self
                .consumers
                .get(cur)
                .map(|v| {
                    v.iter()
                        .copied()
                        .filter(|&i| graph.node[i].op_type.as_deref() != Some("Shape"))
                        .collect()
                })
                .unwrap_or_default();
            let index = match next.as_slice() {
                [i] => *i,
                [] => {
                    return Err(Error::ImportGraph {
                        problem: "the graph output is not reached from its input",
                    });
                }
                [_, second, ..] => {
                    return Err(self.node_error(
                        *second,
                        "reads a tensor another node also reads (branches are not supported; the graph must be a chain)",
                    ));
                }
            };
            cur = self.convert(index, cur)?;
            self.record_shape(cur);
        }
        Err(Error::ImportGraph {
            problem: "the graph has a cycle",
        })
    }

    fn node_error(&self, index: usize, problem: &'static str) -> Error {
        node_err(self.graph, index, problem)
    }

    /// A constant input of node `index` (`Ok(None)` when the input is absent).
    fn const_input(&mut self, index: usize, slot: usize) -> Result<Option<Const>> {
        let node = &self.graph.node[index];
        match node.input.get(slot).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(name) => match self.resolve(name, 0)? {
                Some(c) => Ok(Some(c)),
                None => Err(self.node_error(
                    index,
                    "combines two data tensors (only constants may join the chain; the graph must be a chain)",
                )),
            },
        }
    }

    /// A required constant input.
    fn required_const(&mut self, index: usize, slot: usize, what: &'static str) -> Result<Const> {
        self.const_input(index, slot)?
            .ok_or_else(|| self.node_error(index, what))
    }

    /// Resolves `name` to a constant if it is one: an initializer, a
    /// `Constant` node, or shape arithmetic over known values. `Ok(None)`
    /// when it depends on data values.
    fn resolve(&mut self, name: &str, depth: usize) -> Result<Option<Const>> {
        if let Some(c) = self.consts.get(name) {
            return Ok(Some(c.clone()));
        }
        if depth > MAX_CONST_DEPTH {
            return Err(Error::ImportGraph {
                problem: "constant expressions nest too deeply (or form a cycle)",
            });
        }
        let value = if let Some(t) = self.initializers.get(name) {
            Some(tensor_const(t)?)
        } else if let Some(&i) = self.producer.get(name) {
            self.fold(i, depth)?
        } else {
            None
        };
        if let Some(v) = &value {
            self.consts.insert(name.to_string(), v.clone());
        }
        Ok(value)
    }

    /// Evaluates node `index` if it is constant shape arithmetic.
    fn fold(&mut self, index: usize, depth: usize) -> Result<Option<Const>> {
        let graph = self.graph;
        let node = &graph.node[index];
        let op = node.op_type.as_deref().unwrap_or_default();
        if !matches!(node.domain.as_deref(), None | Some("") | Some("ai.onnx")) {
            return Ok(None);
        }
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
        // Integer inputs of a shape-arithmetic node.
        let int_inputs = |this: &mut Self| -> Result<Option<Vec<Const>>> {
            let mut out = Vec::new();
            for name in node.input.iter() {
                if name.is_empty() {
                    continue;
                }
                match this.resolve(name, depth + 1)? {
                    Some(c) => out.push(c),
                    None => return Ok(None),
                }
            }
            Ok(Some(out))
        };
        let value = match op {
            "Constant" => Some(constant_node(node).map_err(bad)?),
            "Shape" => {
                let Some(full) = node
                    .input
                    .first()
                    .and_then(|n| self.data_shapes.get(n.as_str()))
                else {
                    return Ok(None);
                };
                let r = full.len() as i64;
                let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let start = clamp(attr_int(node, "start").map_err(bad)?.unwrap_or(0));
                let end = clamp(attr_int(node, "end").map_err(bad)?.unwrap_or(r));
                let data = full.get(start..end.max(start)).unwrap_or_default().to_vec();
                Some(Const::I64 {
                    dims: vec![data.len()],
                    data,
                })
            }
            "Identity" | "Cast" | "Unsqueeze" | "Squeeze" | "Gather" | "Concat" | "Slice" => {
                let Some(inputs) = int_inputs(self)? else {
                    return Ok(None);
                };
                Some(fold_shape_op(op, node, &inputs).map_err(bad)?)
            }
            _ => None,
        };
        Ok(value)
    }

    /// Converts node `index`, whose data input is `cur`; returns its data output.
    fn convert(&mut self, index: usize, cur: &'g str) -> Result<&'g str> {
        let graph = self.graph;
        let node = &graph.node[index];
        let op = node.op_type.as_deref().unwrap_or_default();
        let domain = node.domain.as_deref().unwrap_or_default();
        if !matches!(domain, "" | "ai.onnx") {
            return Err(Error::UnsupportedOperator {
                op_type: format!("{domain}.{op}"),
                node: node_label(node, index),
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
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
        match op {
            "Identity" => self.bias_foldable = foldable,
            "Dropout" => {
                if let Some(t) = self.const_input(index, 2)?
                    && t.to_f32().iter().any(|&v| v != 0.0)
                {
                    return Err(bad("training_mode is true"));
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
                    return Err(bad("Mul other than x * x (Square) is not supported"));
                }
            }
            "Pow" => {
                let e = self.required_const(index, 1, "Pow needs a constant exponent")?;
                if e.len() == 1 && e.to_f32().first() == Some(&2.0) {
                    self.push(Layer::Activation(Activation::Square))?;
                } else {
                    return Err(bad("Pow with an exponent other than 2 is not supported"));
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
                    return Err(bad("Flatten with an axis other than 1 is not supported"));
                }
                if self.shape.len() != 1 {
                    self.push(Layer::Flatten)?;
                }
                if let Some(t) = &mut self.nhwc {
                    t.flat = true;
                }
            }
            "Reshape" => self.reshape(index)?,
            "Transpose" => self.transpose(index, cur)?,
            "Squeeze" => self.squeeze(index)?,
            "Softmax" | "LogSoftmax"
                if self.options.drop_final_softmax
                    && self.shape.len() == 1
                    && graph.output.iter().any(|o| o.name.as_deref() == Some(out))
                    && matches!(
                        attr_int(node, "axis").map_err(bad)?,
                        None | Some(1) | Some(-1)
                    ) =>
            {
                // The logits are the output: argmax unchanged.
                self.bias_foldable = false;
            }
            "Pad" => self.pad(index)?,
            _ => {
                return Err(Error::UnsupportedOperator {
                    op_type: op.to_string(),
                    node: node_label(node, index),
                });
            }
        }
        Ok(out)
    }

    /// Appends a layer and advances the per-sample shape.
    fn push(&mut self, layer: Layer) -> Result<()> {
        let shape = layer.output_shape(self.layers.len(), &self.shape)?;
        if checked_product(&shape).is_none_or(|n| n > MAX_ELEMENTS) {
            return Err(Error::InvalidLayer {
                layer: self.layers.len(),
                what: "output size",
                value: i64::MAX,
            });
        }
        self.bias_foldable = matches!(layer, Layer::Dense(_) | Layer::Conv2d(_));
        self.layers.push(layer);
        self.shape = shape;
        Ok(())
    }

    /// The current shape must be flat (`[features]`).
    fn require_flat(&self) -> Result<usize> {
        match self.shape[..] {
            [f] => Ok(f),
            _ => Err(Error::ShapeMismatch {
                layer: self.layers.len(),
                expected: vec![self.shape.iter().product()],
                found: self.shape.clone(),
            }),
        }
    }

    fn gemm(&mut self, index: usize) -> Result<()> {
        let node = &self.graph.node[index];
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
        let alpha = attr_float(node, "alpha").map_err(bad)?.unwrap_or(1.0);
        let beta = attr_float(node, "beta").map_err(bad)?.unwrap_or(1.0);
        if attr_int(node, "transA").map_err(bad)?.unwrap_or(0) != 0 {
            return Err(bad(
                "transA = 1 (a transposed data matrix) is not supported",
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

    fn matmul(&mut self, index: usize) -> Result<()> {
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
    fn add_bias(
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
            return Err(self.node_error(index, "constant minus data is not supported"));
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

    fn conv(&mut self, index: usize) -> Result<()> {
        let node = &self.graph.node[index];
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
        if attr_int(node, "group").map_err(bad)?.unwrap_or(1) != 1 {
            return Err(bad(
                "group != 1 (grouped or depthwise convolution) is not supported",
            ));
        }
        if attr_ints(node, "dilations")
            .map_err(bad)?
            .is_some_and(|d| d.iter().any(|&v| v != 1))
        {
            return Err(bad("dilations other than 1 are not supported"));
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

    fn pool(&mut self, index: usize, max: bool) -> Result<()> {
        let node = &self.graph.node[index];
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
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
            return Err(bad("dilations other than 1 are not supported"));
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

    /// `strides` of a Conv or pool node (default 1).
    fn strides(&self, index: usize) -> Result<(usize, usize)> {
        let node = &self.graph.node[index];
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
        match attr_ints(node, "strides").map_err(bad)? {
            None => Ok((1, 1)),
            Some(&[sh, sw]) => match (dim(sh), dim(sw)) {
                (Some(a), Some(b)) => Ok((a, b)),
                _ => Err(bad("strides out of range")),
            },
            Some(_) => Err(bad("strides must name two dimensions")),
        }
    }

    /// Symmetric padding of a Conv or pool node from `auto_pad` / `pads`.
    fn padding(
        &self,
        index: usize,
        input: (usize, usize),
        kernel: (usize, usize),
        stride: (usize, usize),
    ) -> Result<(usize, usize)> {
        let node = &self.graph.node[index];
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
        let auto = attr_string(node, "auto_pad")
            .map_err(bad)?
            .unwrap_or(b"NOTSET");
        match auto {
            b"NOTSET" | b"" => match attr_ints(node, "pads").map_err(bad)? {
                None => Ok((0, 0)),
                Some(&[hb, wb, he, we]) => {
                    if hb != he || wb != we {
                        return Err(bad("asymmetric padding is not supported"));
                    }
                    match (pad_dim(hb), pad_dim(wb)) {
                        (Some(a), Some(b)) => Ok((a, b)),
                        _ => Err(bad("pads out of range")),
                    }
                }
                Some(_) => Err(bad("pads must have four entries")),
            },
            b"VALID" => Ok((0, 0)),
            b"SAME_UPPER" | b"SAME_LOWER" => {
                let same = |n: usize, k: usize, s: usize| -> Option<usize> {
                    let out = n.div_ceil(s);
                    let total = (out.saturating_sub(1) * s + k).saturating_sub(n);
                    total.is_multiple_of(2).then_some(total / 2)
                };
                match (
                    same(input.0, kernel.0, stride.0),
                    same(input.1, kernel.1, stride.1),
                ) {
                    (Some(a), Some(b)) => Ok((a, b)),
                    _ => Err(bad("SAME padding is asymmetric for this input size")),
                }
            }
            _ => Err(bad("unknown auto_pad value")),
        }
    }

    fn batch_norm(&mut self, index: usize) -> Result<()> {
        let node = &self.graph.node[index];
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
        if attr_int(node, "training_mode").map_err(bad)?.unwrap_or(0) != 0 {
            return Err(bad("training_mode = 1 is not supported"));
        }
        let eps = attr_float(node, "epsilon").map_err(bad)?.unwrap_or(1e-5);
        let momentum = attr_float(node, "momentum").map_err(bad)?.unwrap_or(0.9);
        let mut params = Vec::with_capacity(4);
        for slot in 1..=4 {
            let c = self.required_const(
                index,
                slot,
                "BatchNormalization needs constant scale, bias, mean and variance",
            )?;
            params.push(c.to_f32());
        }
        let [gamma, beta, mean, var] = <[Vec<f32>; 4]>::try_from(params)
            .map_err(|_| bad("BatchNormalization needs four parameter tensors"))?;
        self.push(Layer::BatchNorm(BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps,
            // ONNX keeps `momentum` of the old running value; the IR (as
            // PyTorch) gives the weight of the new batch statistic.
            momentum: 1.0 - momentum,
        }))
    }

    fn reshape(&mut self, index: usize) -> Result<()> {
        let node = &self.graph.node[index];
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
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
        let batch_ok = |v: i64| v == self.batch || (v == 0 && !allow_zero);
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
            Err(bad("Reshape other than to [N, features] is not supported"))
        }
    }

    /// `Transpose`: NHWC -> NCHW right at the data input is absorbed (the
    /// network then takes NCHW input); NCHW -> NHWC before a Flatten is
    /// folded into the next Dense layer; the identity permutation is a no-op.
    fn transpose(&mut self, index: usize, cur: &str) -> Result<()> {
        let node = &self.graph.node[index];
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
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
                self.shape = vec![c, h, w];
                self.input_shape = self.shape.clone();
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
    fn columns_from_nhwc(&mut self, weight: Vec<f32>, out: usize, inp: usize) -> Vec<f32> {
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

    /// `Squeeze` of the two trailing unit dimensions of `[N, C, 1, 1]`
    /// (after a global pool): a Flatten.
    fn squeeze(&mut self, index: usize) -> Result<()> {
        let node = &self.graph.node[index];
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
        let axes = match self.const_input(index, 1)? {
            Some(c) => c.ints().map(<[i64]>::to_vec),
            None => attr_ints(node, "axes").map_err(bad)?.map(<[i64]>::to_vec),
        };
        let mut axes: Vec<i64> = axes
            .ok_or_else(|| bad("Squeeze without axes is not supported (it could drop the batch)"))?
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

    fn pad(&mut self, index: usize) -> Result<()> {
        let node = &self.graph.node[index];
        let g = self.graph;
        let bad = move |problem| node_err(g, index, problem);
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

/// A dimension-like attribute value in `1..=MAX_DIM`.
fn dim(v: i64) -> Option<usize> {
    (1..=MAX_DIM).contains(&v).then_some(v as usize)
}

/// A padding value in `0..=MAX_DIM`.
fn pad_dim(v: i64) -> Option<usize> {
    (0..=MAX_DIM).contains(&v).then_some(v as usize)
}

fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// `[rows, cols]` row-major into `[cols, rows]`, scaled.
fn transpose(data: &[f32], rows: usize, cols: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = scale * data[r * cols + c];
        }
    }
    out
}

/// A bias broadcast to `[out]` (from `[out]`, `[1, out]` or a scalar), scaled.
fn broadcast_bias(c: &Const, out: usize, scale: f32) -> Option<Vec<f32>> {
    let v = c.to_f32();
    let ok_dims = c.dims().iter().rev().skip(1).all(|&d| d == 1);
    match v.len() {
        1 => Some(vec![scale * v[0]; out]),
        n if n == out && ok_dims => Some(v.iter().map(|&x| scale * x).collect()),
        _ => None,
    }
}

fn find_attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

fn attr_int(node: &NodeProto, name: &str) -> Result<Option<i64>, &'static str> {
    match find_attr(node, name) {
        None => Ok(None),
        Some(a) if a.i.is_some() || attr_kind(a) == Some(AttributeType::Int) => {
            Ok(Some(a.i.unwrap_or(0)))
        }
        Some(_) => Err("an integer attribute has another type"),
    }
}

fn attr_float(node: &NodeProto, name: &str) -> Result<Option<f32>, &'static str> {
    match find_attr(node, name) {
        None => Ok(None),
        Some(a) if a.f.is_some() || attr_kind(a) == Some(AttributeType::Float) => {
            Ok(Some(a.f.unwrap_or(0.0)))
        }
        Some(_) => Err("a float attribute has another type"),
    }
}

fn attr_ints<'a>(node: &'a NodeProto, name: &str) -> Result<Option<&'a [i64]>, &'static str> {
    match find_attr(node, name) {
        None => Ok(None),
        Some(a) if !a.ints.is_empty() || attr_kind(a) == Some(AttributeType::Ints) => {
            Ok(Some(&a.ints))
        }
        Some(_) => Err("an integer-list attribute has another type"),
    }
}

fn attr_string<'a>(node: &'a NodeProto, name: &str) -> Result<Option<&'a [u8]>, &'static str> {
    match find_attr(node, name) {
        None => Ok(None),
        Some(a) => match &a.s {
            Some(s) => Ok(Some(s)),
            None if attr_kind(a) == Some(AttributeType::String) => Ok(Some(b"")),
            None => Err("a string attribute has another type"),
        },
    }
}

/// The value of a `Constant` node.
fn constant_node(node: &NodeProto) -> Result<Const, &'static str> {
    let a = node.attribute.first().ok_or("Constant without a value")?;
    match a.name.as_deref().unwrap_or_default() {
        "value" => {
            let t = a.t.as_ref().ok_or("Constant value is not a tensor")?;
            tensor_const(t).map_err(|_| "Constant value tensor is unreadable")
        }
        "value_float" => Ok(Const::F32 {
            dims: vec![],
            data: vec![a.f.unwrap_or(0.0)],
        }),
        "value_floats" => Ok(Const::F32 {
            dims: vec![a.floats.len()],
            data: a.floats.clone(),
        }),
        "value_int" => Ok(Const::I64 {
            dims: vec![],
            data: vec![a.i.unwrap_or(0)],
        }),
        "value_ints" => Ok(Const::I64 {
            dims: vec![a.ints.len()],
            data: a.ints.clone(),
        }),
        _ => Err("Constant of this kind (sparse, string) is not supported"),
    }
}

/// Evaluates integer shape arithmetic (`Cast`, `Unsqueeze`, `Squeeze`,
/// `Gather`, `Concat`, `Slice`, `Identity`) on 0-d / 1-d constants.
fn fold_shape_op(op: &str, node: &NodeProto, inputs: &[Const]) -> Result<Const, &'static str> {
    let first = inputs.first().ok_or("missing input")?;
    let ints = |c: &Const| -> Result<Vec<i64>, &'static str> {
        match c {
            Const::I64 { data, .. } if c.dims().len() <= 1 => Ok(data.clone()),
            _ => Err("shape arithmetic on something other than 0-d/1-d integers"),
        }
    };
    let vec1 = |data: Vec<i64>| Const::I64 {
        dims: vec![data.len()],
        data,
    };
    match op {
        "Identity" => Ok(first.clone()),
        "Cast" => match first {
            Const::I64 { .. } => Ok(first.clone()),
            Const::F32 { dims, data } => Ok(Const::F32 {
                dims: dims.clone(),
                data: data.clone(),
            }),
        },
        "Unsqueeze" => {
            let v = ints(first)?;
            if first.dims().is_empty() {
                Ok(vec1(v))
            } else {
                Err("Unsqueeze of a 1-d shape value")
            }
        }
        "Squeeze" => {
            let v = ints(first)?;
            if v.len() == 1 {
                Ok(Const::I64 {
                    dims: vec![],
                    data: v,
                })
            } else {
                Err("Squeeze of a shape value with more than one element")
            }
        }
        "Gather" => {
            if attr_int(node, "axis")?.unwrap_or(0) != 0 {
                return Err("Gather on an axis other than 0 in shape arithmetic");
            }
            let data = ints(first)?;
            let idx_c = inputs.get(1).ok_or("Gather without indices")?;
            let idx = ints(idx_c)?;
            let n = data.len() as i64;
            let picked = idx
                .iter()
                .map(|&i| {
                    let i = if i < 0 { i + n } else { i };
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| data.get(i).copied())
                        .ok_or("Gather index out of range")
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if idx_c.dims().is_empty() {
                Const::I64 {
                    dims: vec![],
                    data: picked,
                }
            } else {
                vec1(picked)
            })
        }
        "Concat" => {
            let mut out = Vec::new();
            for c in inputs {
                out.extend(ints(c)?);
                if out.len() > 64 {
                    return Err("shape value too long");
                }
            }
            Ok(vec1(out))
        }
        "Slice" => {
            let data = ints(first)?;
            let get = |k: usize| -> Result<Option<i64>, &'static str> {
                match inputs.get(k) {
                    None => Ok(None),
                    Some(c) => Ok(ints(c)?.first().copied()),
                }
            };
            let n = data.len() as i64;
            let norm = |v: i64| (if v < 0 { v + n } else { v }).clamp(0, n) as usize;
            let start = norm(get(1)?.unwrap_or(0));
            let end = norm(get(2)?.unwrap_or(n));
            if get(3)?.is_some_and(|a| a != 0) || get(4)?.is_some_and(|s| s != 1) {
                return Err("Slice with axes or steps in shape arithmetic");
            }
            Ok(vec1(
                data.get(start..end.max(start)).unwrap_or_default().to_vec(),
            ))
        }
        _ => Err("not shape arithmetic"),
    }
}

/// Reads an initializer or a `Constant` tensor.
fn tensor_const(t: &TensorProto) -> Result<Const> {
    let name = t.name.clone().unwrap_or_default();
    let err = |problem| Error::Weight {
        name: name.clone(),
        problem,
    };
    if t.data_location == Some(DataLocation::External as i32) || !t.external_data.is_empty() {
        return Err(err("external data files are not supported"));
    }
    if t.segment.is_some() {
        return Err(err("segmented tensors are not supported"));
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        dims.push(pad_dim(d).ok_or_else(|| err("dimension out of range"))?);
    }
    let n = checked_product(&dims)
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| err("too many elements"))?;
    let raw = t.raw_data.as_deref();
    let dtype = t.data_type.and_then(|d| DataType::try_from(d).ok());
    let floats = |data: Vec<f32>| Const::F32 {
        dims: dims.clone(),
        data,
    };
    let ints = |data: Vec<i64>| Const::I64 {
        dims: dims.clone(),
        data,
    };
    let wrong_len = || err("data length does not match the dimensions");
    let value = match (dtype, raw) {
        (Some(DataType::Float), Some(r)) => floats(
            le_chunks::<4>(r, n)
                .ok_or_else(wrong_len)?
                .map(f32::from_le_bytes)
                .collect(),
        ),
        (Some(DataType::Float), None) if t.float_data.len() == n => floats(t.float_data.clone()),
        (Some(DataType::Double), Some(r)) => floats(
            le_chunks::<8>(r, n)
                .ok_or_else(wrong_len)?
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect(),
        ),
        (Some(DataType::Double), None) if t.double_data.len() == n => {
            floats(t.double_data.iter().map(|&v| v as f32).collect())
        }
        (Some(DataType::Float16), Some(r)) => floats(
            le_chunks::<2>(r, n)
                .ok_or_else(wrong_len)?
                .map(|b| f16_to_f32(u16::from_le_bytes(b)))
                .collect(),
        ),
        (Some(DataType::Float16), None) if t.int32_data.len() == n => {
            floats(t.int32_data.iter().map(|&v| f16_to_f32(v as u16)).collect())
        }
        (Some(DataType::Bfloat16), Some(r)) => floats(
            le_chunks::<2>(r, n)
                .ok_or_else(wrong_len)?
                .map(|b| bf16_to_f32(u16::from_le_bytes(b)))
                .collect(),
        ),
        (Some(DataType::Bfloat16), None) if t.int32_data.len() == n => floats(
            t.int32_data
                .iter()
                .map(|&v| bf16_to_f32(v as u16))
                .collect(),
        ),
        (Some(DataType::Int64), Some(r)) => ints(
            le_chunks::<8>(r, n)
                .ok_or_else(wrong_len)?
                .map(i64::from_le_bytes)
                .collect(),
        ),
        (Some(DataType::Int64), None) if t.int64_data.len() == n => ints(t.int64_data.clone()),
        (Some(DataType::Int32), Some(r)) => ints(
            le_chunks::<4>(r, n)
                .ok_or_else(wrong_len)?
                .map(|b| i32::from_le_bytes(b) as i64)
                .collect(),
        ),
        (Some(DataType::Int32), None) if t.int32_data.len() == n => {
            ints(t.int32_data.iter().map(|&v| v as i64).collect())
        }
        (
            Some(
                DataType::Float
                | DataType::Double
                | DataType::Float16
                | DataType::Bfloat16
                | DataType::Int64
                | DataType::Int32,
            ),
            None,
        ) => return Err(wrong_len()),
        _ => {
            return Err(err(
                "element type not supported (float, double, float16, bfloat16, int32, int64 are)",
            ));
        }
    };
    Ok(value)
}

/// `raw` as `n` little-endian chunks of `W` bytes, if the length fits.
fn le_chunks<const W: usize>(raw: &[u8], n: usize) -> Option<impl Iterator<Item = [u8; W]> + '_> {
    if n.checked_mul(W) != Some(raw.len()) {
        return None;
    }
    Some(raw.chunks_exact(W).map(|c| {
        let mut b = [0u8; W];
        b.copy_from_slice(c);
        b
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::onnx_proto::{
        OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto, tensor_shape_proto,
    };

    fn attr(name: &str) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn ai(name: &str, v: i64) -> AttributeProto {
        AttributeProto {
            i: Some(v),
            r#type: Some(AttributeType::Int as i32),
            ..attr(name)
        }
    }

    fn ais(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            ints: v.to_vec(),
            r#type: Some(AttributeType::Ints as i32),
            ..attr(name)
        }
    }

    fn af(name: &str, v: f32) -> AttributeProto {
        AttributeProto {
            f: Some(v),
            r#type: Some(AttributeType::Float as i32),
            ..attr(name)
        }
    }

    fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            name: Some(format!("n_{output}")),
            op_type: Some(op.into()),
            attribute: attrs,
            ..Default::default()
        }
    }

    fn floats(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: Some(DataType::Float as i32),
            float_data: data,
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn ints(name: &str, data: &[i64]) -> TensorProto {
        TensorProto {
            dims: vec![data.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            int64_data: data.to_vec(),
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
        let dim = dims
            .iter()
            .map(|&d| tensor_shape_proto::Dimension {
                value: Some(if d < 0 {
                    dimension::Value::DimParam("N".into())
                } else {
                    dimension::Value::DimValue(d)
                }),
                ..Default::default()
            })
            .collect();
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(DataType::Float as i32),
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A model over input `x` (dims, batch first; negative = symbolic)
    /// whose last node writes `y`.
    fn model(opset: i64, x: &[i64], nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> Vec<u8> {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            graph: Some(GraphProto {
                node: nodes,
                initializer: inits,
                input: vec![value("x", x)],
                output: vec![value("y", &[])],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn conv_w() -> TensorProto {
        floats("w", &[2, 1, 3, 3], (0..18).map(|v| v as f32).collect())
    }

    fn problem(bytes: &[u8]) -> &'static str {
        match from_bytes(bytes) {
            Err(Error::ImportNode { problem, .. }) => problem,
            other => panic!("expected ImportNode, got {other:?}"),
        }
    }

    #[test]
    fn opset_below_11_is_refused() {
        let m = model(
            10,
            &[-1, 4],
            vec![node("Relu", &["x"], "y", vec![])],
            vec![],
        );
        assert!(matches!(
            from_bytes(&m),
            Err(Error::InvalidParameter { value: 10, .. })
        ));
        let m = model(
            18,
            &[-1, 4],
            vec![node("Relu", &["x"], "y", vec![])],
            vec![],
        );
        assert_eq!(from_bytes(&m).unwrap().input_shape, [4]);
    }

    #[test]
    fn conv_attributes_the_ir_cannot_express() {
        let conv = |attrs| {
            model(
                13,
                &[1, 1, 6, 6],
                vec![node("Conv", &["x", "w"], "y", attrs)],
                vec![conv_w()],
            )
        };
        assert!(problem(&conv(vec![ai("group", 2)])).contains("group"));
        assert!(problem(&conv(vec![ais("dilations", &[2, 2])])).contains("dilation"));
        assert!(problem(&conv(vec![ais("pads", &[1, 1, 0, 0])])).contains("asymmetric"));
        assert!(problem(&conv(vec![ais("kernel_shape", &[5, 5])])).contains("kernel_shape"));
        let net = from_bytes(&conv(vec![
            ais("pads", &[1, 2, 1, 2]),
            ais("strides", &[2, 1]),
        ]))
        .unwrap();
        let Layer::Conv2d(c) = &net.layers[0] else {
            panic!()
        };
        assert_eq!(
            (c.padding, c.stride, c.bias.as_slice()),
            ((1, 2), (2, 1), &[0.0, 0.0][..])
        );
        // SAME_UPPER with an even total pads symmetrically; odd is refused.
        let same = |n| {
            model(
                13,
                &[1, 1, n, n],
                vec![node(
                    "Conv",
                    &["x", "w"],
                    "y",
                    vec![
                        AttributeProto {
                            s: Some(b"SAME_UPPER".to_vec()),
                            ..attr("auto_pad")
                        },
                        ais("strides", &[2, 2]),
                    ],
                )],
                vec![conv_w()],
            )
        };
        assert!(from_bytes(&same(5)).is_ok());
        assert!(problem(&same(6)).contains("SAME"));
    }

    #[test]
    fn pools_and_pads() {
        let pad = |p: i64| ints("p", &[0, 0, p, p, 0, 0, p, p]);
        let pool = |op: &str, attrs| {
            model(
                13,
                &[1, 1, 6, 6],
                vec![
                    node("Pad", &["x", "p"], "a", vec![]),
                    node(op, &["a"], "y", attrs),
                ],
                vec![pad(1)],
            )
        };
        let k2 = || vec![ais("kernel_shape", &[2, 2]), ais("strides", &[2, 2])];
        // A zero Pad folds into AveragePool (the zeros are counted).
        let net = from_bytes(&pool("AveragePool", k2())).unwrap();
        assert_eq!(
            net.layers,
            [Layer::AvgPool2d(Pool2d {
                kernel: (2, 2),
                stride: (2, 2),
                padding: (1, 1)
            })]
        );
        // MaxPool pads with -inf: a zero Pad cannot fold.
        assert!(problem(&pool("MaxPool", k2())).contains("MaxPool"));
        // AveragePool's own padding: only when counted.
        let own = |include| {
            model(
                13,
                &[1, 1, 6, 6],
                vec![node(
                    "AveragePool",
                    &["x"],
                    "y",
                    vec![
                        ais("kernel_shape", &[3, 3]),
                        ais("pads", &[1, 1, 1, 1]),
                        ai("count_include_pad", include),
                    ],
                )],
                vec![],
            )
        };
        assert!(problem(&own(0)).contains("count_include_pad"));
        let net = from_bytes(&own(1)).unwrap();
        assert_eq!(net.shapes().unwrap()[0], [1, 6, 6]);
        // ceil_mode only when it does not change the size.
        let ceil = |n| {
            model(
                13,
                &[1, 1, n, n],
                vec![node(
                    "MaxPool",
                    &["x"],
                    "y",
                    vec![
                        ais("kernel_shape", &[2, 2]),
                        ais("strides", &[2, 2]),
                        ai("ceil_mode", 1),
                    ],
                )],
                vec![],
            )
        };
        assert!(from_bytes(&ceil(6)).is_ok());
        assert!(problem(&ceil(7)).contains("ceil_mode"));
        // A Pad that nothing takes, or one before a Relu.
        let m = model(
            13,
            &[1, 1, 6, 6],
            vec![node("Pad", &["x", "p"], "y", vec![])],
            vec![pad(1)],
        );
        assert!(problem(&m).contains("Pad"));
        let m = model(
            13,
            &[1, 1, 6, 6],
            vec![
                node("Pad", &["x", "p"], "a", vec![]),
                node("Relu", &["a"], "y", vec![]),
            ],
            vec![pad(1)],
        );
        assert!(problem(&m).contains("Pad"));
        // Reflect padding and channel padding are refused.
        let m = model(
            13,
            &[1, 1, 6, 6],
            vec![
                node(
                    "Pad",
                    &["x", "p"],
                    "a",
                    vec![AttributeProto {
                        s: Some(b"reflect".to_vec()),
                        ..attr("mode")
                    }],
                ),
                node("Conv", &["a", "w"], "y", vec![]),
            ],
            vec![pad(1), conv_w()],
        );
        assert!(problem(&m).contains("zero"));
        let m = model(
            13,
            &[1, 1, 6, 6],
            vec![
                node("Pad", &["x", "p"], "a", vec![]),
                node("Conv", &["a", "w"], "y", vec![]),
            ],
            vec![ints("p", &[0, 1, 0, 0, 0, 1, 0, 0]), conv_w()],
        );
        assert!(problem(&m).contains("channel"));
        // GlobalAveragePool is a full-window average.
        let m = model(
            13,
            &[1, 3, 4, 5],
            vec![node("GlobalAveragePool", &["x"], "y", vec![])],
            vec![],
        );
        assert_eq!(from_bytes(&m).unwrap().output_shape().unwrap(), [3, 1, 1]);
        // ... and Squeeze([2, 3]) after it is a Flatten; without axes it is refused.
        let squeeze = |axes: Option<&[i64]>| {
            let mut nodes = vec![node("GlobalAveragePool", &["x"], "a", vec![])];
            let mut inits = vec![];
            if let Some(a) = axes {
                nodes.push(node("Squeeze", &["a", "axes"], "y", vec![]));
                inits.push(ints("axes", a));
            } else {
                nodes.push(node("Squeeze", &["a"], "y", vec![]));
            }
            model(13, &[-1, 3, 4, 5], nodes, inits)
        };
        let net = from_bytes(&squeeze(Some(&[-1, 2]))).unwrap();
        assert_eq!(net.layers.last(), Some(&Layer::Flatten));
        assert_eq!(net.output_shape().unwrap(), [3]);
        assert!(problem(&squeeze(None)).contains("Squeeze"));
        assert!(problem(&squeeze(Some(&[1]))).contains("Squeeze"));
    }

    #[test]
    fn gemm_alpha_beta_and_layouts() {
        // B is [in, out] = [2, 3] (transB = 0): the IR weight is alpha * B^T.
        let b = floats("b", &[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let c = floats("c", &[1, 3], vec![1.0, 1.0, 2.0]);
        let m = model(
            13,
            &[-1, 2],
            vec![node(
                "Gemm",
                &["x", "b", "c"],
                "y",
                vec![af("alpha", 2.0), af("beta", 0.5)],
            )],
            vec![b.clone(), c.clone()],
        );
        let net = from_bytes(&m).unwrap();
        let Layer::Dense(d) = &net.layers[0] else {
            panic!()
        };
        assert_eq!(d.weight.shape(), [3, 2]);
        assert_eq!(d.weight.data(), [2.0, 8.0, 4.0, 10.0, 6.0, 12.0]);
        assert_eq!(d.bias, [0.5, 0.5, 1.0]);
        // transA is refused, a wrong input width is a shape mismatch.
        let m = model(
            13,
            &[-1, 2],
            vec![node("Gemm", &["x", "b"], "y", vec![ai("transA", 1)])],
            vec![b.clone()],
        );
        assert!(problem(&m).contains("transA"));
        let m = model(
            13,
            &[-1, 5],
            vec![node("Gemm", &["x", "b"], "y", vec![])],
            vec![b.clone()],
        );
        assert!(matches!(
            from_bytes(&m),
            Err(Error::ShapeMismatch { layer: 0, .. })
        ));
        // MatMul then Sub of a constant: folded into the bias.
        let m = model(
            13,
            &[-1, 2],
            vec![
                node("MatMul", &["x", "b"], "a", vec![]),
                node("Sub", &["a", "c"], "y", vec![]),
            ],
            vec![b.clone(), c.clone()],
        );
        let net = from_bytes(&m).unwrap();
        let Layer::Dense(d) = &net.layers[0] else {
            panic!()
        };
        assert_eq!(d.bias, [-1.0, -1.0, -2.0]);
        // An Add that follows no affine layer is refused.
        let m = model(
            13,
            &[-1, 3],
            vec![
                node("Relu", &["x"], "a", vec![]),
                node("Add", &["a", "c"], "y", vec![]),
            ],
            vec![c],
        );
        assert!(problem(&m).contains("Add"));
        // Two data inputs, an unknown domain.
        let m = model(
            13,
            &[-1, 3],
            vec![node("Relu", &["x"], "y", vec![])],
            vec![],
        );
        let mut two: ModelProto = ModelProto::decode(m.as_slice()).unwrap();
        two.graph.as_mut().unwrap().input.push(value("z", &[-1, 3]));
        assert!(matches!(
            from_bytes(&two.encode_to_vec()),
            Err(Error::ImportGraph { .. })
        ));
        let mut custom = node("FusedGemm", &["x", "b"], "y", vec![]);
        custom.domain = Some("com.microsoft".into());
        let m = model(13, &[-1, 2], vec![custom], vec![b]);
        assert!(
            matches!(from_bytes(&m), Err(Error::UnsupportedOperator { op_type, .. }) if op_type == "com.microsoft.FusedGemm")
        );
    }

    #[test]
    fn weights_and_reshape_errors() {
        let mut bad = conv_w();
        bad.float_data.pop();
        let m = model(
            13,
            &[1, 1, 6, 6],
            vec![node("Conv", &["x", "w"], "y", vec![])],
            vec![bad],
        );
        assert!(matches!(from_bytes(&m), Err(Error::Weight { name, .. }) if name == "w"));
        let raw = TensorProto {
            float_data: vec![],
            raw_data: Some(vec![0u8; 18 * 4 - 1]),
            ..conv_w()
        };
        let m = model(
            13,
            &[1, 1, 6, 6],
            vec![node("Conv", &["x", "w"], "y", vec![])],
            vec![raw],
        );
        assert!(matches!(from_bytes(&m), Err(Error::Weight { .. })));
        let ext = TensorProto {
            data_location: Some(DataLocation::External as i32),
            ..conv_w()
        };
        let m = model(
            13,
            &[1, 1, 6, 6],
            vec![node("Conv", &["x", "w"], "y", vec![])],
            vec![ext],
        );
        assert!(
            matches!(from_bytes(&m), Err(Error::Weight { problem, .. }) if problem.contains("external"))
        );
        // Reshape: to flat is fine, anything else is refused.
        let reshape = |target: &[i64]| {
            model(
                13,
                &[-1, 2, 3, 4],
                vec![node("Reshape", &["x", "s"], "y", vec![])],
                vec![ints("s", target)],
            )
        };
        for ok in [&[-1, 24][..], &[0, -1], &[0, 24], &[0, 2, 3, 4]] {
            assert!(from_bytes(&reshape(ok)).is_ok(), "{ok:?}");
        }
        for bad in [&[-1, 12][..], &[0, 4, 3, 2], &[-1], &[24, -1]] {
            assert!(problem(&reshape(bad)).contains("Reshape"), "{bad:?}");
        }
        // Flatten with axis 2 is refused.
        let m = model(
            13,
            &[-1, 2, 3, 4],
            vec![node("Flatten", &["x"], "y", vec![ai("axis", 2)])],
            vec![],
        );
        assert!(problem(&m).contains("Flatten"));
        // Dropout in training mode is refused.
        let m = model(
            13,
            &[-1, 3],
            vec![node("Dropout", &["x", "", "t"], "y", vec![])],
            vec![ints("t", &[1])],
        );
        assert!(problem(&m).contains("training"));
    }

    #[test]
    fn hostile_graphs_end_with_errors() {
        // A data cycle: x -> a -> x.
        let m = model(
            13,
            &[-1, 3],
            vec![
                node("Relu", &["x"], "a", vec![]),
                node("Relu", &["a"], "x", vec![]),
            ],
            vec![],
        );
        assert!(from_bytes(&m).is_err());
        // A constant cycle feeding Reshape.
        let m = model(
            13,
            &[-1, 3],
            vec![
                node("Concat", &["s"], "s", vec![ai("axis", 0)]),
                node("Reshape", &["x", "s"], "y", vec![]),
            ],
            vec![],
        );
        assert!(from_bytes(&m).is_err());
        // A branch: x feeds two nodes.
        let m = model(
            13,
            &[-1, 3],
            vec![
                node("Relu", &["x"], "y", vec![]),
                node("Tanh", &["x"], "z", vec![]),
            ],
            vec![],
        );
        assert!(problem(&m).contains("chain"));
        // Output never reached.
        let m = model(
            13,
            &[-1, 3],
            vec![node("Relu", &["x"], "a", vec![])],
            vec![],
        );
        assert!(matches!(from_bytes(&m), Err(Error::ImportGraph { .. })));
        // Huge dims in an attribute or an input.
        let m = model(
            13,
            &[1, 1, 6, 6],
            vec![node(
                "MaxPool",
                &["x"],
                "y",
                vec![ais("kernel_shape", &[i64::MAX, 2])],
            )],
            vec![],
        );
        assert!(from_bytes(&m).is_err());
        let m = model(
            13,
            &[1, i64::MAX, 1 << 30, 1 << 30],
            vec![node("Relu", &["x"], "y", vec![])],
            vec![],
        );
        assert!(matches!(from_bytes(&m), Err(Error::ImportGraph { .. })));
        let m = model(
            13,
            &[1, 1, 6, 6],
            vec![node(
                "AveragePool",
                &["x"],
                "y",
                vec![
                    ais("kernel_shape", &[2, 2]),
                    ais("pads", &[1 << 23, 1 << 23, 1 << 23, 1 << 23]),
                    ai("count_include_pad", 1),
                ],
            )],
            vec![],
        );
        assert!(from_bytes(&m).is_err());
    }

    #[test]
    fn batch_norm_on_features_and_square() {
        let p = |n: &str, v: f32| floats(n, &[2], vec![v, v]);
        let m = model(
            14,
            &[-1, 2],
            vec![
                node(
                    "BatchNormalization",
                    &["x", "g", "b", "m", "v"],
                    "a",
                    vec![af("epsilon", 1e-3)],
                ),
                node("Pow", &["a", "two"], "y", vec![]),
            ],
            vec![
                p("g", 1.0),
                p("b", 0.0),
                p("m", 0.5),
                p("v", 4.0),
                floats("two", &[], vec![2.0]),
            ],
        );
        let net = from_bytes(&m).unwrap();
        assert_eq!(net.layers[1], Layer::Activation(Activation::Square));
        let Layer::BatchNorm(bn) = &net.layers[0] else {
            panic!()
        };
        assert_eq!((bn.eps, bn.mean.as_slice()), (1e-3, &[0.5, 0.5][..]));
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        const OPS: [&str; 19] = [
            "Conv",
            "Relu",
            "MaxPool",
            "AveragePool",
            "Pad",
            "Flatten",
            "Reshape",
            "Gemm",
            "MatMul",
            "Add",
            "BatchNormalization",
            "Transpose",
            "Squeeze",
            "Mul",
            "Softmax",
            "Identity",
            "GlobalAveragePool",
            "Sigmoid",
            "Sub",
        ];
        const VALUES: [i64; 9] = [-2, -1, 0, 1, 2, 3, 5, 1 << 20, i64::MAX];

        /// One random node: op, an int attribute set, weight dims.
        fn step() -> impl Strategy<Value = (usize, Vec<usize>, Vec<usize>)> {
            (
                0..OPS.len(),
                prop::collection::vec(0..VALUES.len(), 4),
                prop::collection::vec(1usize..5, 0..5),
            )
        }

        fn build(input: &[i64], steps: &[(usize, Vec<usize>, Vec<usize>)]) -> Vec<u8> {
            let mut nodes = Vec::new();
            let mut inits = Vec::new();
            let mut cur = "x".to_string();
            for (k, (op, vals, wdims)) in steps.iter().enumerate() {
                let op = OPS[*op];
                let v = |i: usize| VALUES[vals[i % vals.len()]];
                let out = if k + 1 == steps.len() {
                    "y".to_string()
                } else {
                    format!("t{k}")
                };
                let w = format!("w{k}");
                let dims: Vec<i64> = wdims.iter().map(|&d| d as i64).collect();
                let n: usize = wdims.iter().product();
                inits.push(floats(&w, &dims, (0..n).map(|i| i as f32 * 0.01).collect()));
                let inputs: Vec<&str> = match op {
                    "Conv" | "Gemm" | "MatMul" | "Add" | "Sub" | "Reshape" | "Pad" | "Squeeze" => {
                        vec![&cur, &w]
                    }
                    "BatchNormalization" => vec![&cur, &w, &w, &w, &w],
                    "Mul" => vec![&cur, &cur],
                    _ => vec![&cur],
                };
                if matches!(op, "Reshape" | "Pad" | "Squeeze") {
                    inits.pop();
                    let ints_v: Vec<i64> = (0..wdims.len().max(1)).map(&v).collect();
                    inits.push(ints(&w, &ints_v));
                }
                let attrs = vec![
                    ais("kernel_shape", &[v(0), v(1)]),
                    ais("strides", &[v(1), v(2)]),
                    ais("pads", &[v(2), v(3), v(2), v(3)]),
                    ai("transB", v(3).rem_euclid(2)),
                    ai("axis", v(0)),
                    ais("perm", &[0, v(1), v(2), v(3)]),
                ];
                nodes.push(node(op, &inputs, &out, attrs));
                cur = out;
            }
            model(13, input, nodes, inits)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]
            #[test]
            fn random_chains_never_panic(
                image in any::<bool>(),
                dims in prop::collection::vec(1i64..7, 3),
                steps in prop::collection::vec(step(), 1..6),
            ) {
                let input: Vec<i64> = if image {
                    vec![-1, dims[0], dims[1], dims[2]]
                } else {
                    vec![-1, dims[0] * dims[1]]
                };
                let bytes = build(&input, &steps);
                let r = from_bytes(&bytes);
                if let Ok(net) = r {
                    // Whatever imports runs, with the shape it promises.
                    let shape = net.output_shape().unwrap();
                    let mut batch = vec![2];
                    batch.extend(&net.input_shape);
                    let x = Tensor::zeros(batch);
                    let y = net.forward(&x).unwrap();
                    prop_assert_eq!(&y.shape()[1..], shape.as_slice());
                }
                // Truncations of the same bytes fail cleanly.
                for cut in [1, bytes.len() / 3, bytes.len() / 2] {
                    prop_assert!(from_bytes(&bytes[..bytes.len() - cut]).is_err());
                }
            }
        }
    }
}

//! The walk along the chain: the graph's data input, node after node, to
//! its output; the conversion state ([`Importer`]) the converters share.

use std::collections::HashMap;

use super::options::ImportOptions;
use super::state::{Const, InputAffine, MAX_DIM, NHWC_PROBLEM, Nhwc};
use crate::error::{Error, Result};
use crate::import::external_data::ExternalReader;
use crate::import::onnx_proto::{
    GraphProto, NodeProto, TensorProto, tensor_proto::DataType, tensor_shape_proto::dimension,
    type_proto,
};
use crate::import::report::{ImportNote, ImportReport, Imported};
use crate::model::{Layer, Network};

/// Largest number of elements in one tensor (and in one sample).
pub(super) const MAX_ELEMENTS: usize = 1 << 31;

/// The value standing for a symbolic batch dimension in shape arithmetic.
pub(super) const BATCH_MARKER: i64 = 1 << 40;

/// The conversion state.
pub(super) struct Importer<'g, 'r> {
    pub(super) graph: &'g GraphProto,
    /// Tensor name -> index of the node producing it.
    pub(super) producer: HashMap<&'g str, usize>,
    /// Tensor name -> indices of the nodes reading it.
    pub(super) consumers: HashMap<&'g str, Vec<usize>>,
    /// Initializers by name.
    pub(super) initializers: HashMap<&'g str, &'g TensorProto>,
    /// Constants resolved so far.
    pub(super) consts: HashMap<String, Const>,
    /// Full shapes (batch first, `BATCH_MARKER` when symbolic) of the data
    /// tensors on the chain, for `Shape` nodes.
    pub(super) data_shapes: HashMap<&'g str, Vec<i64>>,
    /// The batch dimension as it appears in shape arithmetic.
    pub(super) batch: i64,
    /// Layers emitted so far.
    pub(super) layers: Vec<Layer>,
    /// Per-sample shape after the last emitted layer.
    pub(super) shape: Vec<usize>,
    /// The network's per-sample input shape.
    pub(super) input_shape: Vec<usize>,
    /// A zero `Pad` waiting to be folded into the next Conv / AveragePool:
    /// `(node index, (ph, pw))`.
    pub(super) pending_pad: Option<(usize, (usize, usize))>,
    /// Whether a constant `Add`/`Sub` may fold into the last layer's bias.
    pub(super) bias_foldable: bool,
    /// The graph's data input.
    pub(super) input_name: &'g str,
    /// A `Transpose` to NHWC waiting to be folded into the next Dense
    /// layer's columns (tf2onnx writes one before Keras's Flatten).
    pub(super) nhwc: Option<Nhwc>,
    /// The caller's choices.
    pub(super) options: ImportOptions,
    /// Whether a 4-d data input is NHWC (see [`InputLayout`]).
    pub(super) nhwc_input: bool,
    /// External data files and their byte budget.
    pub(super) external: ExternalReader<'r>,
    /// What the report will say.
    pub(super) notes: Vec<ImportNote>,
    /// Constant arithmetic taken off the data input (see `input_scaling`).
    pub(super) input_affine: Option<InputAffine>,
}

/// A printable name of node `index`.
pub(super) fn node_label(node: &NodeProto, index: usize) -> String {
    match node.name.as_deref() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!("#{index}"),
    }
}

/// An [`Error::ImportNode`] for node `index` of `graph`.
pub(super) fn node_err(graph: &GraphProto, index: usize, problem: &'static str) -> Error {
    match graph.node.get(index) {
        Some(node) => Error::ImportNode {
            node: node_label(node, index),
            op_type: node.op_type.clone().unwrap_or_default(),
            problem,
        },
        None => Error::ImportGraph { problem },
    }
}

pub(super) fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

impl<'g, 'r> Importer<'g, 'r> {
    pub(super) fn new(graph: &'g GraphProto, external: ExternalReader<'r>) -> Result<Self> {
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
            nhwc_input: false,
            external,
            notes: Vec::new(),
            input_affine: None,
        })
    }

    /// The single data input: its name, per-sample shape and batch value.
    pub(super) fn data_input(&mut self) -> Result<&'g str> {
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
    pub(super) fn record_shape(&mut self, name: &'g str) {
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
    pub(super) fn run(mut self) -> Result<Imported> {
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
                let network =
                    Network::new(self.input_shape.clone(), std::mem::take(&mut self.layers))?;
                network.check_budget(1, false, &self.options.budget)?;
                // The input scaling comes first in graph order.
                if let Some(note) = self.input_normalizer_note()? {
                    self.notes.insert(0, note);
                }
                let (files, bytes) = self.external.summary();
                if !files.is_empty() {
                    self.notes
                        .insert(0, ImportNote::ExternalData { files, bytes });
                }
                return Ok(Imported {
                    network,
                    report: ImportReport { notes: self.notes },
                });
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

    /// An [`Error::ImportNode`] for node `index`.
    pub(super) fn node_error(&self, index: usize, problem: &'static str) -> Error {
        node_err(self.graph, index, problem)
    }

    /// Node `index` and a maker of its [`Error::ImportNode`]s (it borrows
    /// the graph, not the importer, so converters can still mutate `self`).
    pub(super) fn node_at(
        &self,
        index: usize,
    ) -> (
        &'g NodeProto,
        impl Fn(&'static str) -> Error + Copy + use<'g, 'r>,
    ) {
        let graph = self.graph;
        (&graph.node[index], move |problem| {
            node_err(graph, index, problem)
        })
    }

    /// A constant input of node `index` (`Ok(None)` when the input is absent).
    pub(super) fn const_input(&mut self, index: usize, slot: usize) -> Result<Option<Const>> {
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
    pub(super) fn required_const(
        &mut self,
        index: usize,
        slot: usize,
        what: &'static str,
    ) -> Result<Const> {
        self.const_input(index, slot)?
            .ok_or_else(|| self.node_error(index, what))
    }

    /// Appends a layer and advances the per-sample shape.
    pub(super) fn push(&mut self, layer: Layer) -> Result<()> {
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
}

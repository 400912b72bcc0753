//! Unit tests: graphs built in memory with the protobuf types, one file
//! per concern.

mod fuzz;
mod graph;
mod input_scaling;
mod nodes;

use prost::Message;

use super::from_bytes;
use crate::error::Error;
use crate::import::onnx_proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_proto::DataType, tensor_shape_proto, tensor_shape_proto::dimension, type_proto,
};

pub(super) fn attr(name: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ..Default::default()
    }
}

pub(super) fn ai(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        r#type: Some(AttributeType::Int as i32),
        ..attr(name)
    }
}

pub(super) fn ais(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        r#type: Some(AttributeType::Ints as i32),
        ..attr(name)
    }
}

pub(super) fn af(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        r#type: Some(AttributeType::Float as i32),
        ..attr(name)
    }
}

pub(super) fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: Some(format!("n_{output}")),
        op_type: Some(op.into()),
        attribute: attrs,
        ..Default::default()
    }
}

pub(super) fn floats(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        float_data: data,
        name: Some(name.into()),
        ..Default::default()
    }
}

pub(super) fn ints(name: &str, data: &[i64]) -> TensorProto {
    TensorProto {
        dims: vec![data.len() as i64],
        data_type: Some(DataType::Int64 as i32),
        int64_data: data.to_vec(),
        name: Some(name.into()),
        ..Default::default()
    }
}

pub(super) fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
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
pub(super) fn model(
    opset: i64,
    x: &[i64],
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
) -> Vec<u8> {
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

/// [`model`] at opset 13.
pub(super) fn opset13(x: &[i64], nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> Vec<u8> {
    model(13, x, nodes, inits)
}

/// One node from `x` to `y`.
pub(super) fn lone(op: &str, attrs: Vec<AttributeProto>) -> Vec<NodeProto> {
    vec![node(op, &["x"], "y", attrs)]
}

pub(super) fn conv_w() -> TensorProto {
    floats("w", &[2, 1, 3, 3], (0..18).map(|v| v as f32).collect())
}

pub(super) fn problem(bytes: &[u8]) -> &'static str {
    match from_bytes(bytes) {
        Err(Error::ImportNode { problem, .. }) => problem,
        other => panic!("expected ImportNode, got {other:?}"),
    }
}

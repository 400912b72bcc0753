//! Reading node attributes: typed look-ups, range checks, and the
//! `strides` / `pads` / `auto_pad` of convolutions and pools.

use super::graph::Importer;
use super::state::MAX_DIM;
use crate::error::Result;
use crate::import::onnx_proto::{AttributeProto, NodeProto, attribute_proto::AttributeType};

/// An attribute's kind as stored (falls back to what is set when the type
/// field is missing).
pub(super) fn attr_kind(a: &AttributeProto) -> Option<AttributeType> {
    a.r#type.and_then(|t| AttributeType::try_from(t).ok())
}

/// A dimension-like attribute value in `1..=MAX_DIM`.
pub(super) fn dim(v: i64) -> Option<usize> {
    (1..=MAX_DIM).contains(&v).then_some(v as usize)
}

/// A padding value in `0..=MAX_DIM`.
pub(super) fn pad_dim(v: i64) -> Option<usize> {
    (0..=MAX_DIM).contains(&v).then_some(v as usize)
}

pub(super) fn find_attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

/// Attribute `name` of `node`: `Ok(None)` when absent, `get(a)` when it is
/// set (`get` says whether its field is) or declared of `kind`, `Err(wrong)`
/// when it is of another type.
fn typed_attr<'a, T>(
    node: &'a NodeProto,
    name: &str,
    kind: AttributeType,
    get: impl Fn(&'a AttributeProto) -> (bool, T),
    wrong: &'static str,
) -> Result<Option<T>, &'static str> {
    match find_attr(node, name) {
        None => Ok(None),
        Some(a) => match get(a) {
            (set, v) if set || attr_kind(a) == Some(kind) => Ok(Some(v)),
            _ => Err(wrong),
        },
    }
}

/// An integer attribute.
pub(super) fn attr_int(node: &NodeProto, name: &str) -> Result<Option<i64>, &'static str> {
    typed_attr(
        node,
        name,
        AttributeType::Int,
        |a| (a.i.is_some(), a.i.unwrap_or(0)),
        "an integer attribute has another type",
    )
}

/// A float attribute.
pub(super) fn attr_float(node: &NodeProto, name: &str) -> Result<Option<f32>, &'static str> {
    typed_attr(
        node,
        name,
        AttributeType::Float,
        |a| (a.f.is_some(), a.f.unwrap_or(0.0)),
        "a float attribute has another type",
    )
}

/// An integer-list attribute.
pub(super) fn attr_ints<'a>(
    node: &'a NodeProto,
    name: &str,
) -> Result<Option<&'a [i64]>, &'static str> {
    typed_attr(
        node,
        name,
        AttributeType::Ints,
        |a| (!a.ints.is_empty(), a.ints.as_slice()),
        "an integer-list attribute has another type",
    )
}

/// A string attribute (bytes).
pub(super) fn attr_string<'a>(
    node: &'a NodeProto,
    name: &str,
) -> Result<Option<&'a [u8]>, &'static str> {
    match find_attr(node, name) {
        None => Ok(None),
        Some(a) => match &a.s {
            Some(s) => Ok(Some(s)),
            None if attr_kind(a) == Some(AttributeType::String) => Ok(Some(b"")),
            None => Err("a string attribute has another type"),
        },
    }
}

impl<'g, 'r> Importer<'g, 'r> {
    /// `strides` of a Conv or pool node (default 1).
    pub(super) fn strides(&self, index: usize) -> Result<(usize, usize)> {
        let (node, bad) = self.node_at(index);
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
    pub(super) fn padding(
        &self,
        index: usize,
        input: (usize, usize),
        kernel: (usize, usize),
        stride: (usize, usize),
    ) -> Result<(usize, usize)> {
        let (node, bad) = self.node_at(index);
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
}

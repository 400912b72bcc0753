//! Constant folding: initializers, `Constant` nodes and the integer shape
//! arithmetic exporters write (`Shape -> Gather -> Unsqueeze -> Concat`
//! feeding a `Reshape`), evaluated at import time.

use super::attributes::attr_int;
use super::graph::Importer;
use super::state::Const;
use super::tensor::tensor_const;
use crate::error::{Error, Result};
use crate::import::external_data::ExternalReader;
use crate::import::onnx_proto::NodeProto;

/// Deepest chain of constant-producing nodes followed (guards against
/// cycles and stack exhaustion on hostile graphs).
pub(super) const MAX_CONST_DEPTH: usize = 64;

impl Const {
    pub(super) fn dims(&self) -> &[usize] {
        match self {
            Const::F32 { dims, .. } | Const::I64 { dims, .. } => dims,
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Const::F32 { data, .. } => data.len(),
            Const::I64 { data, .. } => data.len(),
        }
    }

    /// The values as `f32` (integers converted).
    pub(super) fn to_f32(&self) -> Vec<f32> {
        match self {
            Const::F32 { data, .. } => data.clone(),
            Const::I64 { data, .. } => data.iter().map(|&v| v as f32).collect(),
        }
    }

    /// A 1-d integer value.
    pub(super) fn int_vector(data: Vec<i64>) -> Const {
        Const::I64 {
            dims: vec![data.len()],
            data,
        }
    }

    /// A 0-d integer value.
    pub(super) fn int_scalar(v: i64) -> Const {
        Const::I64 {
            dims: vec![],
            data: vec![v],
        }
    }

    /// The values as `i64`, if they are integers.
    pub(super) fn ints(&self) -> Option<&[i64]> {
        match self {
            Const::I64 { data, .. } => Some(data),
            Const::F32 { .. } => None,
        }
    }
}

impl<'g, 'r> Importer<'g, 'r> {
    /// Resolves `name` to a constant if it is one: an initializer, a
    /// `Constant` node, or shape arithmetic over known values. `Ok(None)`
    /// when it depends on data values.
    pub(super) fn resolve(&mut self, name: &str, depth: usize) -> Result<Option<Const>> {
        if let Some(c) = self.consts.get(name) {
            return Ok(Some(c.clone()));
        }
        if depth > MAX_CONST_DEPTH {
            return Err(Error::ImportGraph {
                problem: "constant expressions nest too deeply (or form a cycle)",
            });
        }
        let value = if let Some(t) = self.initializers.get(name) {
            Some(tensor_const(t, &mut self.external)?)
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
    pub(super) fn fold(&mut self, index: usize, depth: usize) -> Result<Option<Const>> {
        let graph = self.graph;
        let node = &graph.node[index];
        let op = node.op_type.as_deref().unwrap_or_default();
        if !matches!(node.domain.as_deref(), None | Some("") | Some("ai.onnx")) {
            return Ok(None);
        }
        let (_, bad) = self.node_at(index);
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
                Some(Const::int_vector(data))
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
}

/// The value of a `Constant` node.
pub(super) fn constant_node(node: &NodeProto) -> Result<Const, &'static str> {
    let a = node.attribute.first().ok_or("Constant without a value")?;
    match a.name.as_deref().unwrap_or_default() {
        "value" => {
            let t = a.t.as_ref().ok_or("Constant value is not a tensor")?;
            tensor_const(t, &mut ExternalReader::new(None, 0))
                .map_err(|_| "Constant value tensor is unreadable (or external)")
        }
        "value_float" => Ok(Const::F32 {
            dims: vec![],
            data: vec![a.f.unwrap_or(0.0)],
        }),
        "value_floats" => Ok(Const::F32 {
            dims: vec![a.floats.len()],
            data: a.floats.clone(),
        }),
        "value_int" => Ok(Const::int_scalar(a.i.unwrap_or(0))),
        "value_ints" => Ok(Const::int_vector(a.ints.clone())),
        _ => Err("Constant of this kind (sparse, string) is not supported"),
    }
}

/// Evaluates integer shape arithmetic (`Cast`, `Unsqueeze`, `Squeeze`,
/// `Gather`, `Concat`, `Slice`, `Identity`) on 0-d / 1-d constants.
pub(super) fn fold_shape_op(
    op: &str,
    node: &NodeProto,
    inputs: &[Const],
) -> Result<Const, &'static str> {
    let first = inputs.first().ok_or("missing input")?;
    let ints = |c: &Const| -> Result<Vec<i64>, &'static str> {
        match c {
            Const::I64 { data, .. } if c.dims().len() <= 1 => Ok(data.clone()),
            _ => Err("shape arithmetic on something other than 0-d/1-d integers"),
        }
    };
    match op {
        "Identity" | "Cast" => Ok(first.clone()),
        "Unsqueeze" => {
            let v = ints(first)?;
            if first.dims().is_empty() {
                Ok(Const::int_vector(v))
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
                Const::int_vector(picked)
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
            Ok(Const::int_vector(out))
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
            Ok(Const::int_vector(
                data.get(start..end.max(start)).unwrap_or_default().to_vec(),
            ))
        }
        _ => Err("not shape arithmetic"),
    }
}

//! Decoding an initializer or `Constant` tensor (inline or external data,
//! any float or integer element type) into a [`Const`].

use super::attributes::pad_dim;
use super::graph::{MAX_ELEMENTS, checked_product};
use super::state::Const;
use crate::error::{Error, Result};
use crate::import::external_data::ExternalReader;
use crate::import::onnx_proto::{TensorProto, tensor_proto::DataLocation, tensor_proto::DataType};
use crate::import::{bf16_to_f32, f16_to_f32};

/// Reads an initializer or a `Constant` tensor.
pub(super) fn tensor_const(t: &TensorProto, external: &mut ExternalReader<'_>) -> Result<Const> {
    let name = t.name.clone().unwrap_or_default();
    let err = |problem| Error::Weight {
        name: name.clone(),
        problem,
    };
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
    let dtype = t.data_type.and_then(|d| DataType::try_from(d).ok());
    let external_bytes;
    let raw = if t.data_location == Some(DataLocation::External as i32)
        || !t.external_data.is_empty()
    {
        let width = match dtype {
            Some(DataType::Double | DataType::Int64) => 8,
            Some(DataType::Float | DataType::Int32) => 4,
            Some(DataType::Float16 | DataType::Bfloat16) => 2,
            _ => {
                return Err(err(
                    "element type not supported (float, double, float16, bfloat16, int32, int64 are)",
                ));
            }
        };
        let len = n
            .checked_mul(width)
            .ok_or_else(|| err("too many elements"))?;
        external_bytes = external.tensor_bytes(t, len)?;
        Some(external_bytes.as_slice())
    } else {
        t.raw_data.as_deref()
    };
    let wrong_len = || err("data length does not match the dimensions");
    // Values read from `raw_data` (`None` when its length is wrong) or a
    // typed field.
    let floats = |data: Option<Vec<f32>>| {
        data.map(|data| Const::F32 {
            dims: dims.clone(),
            data,
        })
        .ok_or_else(wrong_len)
    };
    let ints = |data: Option<Vec<i64>>| {
        data.map(|data| Const::I64 {
            dims: dims.clone(),
            data,
        })
        .ok_or_else(wrong_len)
    };
    let value = match (dtype, raw) {
        (Some(DataType::Float), Some(r)) => floats(le_values(r, n, f32::from_le_bytes))?,
        (Some(DataType::Float), None) if t.float_data.len() == n => {
            floats(Some(t.float_data.clone()))?
        }
        (Some(DataType::Double), Some(r)) => {
            floats(le_values(r, n, |b| f64::from_le_bytes(b) as f32))?
        }
        (Some(DataType::Double), None) if t.double_data.len() == n => {
            floats(Some(t.double_data.iter().map(|&v| v as f32).collect()))?
        }
        (Some(DataType::Float16), Some(r)) => {
            floats(le_values(r, n, |b| f16_to_f32(u16::from_le_bytes(b))))?
        }
        (Some(DataType::Float16), None) if t.int32_data.len() == n => floats(Some(
            t.int32_data.iter().map(|&v| f16_to_f32(v as u16)).collect(),
        ))?,
        (Some(DataType::Bfloat16), Some(r)) => {
            floats(le_values(r, n, |b| bf16_to_f32(u16::from_le_bytes(b))))?
        }
        (Some(DataType::Bfloat16), None) if t.int32_data.len() == n => floats(Some(
            t.int32_data
                .iter()
                .map(|&v| bf16_to_f32(v as u16))
                .collect(),
        ))?,
        (Some(DataType::Int64), Some(r)) => ints(le_values(r, n, i64::from_le_bytes))?,
        (Some(DataType::Int64), None) if t.int64_data.len() == n => {
            ints(Some(t.int64_data.clone()))?
        }
        (Some(DataType::Int32), Some(r)) => {
            ints(le_values(r, n, |b| i32::from_le_bytes(b) as i64))?
        }
        (Some(DataType::Int32), None) if t.int32_data.len() == n => {
            ints(Some(t.int32_data.iter().map(|&v| v as i64).collect()))?
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

/// `raw` as `n` little-endian values of `W` bytes each, read by `read`, if
/// the length fits.
fn le_values<const W: usize, T>(
    raw: &[u8],
    n: usize,
    read: impl Fn([u8; W]) -> T,
) -> Option<Vec<T>> {
    if n.checked_mul(W) != Some(raw.len()) {
        return None;
    }
    Some(
        raw.chunks_exact(W)
            .map(|c| {
                let mut b = [0u8; W];
                b.copy_from_slice(c);
                read(b)
            })
            .collect(),
    )
}

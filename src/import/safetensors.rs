//! Reading `safetensors` weight files into an existing [`Network`].
//!
//! The architecture comes from the caller (built by hand, read from ONNX, or
//! decoded from mofhei's own format); the file supplies the numbers. Each
//! parameterised layer (Dense, Conv2d, BatchNorm), in network order, takes
//! the tensors under one name prefix, as a PyTorch `state_dict` names them:
//!
//! | layer      | tensors                                                        |
//! |------------|----------------------------------------------------------------|
//! | Dense      | `{p}.weight` `[out, in]`, `{p}.bias` `[out]` (absent: zeros)    |
//! | Conv2d     | `{p}.weight` OIHW, `{p}.bias` `[out]` (absent: zeros)           |
//! | BatchNorm  | `{p}.weight` (gamma), `{p}.bias` (beta), `{p}.running_mean`, `{p}.running_var` |
//!
//! The prefixes are given ([`WeightNames::Prefixes`], e.g. `["conv1",
//! "conv2", "fc1"]`) or found ([`WeightNames::Auto`]: the file's prefixes in
//! natural order, so `conv1 < conv2 < fc1` and `features.2 < features.10`).
//! Every shape is checked against the layer; `f32`, `f64`, `f16` and
//! `bf16` tensors are read (converted to `f32`). Loading is all or nothing:
//! on any error the network is left unchanged.
//!
//! See `docs/import.md`.

use std::cmp::Ordering;
use std::path::Path;

use ::safetensors::{Dtype, SafeTensors};

use crate::error::{DecodeError, Error, Result};
use crate::import::{bf16_to_f32, f16_to_f32};
use crate::model::{Layer, Network, Tensor};

/// How the layers of a network find their tensors in a `safetensors` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightNames {
    /// The file's name prefixes (everything before the last `.`), in
    /// natural order (digit runs compare as numbers), one per
    /// parameterised layer.
    Auto,
    /// One prefix per parameterised layer (Dense, Conv2d, BatchNorm), in
    /// network order.
    Prefixes(Vec<String>),
}

/// Reads a `safetensors` file into `network`'s layers; see [`load_weights`].
pub fn load_weights_file(
    network: &mut Network,
    path: impl AsRef<Path>,
    names: &WeightNames,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_weights(network, &bytes, names)
}

/// Reads `safetensors` bytes into the weights of `network`'s parameterised
/// layers (Dense, Conv2d, BatchNorm), matching tensors by name.
///
/// # Errors
/// [`Error::Decode`] if the bytes are not a `safetensors` file,
/// [`Error::Weight`] for a missing tensor, an unsupported element type or a
/// prefix no layer takes, [`Error::InvalidLayer`] when the file has fewer
/// prefixes than the network has parameterised layers, and
/// [`Error::ShapeMismatch`] when a tensor's shape differs from the layer's.
/// `network` is unchanged on error.
pub fn load_weights(network: &mut Network, bytes: &[u8], names: &WeightNames) -> Result<()> {
    let file = SafeTensors::deserialize(bytes).map_err(|_| Error::Decode {
        what: "safetensors file",
        reason: DecodeError::Invalid {
            format: "safetensors",
        },
    })?;
    let param_layers: Vec<usize> = network
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l, Layer::Dense(_) | Layer::Conv2d(_) | Layer::BatchNorm(_)))
        .map(|(i, _)| i)
        .collect();
    let prefixes = match names {
        WeightNames::Prefixes(p) => p.clone(),
        WeightNames::Auto => auto_prefixes(&file.names()),
    };
    if let Some(extra) = prefixes.get(param_layers.len()) {
        return Err(Error::Weight {
            name: extra.clone(),
            problem: "no parameterised layer of the network is left for this prefix",
        });
    }
    if let Some(&layer) = param_layers.get(prefixes.len()) {
        return Err(Error::InvalidLayer {
            layer,
            what: "weights: the file names fewer parameterised layers than the network has",
            value: prefixes.len() as i64,
        });
    }
    // Read everything first, then assign: all or nothing.
    let mut updates = Vec::with_capacity(param_layers.len());
    for (&index, prefix) in param_layers.iter().zip(&prefixes) {
        updates.push((
            index,
            read_layer(&file, &network.layers[index], index, prefix)?,
        ));
    }
    for (index, layer) in updates {
        network.layers[index] = layer;
    }
    Ok(())
}

/// The layer `layer` (at `index`) with its parameters read under `prefix`.
fn read_layer(file: &SafeTensors<'_>, layer: &Layer, index: usize, prefix: &str) -> Result<Layer> {
    let mut out = layer.clone();
    match &mut out {
        Layer::Dense(d) => {
            d.weight = read_tensor(file, index, &format!("{prefix}.weight"), d.weight.shape())?;
            d.bias = read_optional(file, index, &format!("{prefix}.bias"), d.bias.len())?;
        }
        Layer::Conv2d(c) => {
            c.weight = read_tensor(file, index, &format!("{prefix}.weight"), c.weight.shape())?;
            c.bias = read_optional(file, index, &format!("{prefix}.bias"), c.bias.len())?;
        }
        Layer::BatchNorm(b) => {
            let n = b.gamma.len();
            let vec = |suffix: &str| -> Result<Vec<f32>> {
                Ok(
                    read_tensor(file, index, &format!("{prefix}.{suffix}"), &[n])?
                        .into_parts()
                        .1,
                )
            };
            b.gamma = vec("weight")?;
            b.beta = vec("bias")?;
            b.mean = vec("running_mean")?;
            b.var = vec("running_var")?;
        }
        _ => {}
    }
    Ok(out)
}

/// A bias of length `n`; zeros when the file has none (`bias=False`).
fn read_optional(file: &SafeTensors<'_>, index: usize, name: &str, n: usize) -> Result<Vec<f32>> {
    if file.tensor(name).is_err() {
        return Ok(vec![0.0; n]);
    }
    Ok(read_tensor(file, index, name, &[n])?.into_parts().1)
}

/// Tensor `name`, which must have `shape`, as `f32`.
fn read_tensor(
    file: &SafeTensors<'_>,
    index: usize,
    name: &str,
    shape: &[usize],
) -> Result<Tensor> {
    let view = file.tensor(name).map_err(|_| Error::Weight {
        name: name.to_string(),
        problem: "not found in the file",
    })?;
    if view.shape() != shape {
        return Err(Error::ShapeMismatch {
            layer: index,
            expected: shape.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    let raw = view.data();
    let data: Vec<f32> = match view.dtype() {
        Dtype::F32 => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Dtype::F16 => raw
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::BF16 => raw
            .chunks_exact(2)
            .map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        _ => {
            return Err(Error::Weight {
                name: name.to_string(),
                problem: "element type is not f32, f64, f16 or bf16",
            });
        }
    };
    Tensor::new(shape.to_vec(), data).map_err(|_| Error::Weight {
        name: name.to_string(),
        problem: "data length does not match the shape",
    })
}

/// The distinct prefixes (before the last `.`) of `names`, in natural order.
fn auto_prefixes(names: &[&str]) -> Vec<String> {
    let mut prefixes: Vec<String> = names
        .iter()
        .filter_map(|n| n.rsplit_once('.').map(|(p, _)| p.to_string()))
        .collect();
    prefixes.sort_by(|a, b| natural_cmp(a, b).then_with(|| a.cmp(b)));
    prefixes.dedup();
    prefixes
}

/// Compares strings with digit runs taken as numbers (`fc2 < fc10`).
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                // Compare as numbers without parsing: strip leading zeros,
                // then longer is larger, then lexicographic.
                let na = trim_zeros(&a[..da]);
                let nb = trim_zeros(&b[..db]);
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let k = d.iter().take_while(|&&c| c == b'0').count();
    &d[k..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let names = [
            "features.10.weight",
            "fc1.bias",
            "features.2.weight",
            "features.2.bias",
            "conv2.weight",
            "conv1.weight",
            "features.1.num_batches_tracked",
        ];
        assert_eq!(
            auto_prefixes(&names),
            [
                "conv1",
                "conv2",
                "fc1",
                "features.1",
                "features.2",
                "features.10"
            ]
        );
        assert_eq!(natural_cmp("a007", "a7"), Ordering::Equal);
        assert_eq!(natural_cmp("fc2", "fc10"), Ordering::Less);
    }
}

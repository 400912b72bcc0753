//! The public entry points ([`from_path`], [`from_bytes`], ...).

use std::path::Path;

use prost::Message;

use super::graph::Importer;
use super::options::{ImportOptions, InputLayout, MAX_MODEL_BYTES, MIN_OPSET};
use crate::error::{DecodeError, Error, Result};
use crate::import::external_data::{ExternalDataSource, ExternalReader, Folder};
use crate::import::onnx_proto::ModelProto;
use crate::import::report::{ImportNote, Imported};
use crate::model::Network;

/// Reads an ONNX model file into a [`Network`]; see [`from_path`].
pub fn from_file(path: impl AsRef<Path>) -> Result<Network> {
    from_file_with(path, ImportOptions::default())
}

/// Reads an ONNX model file into a [`Network`] with `options`; see
/// [`from_path`].
pub fn from_file_with(path: impl AsRef<Path>, options: ImportOptions) -> Result<Network> {
    network_only(from_path(path, options)?)
}

/// Reads an ONNX model file, with external data files (PyTorch's
/// `<model>.onnx.data`) from the model's folder, into a [`Network`] and
/// the [`ImportReport`](crate::import::ImportReport) of what was dropped or folded.
///
/// External data locations must stay inside the model's folder (no
/// absolute path, no `..`, no symbolic link out of it) and add up to at
/// most [`ImportOptions::max_external_bytes`]; see [`Folder`].
///
/// # Errors
/// [`Error::Io`] when the model or a data file cannot be read, and those
/// of [`from_bytes`].
pub fn from_path(path: impl AsRef<Path>, options: ImportOptions) -> Result<Imported> {
    let path = path.as_ref();
    let len = std::fs::metadata(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if len > MAX_MODEL_BYTES as u64 {
        return Err(Error::Decode {
            what: "onnx model",
            reason: DecodeError::TooLarge {
                len,
                limit: MAX_MODEL_BYTES as u64,
            },
        });
    }
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut folder = Folder::of_model(path);
    from_bytes_with_source(&bytes, &mut folder, options)
}

/// Reads ONNX model bytes into a [`Network`].
///
/// The network's input shape is the graph input's shape without the batch
/// dimension (`[C, H, W]` or `[F]`). Weights in external data files are
/// refused here (the error says so): use [`from_path`] or
/// [`from_bytes_with_source`].
///
/// # Errors
/// [`Error::Decode`] when the bytes are not an ONNX protobuf,
/// [`Error::InvalidParameter`] for opsets below 11,
/// [`Error::UnsupportedOperator`] naming the first operator the IR does not
/// have (and what to do), [`Error::ImportNode`] / [`Error::ImportGraph`]
/// for attribute values or graph shapes the IR cannot express,
/// [`Error::Weight`] for unreadable initializers,
/// [`Error::ShapeMismatch`] / [`Error::InvalidLayer`] when the shapes do
/// not chain, and [`Error::BudgetExceeded`] when one sample's activations
/// exceed the budget ([`ImportOptions::budget`]). A model that scales its
/// data input (a Keras `Rescaling` or `Normalization` layer) gives
/// [`Error::UnsupportedOperator`] here and in the other functions that
/// return the [`Network`] alone: [`from_path`] and
/// [`from_bytes_with_source`] import it, with the input normaliser in their
/// report.
pub fn from_bytes(bytes: &[u8]) -> Result<Network> {
    from_bytes_with(bytes, ImportOptions::default())
}

/// Reads ONNX model bytes into a [`Network`] with `options`; see
/// [`from_bytes`].
pub fn from_bytes_with(bytes: &[u8], options: ImportOptions) -> Result<Network> {
    network_only(import(bytes, None, options)?)
}

/// Reads ONNX model bytes whose external data come from `source` (a
/// [`Folder`], a `HashMap<String, Vec<u8>>` of files, or the caller's own
/// [`ExternalDataSource`]) into a [`Network`] and its [`ImportReport`](crate::import::ImportReport).
///
/// # Errors
/// Those of [`from_bytes`] and of the source.
pub fn from_bytes_with_source(
    bytes: &[u8],
    source: &mut dyn ExternalDataSource,
    options: ImportOptions,
) -> Result<Imported> {
    import(bytes, Some(source), options)
}

/// The network of `imported`, refused when the client has a part to play
/// that only the report tells (an input normaliser).
fn network_only(imported: Imported) -> Result<Network> {
    for note in imported.report.notes {
        if let ImportNote::InputNormalizer { ops, nodes, .. } = note {
            return Err(Error::UnsupportedOperator {
                op_type: ops.into_iter().next().unwrap_or_default(),
                node: nodes.into_iter().next().unwrap_or_default(),
                hint: "a scaling of the data input (a Keras Rescaling or Normalization layer) is \
                       imported by from_path or from_bytes_with_source: their ImportReport \
                       carries the input normaliser the client applies before encryption",
            });
        }
    }
    Ok(imported.network)
}

/// Decodes and converts.
pub(super) fn import(
    bytes: &[u8],
    source: Option<&mut dyn ExternalDataSource>,
    options: ImportOptions,
) -> Result<Imported> {
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
    let external = ExternalReader::new(source, options.max_external_bytes);
    // The budget is checked on the network before anything sized by its
    // input is allocated.
    from_model(&model, options, external)
}

/// Converts a decoded model.
fn from_model(
    model: &ModelProto,
    options: ImportOptions,
    external: ExternalReader<'_>,
) -> Result<Imported> {
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
    let mut importer = Importer::new(graph, external)?;
    importer.options = options;
    importer.nhwc_input = match options.input_layout {
        InputLayout::Nhwc => true,
        InputLayout::Nchw => false,
        InputLayout::Auto => model
            .producer_name
            .as_deref()
            .is_some_and(|p| p.starts_with("tf2onnx") || p.starts_with("keras2onnx")),
    };
    importer.run()
}

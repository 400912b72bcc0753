//! What an import changed or assumed, for the user to read.

use std::fmt;

use crate::data::Normalizer;
use crate::model::Network;

/// An imported network with the report of its import.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The network.
    pub network: Network,
    /// What the import dropped, folded or assumed.
    pub report: ImportReport,
}

/// The notes of one import, in graph order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// The notes.
    pub notes: Vec<ImportNote>,
}

impl ImportReport {
    /// Whether a final `Softmax` / `LogSoftmax` was dropped (the network
    /// returns logits).
    pub fn dropped_softmax(&self) -> bool {
        self.notes
            .iter()
            .any(|n| matches!(n, ImportNote::DroppedFinalSoftmax { .. }))
    }

    /// The normaliser the client applies to each raw sample before
    /// encryption, when the model scaled its input itself (a Keras
    /// `Rescaling` or `Normalization` layer; see
    /// [`ImportNote::InputNormalizer`]).
    pub fn input_normalizer(&self) -> Option<&Normalizer> {
        self.notes.iter().find_map(|n| match n {
            ImportNote::InputNormalizer { normalizer, .. } => Some(normalizer),
            _ => None,
        })
    }
}

/// One thing an import did that the user should know.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ImportNote {
    /// The graph's last node, a `Softmax` or `LogSoftmax` over the classes,
    /// was skipped: the network returns the logits. The predicted class
    /// (argmax) is unchanged; the scores are not probabilities.
    DroppedFinalSoftmax {
        /// `Softmax` or `LogSoftmax`.
        op_type: String,
        /// The node's name.
        node: String,
    },
    /// The model takes channels-last (NHWC) images; the network takes the
    /// same images channels-first (`[C, H, W]`). With one channel the
    /// memory order is the same; otherwise clients transpose `[H, W, C]`
    /// samples to `[C, H, W]` before encryption.
    NhwcInput {
        /// The model's per-sample input `[H, W, C]`.
        hwc: [usize; 3],
        /// What it became: the NHWC -> NCHW `Transpose`, the `Reshape`
        /// tf2onnx writes for it when C = 1, or a Keras `Flatten` whose
        /// order was folded into the next dense layer.
        how: NhwcFold,
    },
    /// Constant `Mul` / `Add` / `Sub` / `Div` nodes on the data input (a
    /// Keras `Rescaling` or `Normalization` layer, as tf2onnx writes it)
    /// were taken out of the network: it takes the scaled input, and the
    /// client applies `normalizer` (`x * scale + offset` written as
    /// `(x - mean) / std`) to each raw sample before encryption, at no HE
    /// cost. Skip it only if your samples are already scaled that way.
    InputNormalizer {
        /// The op types of the nodes taken out, in graph order.
        ops: Vec<String>,
        /// Their names.
        nodes: Vec<String>,
        /// What the client applies.
        normalizer: Normalizer,
    },
    /// Weights were read from external data files next to the model.
    ExternalData {
        /// The files (locations relative to the model's folder).
        files: Vec<String>,
        /// Bytes read.
        bytes: u64,
    },
}

/// How an NHWC input was brought to the IR's NCHW order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NhwcFold {
    /// A `Transpose [0, 3, 1, 2]` at the input was absorbed.
    Transpose,
    /// A `Reshape [-1, 1, H, W]` of a one-channel input (tf2onnx's form of
    /// the transpose when C = 1) was absorbed.
    Reshape,
    /// A Keras `Flatten` of the input: its `(h, w, c)` order was folded into
    /// the first dense layer's columns.
    Flatten,
}

impl fmt::Display for ImportNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportNote::DroppedFinalSoftmax { op_type, node } => write!(
                f,
                "dropped the final {op_type} ({node}): the network returns logits; the predicted \
                 class (argmax) is unchanged, the scores are not probabilities (apply {op_type} \
                 after decryption if they are needed)"
            ),
            ImportNote::NhwcInput {
                hwc: [h, w, c],
                how,
            } => {
                let how = match how {
                    NhwcFold::Transpose => "its NHWC->NCHW Transpose was absorbed",
                    NhwcFold::Reshape => "its Reshape to [-1, 1, H, W] (one channel) was absorbed",
                    NhwcFold::Flatten => {
                        "its Flatten order (h, w, c) was folded into the first dense layer"
                    }
                };
                write!(
                    f,
                    "the model takes NHWC input [{h}, {w}, {c}]; the network takes [C, H, W] = \
                     [{c}, {h}, {w}] ({how}){}",
                    if *c == 1 {
                        "; with one channel the pixel order is the same"
                    } else {
                        "; transpose samples to channels-first before encryption"
                    }
                )
            }
            ImportNote::InputNormalizer {
                ops,
                nodes,
                normalizer,
            } => write!(
                f,
                "took the input scaling {} ({}) out of the network: apply its normaliser (mean \
                 {}, std {}) to each raw sample before encryption \
                 (ImportReport::input_normalizer)",
                ops.join(" -> "),
                nodes.join(", "),
                Values(normalizer.mean()),
                Values(normalizer.std())
            ),
            ImportNote::ExternalData { files, bytes } => write!(
                f,
                "read {bytes} bytes of weights from external data: {}",
                files.join(", ")
            ),
        }
    }
}

/// Statistics, shown as one value when they are all equal.
struct Values<'a>(&'a [f32]);

impl fmt::Display for Values<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [first, rest @ ..] if rest.iter().all(|v| v == first) => write!(f, "{first}"),
            [first, .., last] => write!(f, "{first}..{last} ({} values)", self.0.len()),
            _ => write!(f, "-"),
        }
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.notes.is_empty() {
            return write!(f, "imported as is");
        }
        for (i, n) in self.notes.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "- {n}")?;
        }
        Ok(())
    }
}

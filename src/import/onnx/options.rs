//! The caller's choices ([`ImportOptions`], [`InputLayout`]) and the
//! importer's size limits.

/// Largest ONNX file [`super::from_bytes`] accepts (protobuf's own limit is 2 GiB).
pub const MAX_MODEL_BYTES: usize = 1 << 31;

/// Lowest default-domain opset read.
pub(super) const MIN_OPSET: i64 = 11;

/// Default of [`ImportOptions::max_external_bytes`]: 1 GiB.
pub const DEFAULT_MAX_EXTERNAL_BYTES: u64 = 1 << 30;

/// Choices for the `*_with` importers and [`super::from_path`].
///
/// ```
/// let mut options = mofhei::import::onnx::ImportOptions::default();
/// options.drop_final_softmax = false; // refuse a final Softmax instead
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Skip a `Softmax` / `LogSoftmax` over the features when it is the
    /// graph's last node (Keras classifiers and the PyTorch MNIST example
    /// end in one; the IR has no softmax). The imported network then
    /// returns the logits: the predicted class (argmax) is the same, the
    /// values are not; the [`ImportReport`](crate::import::ImportReport) says so. Default `true`;
    /// `false` refuses it with [`Error::UnsupportedOperator`].
    pub drop_final_softmax: bool,
    /// How a 4-d data input is laid out; see [`InputLayout`]. Default
    /// [`InputLayout::Auto`].
    pub input_layout: InputLayout,
    /// Most bytes read from external data files over the whole model
    /// (default [`DEFAULT_MAX_EXTERNAL_BYTES`]).
    pub max_external_bytes: u64,
    /// Limits on what one sample of the imported network may allocate
    /// (activations and convolution scratch, [`crate::Budget`]); checked
    /// after import, before the network is returned.
    pub budget: crate::Budget,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            drop_final_softmax: true,
            input_layout: InputLayout::Auto,
            max_external_bytes: DEFAULT_MAX_EXTERNAL_BYTES,
            budget: crate::Budget::default(),
        }
    }
}

/// The layout of a 4-d data input `[N, d1, d2, d3]`.
///
/// It matters only when the input is flattened straight into a dense layer
/// (a Keras MLP on `[28, 28, 1]` images): read as NHWC, the network takes
/// `[C, H, W]` samples and the dense layer's columns are reordered to
/// match. Convolutional graphs state their layout themselves (tf2onnx
/// writes a `Transpose [0, 3, 1, 2]`, or a `Reshape [-1, 1, H, W]` when
/// C = 1, both absorbed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputLayout {
    /// NHWC when the model was written by tf2onnx / keras2onnx (its
    /// `producer_name`), NCHW otherwise.
    #[default]
    Auto,
    /// `[N, C, H, W]` (PyTorch).
    Nchw,
    /// `[N, H, W, C]` (TensorFlow / Keras).
    Nhwc,
}

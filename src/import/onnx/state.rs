//! The types the importer's state ([`super::graph::Importer`]) holds,
//! defined apart from the logic that fills them (constant folding, input
//! scaling, NHWC handling), so that the graph walk imports no file that
//! imports it.

/// Largest single dimension, kernel size, stride or padding accepted.
pub(super) const MAX_DIM: i64 = 1 << 24;

/// A constant tensor: initializer, `Constant` output or folded shape value.
#[derive(Debug, Clone)]
pub(super) enum Const {
    /// Floating-point values (any float type, converted to `f32`).
    F32 { dims: Vec<usize>, data: Vec<f32> },
    /// Integer values (any integer type, widened to `i64`).
    I64 { dims: Vec<usize>, data: Vec<i64> },
}

/// The affine map of the constant nodes taken off the data input so far.
#[derive(Debug, Clone)]
pub(super) struct InputAffine {
    /// The axis of the per-sample shape the values run along (`None`:
    /// one value for every element).
    pub(super) axis: Option<usize>,
    /// Multiplier, one value or one per index of `axis`.
    pub(super) scale: Vec<f32>,
    /// Added after the multiplier, as long as `scale`.
    pub(super) offset: Vec<f32>,
    /// The first node taken (for error messages).
    pub(super) first: usize,
    /// The op types and names of the nodes taken, in graph order.
    pub(super) ops: Vec<String>,
    pub(super) nodes: Vec<String>,
}

/// Why a pending NHWC Transpose failed to fold.
pub(super) const NHWC_PROBLEM: &str =
    "a Transpose to NHWC must be followed by Flatten (or Reshape to flat) and Gemm/MatMul";

/// A pending NCHW -> NHWC `Transpose` (see [`Importer::nhwc`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Nhwc {
    /// The Transpose node.
    pub(super) node: usize,
    /// The `[C, H, W]` shape it transposed.
    pub(super) chw: (usize, usize, usize),
    /// Whether the Flatten after it has been seen.
    pub(super) flat: bool,
}

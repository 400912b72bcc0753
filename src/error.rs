//! The crate's one error type.
//!
//! Every fallible operation in mofhei returns [`Result<T>`](Result). Running
//! out of levels, a missing rotation key, mismatched scales or an input of the
//! wrong shape are ordinary outcomes with a typed variant, never a panic.
//! Variants carry structured fields (levels, steps, sizes) rather than
//! free-form text so callers can match on them.
//!
//! The HE layer has its own [`he::Error`] (so a backend
//! needs nothing from the rest of the crate); each of its variants converts
//! to the variant of the same name and fields here, so `?` carries HE errors
//! up unchanged and callers match on one type.

pub use crate::he::error::DecodeError;
use crate::he::{self, KeyId, Level, OpKind, Rotation};

/// The result type of every fallible operation in the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error mofhei returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- HE layer -------------------------------------------------------
    /// An operation needs a level the ciphertext no longer has.
    #[error("{op} needs level >= {needed} but the ciphertext is at level {level}")]
    LevelExhausted {
        /// The operation that was attempted.
        op: OpKind,
        /// The operand's level.
        level: Level,
        /// The lowest level at which the operation can run.
        needed: Level,
    },
    /// Two operands are at different levels.
    #[error("{op}: operands at different levels ({left} vs {right}); drop the higher one first")]
    LevelMismatch {
        /// The operation that was attempted.
        op: OpKind,
        /// Level of the left operand.
        left: Level,
        /// Level of the right operand.
        right: Level,
    },
    /// A requested level is above the parameters' maximum (or above the operand's).
    #[error("{op}: level {requested} is out of range (maximum {max})")]
    LevelOutOfRange {
        /// The operation that was attempted.
        op: OpKind,
        /// The requested level.
        requested: Level,
        /// The highest level allowed here.
        max: Level,
    },
    /// Two operands have scales that differ.
    #[error("{op}: scales differ (2^{left_log2:.3} vs 2^{right_log2:.3})")]
    ScaleMismatch {
        /// The operation that was attempted.
        op: OpKind,
        /// log2 of the left operand's scale.
        left_log2: f64,
        /// log2 of the right operand's scale.
        right_log2: f64,
    },
    /// The scale would exceed what the remaining modulus can hold.
    #[error(
        "{op}: scale 2^{scale_log2:.1} leaves too little room in a modulus of 2^{modulus_log2:.1} at level {level}"
    )]
    ScaleOverflow {
        /// The operation that was attempted.
        op: OpKind,
        /// log2 of the resulting scale.
        scale_log2: f64,
        /// log2 of the ciphertext modulus at that level.
        modulus_log2: f64,
        /// The level.
        level: Level,
    },
    /// A rotation was requested for which no Galois key was generated.
    #[error("no rotation key for step {step}; add it to the key requirements")]
    MissingRotationKey {
        /// The step that was requested.
        step: Rotation,
    },
    /// Conjugation was requested but no conjugation key was generated.
    #[error("no conjugation key; enable conjugation in the key requirements")]
    MissingConjugationKey,
    /// Relinearisation was requested but no relinearisation key was generated.
    #[error("no relinearization key; enable relinearization in the key requirements")]
    MissingRelinearizationKey,
    /// An operation expected a ciphertext of a given size (number of polynomials).
    #[error("{op}: ciphertext has {size} polynomials, expected {expected}")]
    CiphertextSize {
        /// The operation that was attempted.
        op: OpKind,
        /// The ciphertext's size.
        size: usize,
        /// The size the operation needs.
        expected: usize,
    },
    /// More values were given than the plaintext has slots.
    #[error("{given} values do not fit in {slots} slots")]
    TooManyValues {
        /// Number of values given.
        given: usize,
        /// Number of slots.
        slots: usize,
    },
    /// A value cannot be represented (NaN, infinite, or too large for the scale).
    #[error("{op}: value {value} cannot be encoded")]
    ValueOutOfRange {
        /// The operation that was attempted.
        op: OpKind,
        /// The value.
        value: f64,
    },
    /// Operands or keys belong to different parameter sets.
    #[error("{op}: operands or keys come from different parameters")]
    ParameterMismatch {
        /// The operation that was attempted.
        op: OpKind,
    },
    /// Operands or keys belong to different secret keys (their
    /// [`KeyId`]s differ): checked before any ciphertext work.
    #[error("{op}: operands or keys belong to different secret keys (key {expected} vs {found})")]
    KeyMismatch {
        /// The operation that was attempted.
        op: OpKind,
        /// The key id of the first operand, the key set or the secret key.
        expected: KeyId,
        /// The key id of the operand that does not match it.
        found: KeyId,
    },
    /// The scheme cannot do this operation at all.
    #[error("{op} is not supported by the {scheme} scheme")]
    Unsupported {
        /// The operation that was attempted.
        op: OpKind,
        /// Name of the scheme.
        scheme: &'static str,
    },
    /// Parameters fall below 128-bit security per the HomomorphicEncryption.org table.
    #[error(
        "insecure parameters: log2(QP) = {log_qp} exceeds the 128-bit limit of {max_log_qp} for N = 2^{log_n}"
    )]
    InsecureParameters {
        /// log2 of the ring degree.
        log_n: u32,
        /// Total modulus bits requested.
        log_qp: u32,
        /// The largest total allowed at this degree.
        max_log_qp: u32,
    },
    /// A parameter is out of its valid range.
    #[error("invalid parameter {name}: {value} (allowed: {allowed})")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// The offending value.
        value: i64,
        /// What is allowed.
        allowed: &'static str,
    },

    // ---- bytes and files ------------------------------------------------
    /// Serialised bytes could not be read.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: DecodeError,
    },
    /// Serialisation failed.
    #[error("cannot encode {what}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
    },
    /// Well-formed bytes that belong to another plan, parameter set or key
    /// set than the one they were presented to (e.g. an encrypted output of
    /// another plan handed to a client).
    #[error("{what} belongs to another {context}")]
    WrongContext {
        /// What was presented (`"encrypted output"`, `"client view"`, ...).
        what: &'static str,
        /// What it does not belong to.
        context: Context,
    },
    /// An I/O error, with the path when known.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file concerned.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    // ---- networks -------------------------------------------------------
    /// A tensor or layer has the wrong shape.
    #[error("layer {layer}: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// Index of the layer (or input) concerned.
        layer: usize,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A layer's configuration is invalid (zero stride, kernel larger than input, ...).
    #[error("layer {layer}: invalid {what} (value {value})")]
    InvalidLayer {
        /// Index of the layer.
        layer: usize,
        /// Which property is invalid.
        what: &'static str,
        /// The offending value.
        value: i64,
    },
    /// A layer kind cannot be handled by this component.
    #[error("layer {layer} ({kind}) is not supported by {by}")]
    UnsupportedLayer {
        /// Index of the layer.
        layer: usize,
        /// The layer's kind.
        kind: &'static str,
        /// The component that refused it.
        by: &'static str,
    },
    /// An imported model uses an operator mofhei does not know.
    #[error("unsupported operator {op_type} in node {node}: {hint}")]
    UnsupportedOperator {
        /// The operator type as written in the file.
        op_type: String,
        /// The node's name or index.
        node: String,
        /// What to do about it (an import option, an export flag, or where
        /// the supported operators are listed).
        hint: &'static str,
    },
    /// A data set is malformed.
    #[error("data set {what}: {reason}")]
    Dataset {
        /// Which data set / file.
        what: &'static str,
        /// What is wrong.
        reason: DecodeError,
    },
    /// The HE library under a backend adapter (e.g. `fhe` under `bfv`) failed
    /// in a way the adapter's own checks did not foresee; the library's error
    /// is the source.
    #[error("{op}: the {scheme} backend's library failed")]
    Backend {
        /// The operation that was attempted.
        op: OpKind,
        /// Name of the scheme.
        scheme: &'static str,
        /// The library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A quantised layer's worst-case accumulator does not fit the plaintext
    /// modulus: values in `[-(t-1)/2, (t-1)/2]` need `t > 2 * bound`.
    #[error(
        "layer {layer}: worst-case accumulator {bound} overflows plaintext modulus {plaintext_modulus} (needs t > 2 * bound)"
    )]
    AccumulatorOverflow {
        /// Index of the layer (in the network) whose accumulator overflows.
        layer: usize,
        /// The worst-case absolute value of that layer's integers.
        bound: u128,
        /// The plaintext modulus it was checked against.
        plaintext_modulus: u64,
    },

    /// A size computed from outside input (a network, a model file, a data
    /// file) exceeds its [`crate::Budget`]; refused before anything of that
    /// size is allocated. Raise the named budget field to allow it.
    #[error("{what} needs {needed}, over the budget of {limit}")]
    BudgetExceeded {
        /// The quantity (e.g. `"activation elements"`, `"compile terms"`).
        what: &'static str,
        /// What the input asks for (`u64::MAX` when the size overflows).
        needed: u64,
        /// The budget's limit.
        limit: u64,
    },

    // ---- model import ---------------------------------------------------
    /// A node of an imported model cannot be mapped onto the network IR
    /// (an attribute value the IR cannot express, a branch in the graph, a
    /// weight missing or of the wrong kind).
    #[error("cannot import node {node} ({op_type}): {problem}")]
    ImportNode {
        /// The node's name (or `#index` when it has none).
        node: String,
        /// The node's operator type.
        op_type: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// An imported model's graph as a whole cannot be mapped (no data
    /// input, several outputs, an input shape the IR cannot hold).
    #[error("cannot import graph: {problem}")]
    ImportGraph {
        /// What is wrong.
        problem: &'static str,
    },
    /// A named weight tensor is missing, has an unsupported element type or
    /// holds the wrong amount of data.
    #[error("weight {name}: {problem}")]
    Weight {
        /// The tensor's name in the file.
        name: String,
        /// What is wrong.
        problem: &'static str,
    },
    // ---- added in the error reorganisation -----------------------------
    /// A list of operands (a sum, a dot product) is empty.
    #[error("{op}: no operands")]
    EmptyOperands {
        /// The operation that was attempted.
        op: OpKind,
    },
    /// The two sides of a dot product have different lengths.
    #[error("{op}: {left} ciphertexts but {right} weights")]
    OperandCountMismatch {
        /// The operation that was attempted.
        op: OpKind,
        /// Number of ciphertexts.
        left: usize,
        /// Number of plaintexts or scalars.
        right: usize,
    },
    /// A term of a dot product names a ciphertext outside the list given.
    #[error("{op}: term index {index} is out of range ({len} ciphertexts)")]
    TermIndexOutOfRange {
        /// The operation that was attempted.
        op: OpKind,
        /// The index named by the term.
        index: usize,
        /// Number of ciphertexts given.
        len: usize,
    },
    /// An internal invariant does not hold: a bug in mofhei, not in the
    /// caller's input.
    #[error("internal error: {invariant}")]
    Internal {
        /// The invariant that does not hold.
        invariant: &'static str,
    },
    /// A list that needs at least one element is empty.
    #[error("no {what} given")]
    EmptyInput {
        /// What is missing (`"batches"`, `"candidates"`, ...).
        what: &'static str,
    },
    /// A real-valued argument is out of its valid range.
    #[error("invalid {name}: {value} (allowed: {allowed})")]
    InvalidValue {
        /// The argument's name.
        name: &'static str,
        /// The offending value.
        value: f64,
        /// What is allowed.
        allowed: &'static str,
    },
    /// An index names an element past the end of its list.
    #[error("{what} index {index} is out of range (length {len})")]
    IndexOutOfRange {
        /// What the index points into.
        what: &'static str,
        /// The index.
        index: usize,
        /// The list's length.
        len: usize,
    },
    /// A number of items differs from the number expected.
    #[error("{found} {what}, expected {expected}")]
    CountMismatch {
        /// What is counted.
        what: &'static str,
        /// The number expected.
        expected: usize,
        /// The number found.
        found: usize,
    },
    /// Two arguments cannot be used together.
    #[error("{what} cannot be used with {with}")]
    Incompatible {
        /// The first argument.
        what: &'static str,
        /// The argument it does not go with (and what to do instead).
        with: &'static str,
    },
    /// An in-memory plan is not internally consistent
    /// ([`crate::plan::Plan::validate`]; a serialised plan that fails the
    /// same checks is an [`Error::Decode`]).
    #[error("inconsistent plan: {reason}")]
    InvalidPlan {
        /// The check that failed.
        reason: PlanError,
    },
    // ---- added by issue 15 (precision) ---------------------------------
    /// The precision a plan asks for cannot be delivered: the scale it needs
    /// (the precision plus the noise of CKKS at this ring degree and depth)
    /// and the integer bits do not fit in one prime of the backend.
    #[error(
        "precision of {requested_bits} bits unreachable at N = 2^{log_n}, depth {depth}: at most {max_bits} bits"
    )]
    PrecisionUnreachable {
        /// Fractional bits requested.
        requested_bits: u32,
        /// The most this ring degree and depth deliver with the backend's
        /// largest prime.
        max_bits: u32,
        /// log2 of the ring degree tried last.
        log_n: u32,
        /// The plan's depth.
        depth: u32,
    },
}

/// Moves an HE-layer error to the crate variant of the same name and fields.
macro_rules! from_he {
    ($e:expr; $($unit:ident),*; $($v:ident { $($f:ident),* }),* $(,)?) => {
        match $e {
            $(he::Error::$unit => Error::$unit,)*
            $(he::Error::$v { $($f),* } => Error::$v { $($f),* },)*
        }
    };
}

/// Every HE-layer error is the crate variant of the same name, so matching
/// on [`Error`] works the same whether the failure came from a backend or
/// from code above it.
impl From<he::Error> for Error {
    fn from(e: he::Error) -> Error {
        from_he!(e;
            MissingConjugationKey, MissingRelinearizationKey;
            LevelExhausted { op, level, needed },
            LevelMismatch { op, left, right },
            LevelOutOfRange { op, requested, max },
            ScaleMismatch { op, left_log2, right_log2 },
            ScaleOverflow { op, scale_log2, modulus_log2, level },
            MissingRotationKey { step },
            CiphertextSize { op, size, expected },
            TooManyValues { given, slots },
            ValueOutOfRange { op, value },
            ParameterMismatch { op },
            KeyMismatch { op, expected, found },
            Unsupported { op, scheme },
            InsecureParameters { log_n, log_qp, max_log_qp },
            InvalidParameter { name, value, allowed },
            Decode { what, reason },
            Encode { what },
            Backend { op, scheme, source },
            BudgetExceeded { what, needed, limit },
            EmptyOperands { op },
            OperandCountMismatch { op, left, right },
            TermIndexOutOfRange { op, index, len },
            Internal { invariant },
        )
    }
}

/// What a [`Error::WrongContext`] artefact does not belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Context {
    /// The plan (its hash differs).
    Plan,
    /// The parameter set (its fingerprint differs).
    Parameters,
    /// The key set (its identifier differs).
    KeySet,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Context::Plan => "plan",
            Context::Parameters => "parameter set",
            Context::KeySet => "key set",
        })
    }
}

/// Why a plan is inconsistent ([`Error::InvalidPlan`]): the check of
/// [`crate::plan::Plan::validate`] that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// The input values are missing or not at the plan's depth.
    InputValues,
    /// A value's level is above the depth.
    LevelAboveDepth,
    /// A wave loads an input twice or a value that is not an input.
    WaveLoads,
    /// A wave ends before it starts or after the last step.
    WaveBounds,
    /// An instruction reads no value.
    InstructionWithoutInputs,
    /// A value is read before it is defined or after it is freed.
    UseOutsideLifetime,
    /// An input is read before the wave that loads it.
    InputBeforeLoad,
    /// The operands of an instruction are at different levels.
    OperandLevels,
    /// A plaintext id is out of range.
    PlainId,
    /// An instruction rescales a value at level 0.
    LevelExhausted,
    /// A dot product has not one weight or plaintext per input.
    DotTerms,
    /// A rotation has not one output per step.
    RotationOutputs,
    /// A rotate-and-sum count is not a power of two, or its steps overflow.
    RotateSumCount,
    /// A value id is out of range.
    ValueId,
    /// A value is defined twice or at the wrong level.
    OutputRedefined,
    /// A wave frees a value that is not live.
    FreeOfDeadValue,
    /// The waves do not cover every step.
    WavesIncomplete,
    /// The stored op counts are not those of the steps.
    OpCounts,
    /// A returned ciphertext is not a live value.
    OutputValue,
    /// The output map names a ciphertext that is not returned.
    OutputMap,
    /// The output shape's size overflows.
    OutputShape,
    /// The input shape's size overflows.
    InputShape,
    /// The output map has not one entry per output element.
    OutputMapLength,
    /// The input layout names an element outside the input.
    InputLayoutElement,
    /// The integer plan does not match the outputs.
    IntegerPlan,
    /// A slot or plaintext lies beyond the layout's period.
    SlotBeyondPeriod,
    /// The sample count is zero.
    Samples,
    /// The parameters are insecure or do not match the depth.
    Parameters,
    /// An instruction holds a non-finite constant.
    NonFiniteInstruction,
    /// The output map holds a non-finite constant.
    NonFiniteOutputMap,
    /// A plaintext holds a non-finite value.
    NonFinitePlain,
    /// A stored plaintext is all zero or has trailing zeros.
    ZeroPlain,
    /// The packing declared no input layout.
    MissingInputs,
}

impl PlanError {
    /// A short description (also the `what` of the
    /// [`DecodeError::NotConforming`] a serialised plan gets).
    pub fn what(self) -> &'static str {
        match self {
            PlanError::InputValues => "input values",
            PlanError::LevelAboveDepth => "value level above the depth",
            PlanError::WaveLoads => "wave loads",
            PlanError::WaveBounds => "wave bounds",
            PlanError::InstructionWithoutInputs => "instruction without inputs",
            PlanError::UseOutsideLifetime => "value used before definition or after free",
            PlanError::InputBeforeLoad => "input read before its load",
            PlanError::OperandLevels => "operands at different levels",
            PlanError::PlainId => "plaintext id",
            PlanError::LevelExhausted => "level exhausted",
            PlanError::DotTerms => "dot terms",
            PlanError::RotationOutputs => "rotation outputs",
            PlanError::RotateSumCount => "rotate-sum count",
            PlanError::ValueId => "value id",
            PlanError::OutputRedefined => "output redefined or at the wrong level",
            PlanError::FreeOfDeadValue => "free of a dead value",
            PlanError::WavesIncomplete => "waves do not cover every step",
            PlanError::OpCounts => "op counts",
            PlanError::OutputValue => "output value",
            PlanError::OutputMap => "output map",
            PlanError::OutputShape => "output shape",
            PlanError::InputShape => "input shape",
            PlanError::OutputMapLength => "output map length",
            PlanError::InputLayoutElement => "input layout element",
            PlanError::IntegerPlan => "integer plan",
            PlanError::SlotBeyondPeriod => "slot beyond the period",
            PlanError::Samples => "samples (at least one)",
            PlanError::Parameters => "parameters",
            PlanError::NonFiniteInstruction => "non-finite constant in an instruction",
            PlanError::NonFiniteOutputMap => "non-finite output map constant",
            PlanError::NonFinitePlain => "non-finite plaintext value",
            PlanError::ZeroPlain => "plaintext without a non-zero value (or untrimmed)",
            PlanError::MissingInputs => "packing declared no inputs",
        }
    }
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what())
    }
}

impl std::error::Error for PlanError {}

#[cfg(test)]
mod tests;

//! The crate's one error type.
//!
//! Every fallible operation in mofhei returns [`Result<T>`](Result). Running
//! out of levels, a missing rotation key, mismatched scales or an input of the
//! wrong shape are ordinary outcomes with a typed variant, never a panic.
//! Variants carry structured fields (levels, steps, sizes) rather than
//! free-form text so callers can match on them.

use crate::he::{KeyId, Level, Rotation};

/// The result type of every fallible operation in the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an operation on ciphertexts or a network was doing when it failed.
///
/// Used in errors to name the step that could not be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Op {
    /// Encoding values into a plaintext.
    Encode,
    /// Encrypting a plaintext.
    Encrypt,
    /// Decrypting a ciphertext.
    Decrypt,
    /// Ciphertext + ciphertext (or minus).
    Add,
    /// Ciphertext + plaintext or + scalar.
    AddPlain,
    /// Ciphertext x plaintext.
    MulPlain,
    /// Ciphertext x scalar.
    MulScalar,
    /// Ciphertext x ciphertext.
    Mul,
    /// Relinearisation.
    Relinearize,
    /// Rescaling (CKKS) or modulus switching (BFV).
    Rescale,
    /// Dropping levels without rescaling.
    DropLevel,
    /// Slot rotation.
    Rotate,
    /// Complex conjugation.
    Conjugate,
    /// Key generation.
    KeyGen,
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Op::Encode => "encode",
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
            Op::Add => "add",
            Op::AddPlain => "add_plain",
            Op::MulPlain => "mul_plain",
            Op::MulScalar => "mul_scalar",
            Op::Mul => "mul",
            Op::Relinearize => "relinearize",
            Op::Rescale => "rescale",
            Op::DropLevel => "drop_level",
            Op::Rotate => "rotate",
            Op::Conjugate => "conjugate",
            Op::KeyGen => "keygen",
        };
        f.write_str(s)
    }
}

/// Every error mofhei returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- HE layer -------------------------------------------------------
    /// An operation needs a level the ciphertext no longer has.
    #[error("{op} needs level >= {needed} but the ciphertext is at level {level}")]
    LevelExhausted {
        /// The operation that was attempted.
        op: Op,
        /// The operand's level.
        level: Level,
        /// The lowest level at which the operation can run.
        needed: Level,
    },
    /// Two operands are at different levels.
    #[error("{op}: operands at different levels ({left} vs {right}); drop the higher one first")]
    LevelMismatch {
        /// The operation that was attempted.
        op: Op,
        /// Level of the left operand.
        left: Level,
        /// Level of the right operand.
        right: Level,
    },
    /// A requested level is above the parameters' maximum (or above the operand's).
    #[error("{op}: level {requested} is out of range (maximum {max})")]
    LevelOutOfRange {
        /// The operation that was attempted.
        op: Op,
        /// The requested level.
        requested: Level,
        /// The highest level allowed here.
        max: Level,
    },
    /// Two operands have scales that differ.
    #[error("{op}: scales differ (2^{left_log2:.3} vs 2^{right_log2:.3})")]
    ScaleMismatch {
        /// The operation that was attempted.
        op: Op,
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
        op: Op,
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
        op: Op,
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
        op: Op,
        /// The value.
        value: f64,
    },
    /// Operands or keys belong to different parameter sets.
    #[error("{op}: operands or keys come from different parameters")]
    ParameterMismatch {
        /// The operation that was attempted.
        op: Op,
    },
    /// Operands or keys belong to different secret keys (their
    /// [`KeyId`]s differ): checked before any ciphertext work.
    #[error("{op}: operands or keys belong to different secret keys (key {expected} vs {found})")]
    KeyMismatch {
        /// The operation that was attempted.
        op: Op,
        /// The key id of the first operand, the key set or the secret key.
        expected: KeyId,
        /// The key id of the operand that does not match it.
        found: KeyId,
    },
    /// The scheme cannot do this operation at all.
    #[error("{op} is not supported by the {scheme} scheme")]
    Unsupported {
        /// The operation that was attempted.
        op: Op,
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
    /// An argument is empty or out of range.
    #[error("invalid argument {name}: {value}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// The offending value.
        value: f64,
    },
    /// The HE library under a backend adapter (e.g. `fhe` under `bfv`) failed
    /// in a way the adapter's own checks did not foresee; the library's error
    /// is the source.
    #[error("{op}: the {scheme} backend's library failed")]
    Backend {
        /// The operation that was attempted.
        op: Op,
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

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than the allowed limit.
    #[error("input of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The input's length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// The header does not name this type.
    #[error("wrong magic bytes")]
    BadMagic,
    /// The format version is not one this build reads.
    #[error("format version {found} is not supported (this build reads {supported})")]
    Version {
        /// Version found.
        found: u32,
        /// Version supported.
        supported: u32,
    },
    /// The input ended early or is otherwise malformed.
    #[error("malformed input at byte {offset}")]
    Malformed {
        /// Byte offset (approximate) where decoding failed.
        offset: u64,
    },
    /// The decoded value does not fit the parameters it is checked against.
    #[error("does not match the parameters ({what})")]
    NotConforming {
        /// Which property does not match.
        what: &'static str,
    },
    /// Trailing bytes after a complete value.
    #[error("{count} trailing bytes")]
    TrailingBytes {
        /// Number of trailing bytes.
        count: u64,
    },
    /// The bytes are not valid in the named container format.
    #[error("not valid {format}")]
    Invalid {
        /// The format (`"protobuf"`, `"safetensors"`, ...).
        format: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_texts() {
        let e = Error::LevelExhausted {
            op: Op::Rescale,
            level: Level(0),
            needed: Level(1),
        };
        assert_eq!(
            e.to_string(),
            "rescale needs level >= 1 but the ciphertext is at level 0"
        );
        let e = Error::MissingRotationKey { step: Rotation(-3) };
        assert_eq!(
            e.to_string(),
            "no rotation key for step -3; add it to the key requirements"
        );
        let e = Error::ScaleMismatch {
            op: Op::Add,
            left_log2: 40.0,
            right_log2: 80.0,
        };
        assert_eq!(e.to_string(), "add: scales differ (2^40.000 vs 2^80.000)");
        let e = Error::TooManyValues { given: 9, slots: 8 };
        assert_eq!(e.to_string(), "9 values do not fit in 8 slots");
        let e = Error::InsecureParameters {
            log_n: 13,
            log_qp: 300,
            max_log_qp: 218,
        };
        assert_eq!(
            e.to_string(),
            "insecure parameters: log2(QP) = 300 exceeds the 128-bit limit of 218 for N = 2^13"
        );
        let e = Error::LevelMismatch {
            op: Op::Add,
            left: Level(2),
            right: Level(1),
        };
        assert_eq!(
            e.to_string(),
            "add: operands at different levels (2 vs 1); drop the higher one first"
        );
        let e = Error::Decode {
            what: "ciphertext",
            reason: DecodeError::Version {
                found: 9,
                supported: 1,
            },
        };
        assert_eq!(
            e.to_string(),
            "cannot decode ciphertext: format version 9 is not supported (this build reads 1)"
        );
        let e = Error::ShapeMismatch {
            layer: 3,
            expected: vec![1, 28, 28],
            found: vec![1, 32, 32],
        };
        assert_eq!(
            e.to_string(),
            "layer 3: expected shape [1, 28, 28], found [1, 32, 32]"
        );
        let e = Error::Unsupported {
            op: Op::Conjugate,
            scheme: "bfv",
        };
        assert_eq!(
            e.to_string(),
            "conjugate is not supported by the bfv scheme"
        );
        let e = Error::Backend {
            op: Op::Mul,
            scheme: "bfv",
            source: "boom".into(),
        };
        assert_eq!(e.to_string(), "mul: the bfv backend's library failed");
        assert_eq!(
            std::error::Error::source(&e).map(|s| s.to_string()),
            Some("boom".to_string())
        );
        let e = Error::AccumulatorOverflow {
            layer: 2,
            bound: 40000,
            plaintext_modulus: 65537,
        };
        assert_eq!(
            e.to_string(),
            "layer 2: worst-case accumulator 40000 overflows plaintext modulus 65537 (needs t > 2 * bound)"
        );
        let e = Error::ImportNode {
            node: "/conv1/Conv".into(),
            op_type: "Conv".into(),
            problem: "group > 1",
        };
        assert_eq!(
            e.to_string(),
            "cannot import node /conv1/Conv (Conv): group > 1"
        );
        let e = Error::ImportGraph {
            problem: "several outputs",
        };
        assert_eq!(e.to_string(), "cannot import graph: several outputs");
        let e = Error::Weight {
            name: "fc1.bias".into(),
            problem: "not found",
        };
        assert_eq!(e.to_string(), "weight fc1.bias: not found");
        let e = Error::UnsupportedOperator {
            op_type: "Erf".into(),
            node: "/Erf".into(),
            hint: "see docs/import.md",
        };
        assert_eq!(
            e.to_string(),
            "unsupported operator Erf in node /Erf: see docs/import.md"
        );
        let e = Error::Decode {
            what: "onnx model",
            reason: DecodeError::Invalid { format: "protobuf" },
        };
        assert_eq!(
            e.to_string(),
            "cannot decode onnx model: not valid protobuf"
        );
        let e = Error::BudgetExceeded {
            what: "activation elements",
            needed: 1 << 40,
            limit: 1 << 28,
        };
        assert_eq!(
            e.to_string(),
            "activation elements needs 1099511627776, over the budget of 268435456"
        );
        let e = Error::MissingRelinearizationKey;
        assert_eq!(
            e.to_string(),
            "no relinearization key; enable relinearization in the key requirements"
        );
    }
}

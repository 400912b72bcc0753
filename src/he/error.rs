//! The errors of the HE layer.
//!
//! Every fallible operation of [`HeScheme`](super::HeScheme) and its backends
//! returns [`Result<T>`](Result). Running out of levels, a missing rotation
//! key, mismatched scales or bytes that do not decode are ordinary outcomes
//! with a typed variant naming the [`OpKind`] that failed, never a panic.
//! The crate's own error type converts from this one variant for variant
//! (`From<he::Error> for mofhei::Error`), so `?` works across the layers.

use super::{KeyId, Level, OpKind, Rotation};

/// The result type of the HE layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error of the HE layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// A size computed from outside input (a network, a model file, a data
    /// file) exceeds its budget; refused before anything of that
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

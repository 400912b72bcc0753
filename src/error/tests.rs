use super::*;

#[test]
fn display_texts() {
    let e = Error::LevelExhausted {
        op: OpKind::Rescale,
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
        op: OpKind::CtCtAdd,
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
        op: OpKind::CtCtAdd,
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
        op: OpKind::Conjugate,
        scheme: "bfv",
    };
    assert_eq!(
        e.to_string(),
        "conjugate is not supported by the bfv scheme"
    );
    let e = Error::Backend {
        op: OpKind::CtCtMul,
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

#[test]
fn he_errors_keep_their_variant() {
    let e: Error = he::Error::MissingRotationKey { step: Rotation(5) }.into();
    assert!(matches!(e, Error::MissingRotationKey { step: Rotation(5) }));
    let e: Error = he::Error::Decode {
        what: "ciphertext",
        reason: DecodeError::BadMagic,
    }
    .into();
    assert!(matches!(
        e,
        Error::Decode {
            what: "ciphertext",
            reason: DecodeError::BadMagic
        }
    ));
    let e: Error = he::Error::OperandCountMismatch {
        op: OpKind::CtPtMul,
        left: 3,
        right: 2,
    }
    .into();
    assert_eq!(e.to_string(), "mul_plain: 3 ciphertexts but 2 weights");
    let e: Error = he::Error::EmptyOperands {
        op: OpKind::CtCtAdd,
    }
    .into();
    assert_eq!(e.to_string(), "add: no operands");
    let e: Error = he::Error::Internal { invariant: "x" }.into();
    assert_eq!(e.to_string(), "internal error: x");
    // The same text on both layers.
    let he_e = he::Error::LevelExhausted {
        op: OpKind::Rescale,
        level: Level(0),
        needed: Level(1),
    };
    let text = he_e.to_string();
    assert_eq!(Error::from(he_e).to_string(), text);
}

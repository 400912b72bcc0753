//! ONNX and safetensors import against the fixtures in `tests/data/onnx/`
//! (made by `tests/data/onnx/make_fixtures.py`; format in
//! `tests/data/README.md`).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions: a failed unwrap is a failed test"
)]

use std::path::PathBuf;

use mofhei::Error;
use mofhei::error::DecodeError;
use mofhei::import::onnx;
use mofhei::import::safetensors::{WeightNames, load_weights, load_weights_file};
use mofhei::model::{Layer, Network, Tensor};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/onnx")
        .join(name)
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

/// A reference input/output pair stored by the fixture script.
struct Reference {
    input: Tensor,
    output: Tensor,
}

fn reference(name: &str) -> Reference {
    let text = std::fs::read_to_string(data(name)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tensor = |shape: &str, values: &str| {
        let shape: Vec<usize> = v[shape]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let values: Vec<f32> = v[values]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_f64().unwrap() as f32)
            .collect();
        Tensor::new(shape, values).unwrap()
    };
    Reference {
        input: tensor("input_shape", "input"),
        output: tensor("output_shape", "output"),
    }
}

/// Checks `net` on the stored input against onnxruntime's output:
/// `|ours - ref| <= 1e-5 * max(1, |ref|)` per element (absolute for
/// |ref| <= 1, relative above). Returns the largest absolute difference.
fn assert_matches_onnxruntime(net: &Network, reference_file: &str) -> f32 {
    let r = reference(reference_file);
    assert_output_matches(net, &r.input, &r.output, reference_file)
}

fn assert_output_matches(
    net: &Network,
    input: &Tensor,
    expected: &Tensor,
    reference_file: &str,
) -> f32 {
    let r = Reference {
        input: input.clone(),
        output: expected.clone(),
    };
    let ours = net.forward(&r.input).unwrap();
    assert_eq!(ours.shape(), r.output.shape());
    let mut worst = 0.0f32;
    for (i, (&a, &b)) in ours.data().iter().zip(r.output.data()).enumerate() {
        let diff = (a - b).abs();
        worst = worst.max(diff);
        assert!(
            diff <= 1e-5 * b.abs().max(1.0),
            "{reference_file}: element {i}: ours {a}, onnxruntime {b}"
        );
    }
    eprintln!("{reference_file}: largest |ours - onnxruntime| = {worst:e}");
    worst
}

fn kinds(net: &Network) -> Vec<&'static str> {
    net.layers.iter().map(Layer::kind).collect()
}

#[test]
fn lenet_structure_matches_the_pytorch_export() {
    let net = onnx::from_file(data("lenet_opset13.onnx")).unwrap();
    assert_eq!(net.input_shape, [1, 32, 32]);
    assert_eq!(
        kinds(&net),
        [
            "conv2d",
            "relu",
            "maxpool2d",
            "conv2d",
            "relu",
            "maxpool2d",
            "conv2d",
            "relu",
            "flatten",
            "dense",
            "relu",
            "dense"
        ]
    );
    let shapes = net.shapes().unwrap();
    assert_eq!(shapes[2], [6, 14, 14]);
    assert_eq!(shapes[6], [120, 1, 1]);
    assert_eq!(net.output_shape().unwrap(), [10]);
    // Gemm with transB = 1 is PyTorch's [out, in]: taken as is.
    let Layer::Dense(fc1) = &net.layers[9] else {
        panic!("layer 9 is not dense")
    };
    assert_eq!(fc1.weight.shape(), [84, 120]);
    assert_eq!(net.param_count(), 156 + 2416 + 48120 + 10164 + 850);
}

#[test]
fn lenet_logits_match_onnxruntime() {
    let net = onnx::from_file(data("lenet_opset13.onnx")).unwrap();
    let worst = assert_matches_onnxruntime(&net, "lenet_opset13.json");
    assert!(worst < 1e-5, "{worst}");
    // The reference logits are not degenerate (the test can fail).
    let r = reference("lenet_opset13.json");
    assert!(r.output.data().iter().any(|v| v.abs() > 0.01));
}

#[test]
fn safetensors_lenet_weights_equal_the_onnx_initializers() {
    let from_onnx = onnx::from_file(data("lenet_opset13.onnx")).unwrap();
    let mut net = zeroed(&from_onnx);
    assert_ne!(net, from_onnx);
    load_weights_file(&mut net, data("lenet.safetensors"), &WeightNames::Auto).unwrap();
    assert_eq!(net, from_onnx);
    assert_matches_onnxruntime(&net, "lenet_opset13.json");

    let mut net = zeroed(&from_onnx);
    let names = ["conv1", "conv2", "conv3", "fc1", "fc2"]
        .map(String::from)
        .to_vec();
    load_weights(
        &mut net,
        &bytes("lenet.safetensors"),
        &WeightNames::Prefixes(names),
    )
    .unwrap();
    assert_eq!(net, from_onnx);
}

#[test]
fn safetensors_sequential_names_bn_f64_and_counter() {
    // nn.Sequential names (features.0, features.1, features.5, classifier),
    // a float64 running_var and the int64 num_batches_tracked PyTorch writes.
    let from_onnx = onnx::from_file(data("bn_pad_pool.onnx")).unwrap();
    let mut net = zeroed(&from_onnx);
    // Natural order puts `classifier` before `features.*`, which is not the
    // module order here: the shape check catches it.
    let err = load_weights_file(
        &mut net,
        data("bn_pad_pool.safetensors"),
        &WeightNames::Auto,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::ShapeMismatch { layer: 0, found, .. } if found == &[5, 64]),
        "{err}"
    );
    let names = ["features.0", "features.1", "features.5", "classifier"]
        .map(String::from)
        .to_vec();
    load_weights_file(
        &mut net,
        data("bn_pad_pool.safetensors"),
        &WeightNames::Prefixes(names),
    )
    .unwrap();
    assert_eq!(net.layers.len(), from_onnx.layers.len());
    for (a, b) in net.layers.iter().zip(&from_onnx.layers) {
        assert_eq!(a, b);
    }
    assert_matches_onnxruntime(&net, "bn_pad_pool.json");
}

#[test]
fn safetensors_errors_are_typed_and_leave_the_network_unchanged() {
    let from_onnx = onnx::from_file(data("lenet_opset13.onnx")).unwrap();
    let file = bytes("lenet.safetensors");

    // Wrong prefix: the tensor is named in the error.
    let mut net = zeroed(&from_onnx);
    let before = net.clone();
    let names = ["conv1", "conv2", "conv3", "fc1", "head"]
        .map(String::from)
        .to_vec();
    let err = load_weights(&mut net, &file, &WeightNames::Prefixes(names)).unwrap_err();
    assert!(
        matches!(&err, Error::Weight { name, .. } if name == "head.weight"),
        "{err}"
    );
    assert_eq!(net, before);

    // Shapes swapped: fc1's [84, 120] read into conv3.
    let names = ["conv1", "conv2", "fc1", "conv3", "fc2"]
        .map(String::from)
        .to_vec();
    let err = load_weights(&mut net, &file, &WeightNames::Prefixes(names)).unwrap_err();
    assert!(
        matches!(&err, Error::ShapeMismatch { layer: 6, found, .. } if found == &[84, 120]),
        "{err}"
    );
    assert_eq!(net, before);

    // Too few / too many prefixes.
    let names = ["conv1", "conv2"].map(String::from).to_vec();
    let err = load_weights(&mut net, &file, &WeightNames::Prefixes(names)).unwrap_err();
    assert!(matches!(err, Error::InvalidLayer { layer: 6, .. }), "{err}");
    let mut small = onnx::from_file(data("mlp_opset11.onnx")).unwrap();
    let err = load_weights(&mut small, &file, &WeightNames::Auto).unwrap_err();
    assert!(matches!(err, Error::Weight { .. }), "{err}");

    // Not a safetensors file, truncated files: decode errors, no panic.
    for len in [0, 7, 8, 100, file.len() / 2, file.len() - 1] {
        let err = load_weights(&mut net, &file[..len], &WeightNames::Auto).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Decode {
                    reason: DecodeError::Invalid { .. },
                    ..
                }
            ),
            "{len}: {err}"
        );
    }
    assert_eq!(net, before);
}

/// The network with every parameter replaced by zeros.
fn zeroed(net: &Network) -> Network {
    let mut net = net.clone();
    for l in &mut net.layers {
        match l {
            Layer::Dense(d) => {
                d.weight.data_mut().fill(0.0);
                d.bias.fill(0.0);
            }
            Layer::Conv2d(c) => {
                c.weight.data_mut().fill(0.0);
                c.bias.fill(0.0);
            }
            Layer::BatchNorm(b) => {
                b.gamma.fill(0.0);
                b.beta.fill(0.0);
                b.mean.fill(0.0);
                b.var.fill(0.0);
            }
            _ => {}
        }
    }
    net
}

#[test]
fn mlp_opset11_float_data_constant_dropout_identity() {
    let net = onnx::from_file(data("mlp_opset11.onnx")).unwrap();
    assert_eq!(net.input_shape, [64]);
    assert_eq!(kinds(&net), ["dense", "tanh", "dense", "sigmoid", "dense"]);
    assert_matches_onnxruntime(&net, "mlp_opset11.json");
}

#[test]
fn keras_matmul_add_reshape_same_padding() {
    let net = onnx::from_file(data("keras_cnn.onnx")).unwrap();
    assert_eq!(net.input_shape, [1, 8, 8]);
    assert_eq!(
        kinds(&net),
        ["conv2d", "relu", "flatten", "dense", "tanh", "dense"]
    );
    let Layer::Conv2d(c) = &net.layers[0] else {
        panic!("not a conv")
    };
    assert_eq!(c.padding, (1, 1), "SAME_UPPER with a 3x3 kernel pads 1");
    let Layer::Dense(d) = &net.layers[3] else {
        panic!("not dense")
    };
    // [in, out] MatMul weights are transposed into the IR's [out, in].
    assert_eq!(d.weight.shape(), [32, 512]);
    assert!(d.bias.iter().any(|&b| b != 0.0), "Add folded into the bias");
    assert_matches_onnxruntime(&net, "keras_cnn.json");
}

#[test]
fn keras_nhwc_transposes_fold_into_the_input_and_the_dense_columns() {
    let net = onnx::from_file(data("keras_nhwc_cnn.onnx")).unwrap();
    // The input Transpose is absorbed: the network takes NCHW.
    assert_eq!(net.input_shape, [2, 6, 6]);
    assert_eq!(
        kinds(&net),
        ["conv2d", "relu", "maxpool2d", "flatten", "dense", "sigmoid"]
    );
    // onnxruntime ran on NHWC input; feed ours the same values as NCHW.
    let r = reference("keras_nhwc_cnn.json");
    let &[n, h, w, c] = r.input.shape() else {
        panic!("reference input is not 4-d")
    };
    let mut nchw = vec![0.0; r.input.len()];
    for s in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    nchw[((s * c + ch) * h + y) * w + x] =
                        r.input.data()[((s * h + y) * w + x) * c + ch];
                }
            }
        }
    }
    let nchw = Tensor::new(vec![n, c, h, w], nchw).unwrap();
    assert_output_matches(&net, &nchw, &r.output, "keras_nhwc_cnn.json");
}

#[test]
fn bn_pad_pool_folds_pads_and_the_dynamic_flatten() {
    let net = onnx::from_file(data("bn_pad_pool.onnx")).unwrap();
    assert_eq!(net.input_shape, [3, 12, 12]);
    assert_eq!(
        kinds(&net),
        [
            "conv2d",
            "batchnorm",
            "relu",
            "avgpool2d",
            "conv2d",
            "square",
            "flatten",
            "dense",
            "sigmoid"
        ]
    );
    let (Layer::Conv2d(c1), Layer::AvgPool2d(p), Layer::Conv2d(c2), Layer::BatchNorm(bn)) = (
        &net.layers[0],
        &net.layers[3],
        &net.layers[4],
        &net.layers[1],
    ) else {
        panic!("unexpected layers")
    };
    assert_eq!(c1.padding, (1, 1), "Pad folded into the Conv");
    assert_eq!(p.padding, (1, 1), "Pad folded into the AveragePool");
    assert_eq!((c2.stride, c2.padding), ((2, 2), (1, 1)));
    assert_eq!(bn.eps, 1e-3);
    assert!(
        (bn.momentum - 0.1).abs() < 1e-6,
        "ONNX 0.9 is PyTorch's 0.1"
    );
    assert_eq!(net.output_shape().unwrap(), [5]);
    assert_matches_onnxruntime(&net, "bn_pad_pool.json");
}

#[test]
fn unknown_operator_is_named() {
    let err = onnx::from_file(data("unknown_op.onnx")).unwrap_err();
    match err {
        Error::UnsupportedOperator { op_type, node } => {
            assert_eq!(op_type, "Softmax");
            assert_eq!(node, "/softmax/Softmax");
        }
        other => panic!("expected UnsupportedOperator, got {other}"),
    }
}

#[test]
fn final_softmax_can_be_dropped_on_request() {
    let opts = onnx::ImportOptions {
        drop_final_softmax: true,
        ..Default::default()
    };
    let net = onnx::from_file_with(data("unknown_op.onnx"), opts).unwrap();
    assert_eq!(kinds(&net), ["dense"]);
    assert_eq!(net.output_shape().unwrap(), [4]);
}

#[test]
fn branches_are_refused() {
    let err = onnx::from_file(data("branch.onnx")).unwrap_err();
    assert!(
        matches!(&err, Error::ImportNode { op_type, problem, .. }
            if op_type == "Add" && problem.contains("chain")),
        "{err}"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let err = onnx::from_file(data("no_such_model.onnx")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn corrupt_bytes_give_errors_not_panics() {
    let (mut tries, mut errors) = (0, 0);
    for name in [
        "lenet_opset13.onnx",
        "mlp_opset11.onnx",
        "keras_cnn.onnx",
        "keras_nhwc_cnn.onnx",
        "bn_pad_pool.onnx",
        "unknown_op.onnx",
    ] {
        let good = bytes(name);
        // Every prefix length of the small files, a spread for the large one.
        let step = (good.len() / 300).max(1);
        for len in (0..good.len()).step_by(step) {
            tries += 1;
            if onnx::from_bytes(&good[..len]).is_err() {
                errors += 1;
            }
        }
        // Deterministic byte flips.
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ good.len() as u64;
        for _ in 0..300 {
            let mut bad = good.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % bad.len();
                bad[at] = (state >> 32) as u8;
            }
            let _ = onnx::from_bytes(&bad);
        }
    }
    assert_eq!(errors, tries, "every strict prefix of a model must fail");
    // Random bytes.
    let mut state = 42u64;
    for len in [1usize, 2, 5, 16, 100, 1000, 10_000] {
        let noise: Vec<u8> = (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                (state >> 56) as u8
            })
            .collect();
        assert!(onnx::from_bytes(&noise).is_err());
    }
    let err = onnx::from_bytes(b"not a model at all").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decode {
                reason: DecodeError::Invalid { format: "protobuf" },
                ..
            }
        ),
        "{err}"
    );
}

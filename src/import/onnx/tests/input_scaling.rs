//! A Keras `Rescaling` / `Normalization` at the input, as tf2onnx writes
//! it: taken out of the network as an input normaliser, checked against
//! the same network fed the scaled input.

use super::*;
use crate::data::NormalizeOver;
use crate::import::onnx::api::import;
use crate::import::onnx::{ImportOptions, from_bytes_with};
use crate::import::report::{ImportNote, Imported};
use crate::model::Tensor;

/// `nodes` after the input scaling `scaling` (nodes reading `x`, the last
/// writing `s`), as tf2onnx orders them; `rest` reads `s`.
fn scaled(
    x: &[i64],
    scaling: Vec<NodeProto>,
    rest: Vec<NodeProto>,
    inits: Vec<TensorProto>,
) -> Vec<u8> {
    let mut nodes = scaling;
    nodes.extend(rest);
    let bytes = opset13(x, nodes, inits);
    let mut m = ModelProto::decode(bytes.as_slice()).unwrap();
    m.producer_name = Some("tf2onnx".into());
    m.encode_to_vec()
}

fn imported(bytes: &[u8]) -> Imported {
    import(bytes, None, ImportOptions::default()).unwrap()
}

/// Pseudo-random raw pixel values in [0, 255].
fn raw(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 37 + 11) % 256) as f32).collect()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-5 * x.abs().max(1.0))
}

#[test]
fn rescaling_before_a_one_channel_cnn_becomes_an_input_normalizer() {
    // Keras: Input((5, 5, 1)), Rescaling(1/255, offset=-0.5), Conv2D(2, 3,
    // padding="same"), ReLU. tf2onnx: Mul, Add, Reshape [-1, 1, 5, 5], Conv.
    let rest = |from: &str| {
        vec![
            node("Reshape", &[from, "shape"], "r", vec![]),
            node("Conv", &["r", "w"], "c", vec![ais("pads", &[1, 1, 1, 1])]),
            node("Relu", &["c"], "y", vec![]),
        ]
    };
    let inits = || {
        vec![
            floats("scale", &[], vec![1.0 / 255.0]),
            floats("offset", &[1], vec![-0.5]),
            ints("shape", &[-1, 1, 5, 5]),
            conv_w(),
        ]
    };
    let scaling = vec![
        node("Mul", &["x", "scale"], "m", vec![]),
        node("Add", &["m", "offset"], "s", vec![]),
    ];
    let with = imported(&scaled(&[-1, 5, 5, 1], scaling, rest("s"), inits()));
    // The same network without the scaling, fed the scaled input.
    let plain = imported(&scaled(&[-1, 5, 5, 1], vec![], rest("x"), inits()));
    assert_eq!(with.network, plain.network);
    assert_eq!(with.network.input_shape, [1, 5, 5]);
    let norm = with.report.input_normalizer().unwrap();
    assert_eq!(norm.over(), NormalizeOver::Channel);
    assert_eq!(norm.sample_shape(), [1, 5, 5]);
    let x = Tensor::new(vec![2, 1, 5, 5], raw(50)).unwrap();
    let scaled_x: Vec<f32> = x.data().iter().map(|v| v / 255.0 - 0.5).collect();
    let expected = plain
        .network
        .forward(&Tensor::new(vec![2, 1, 5, 5], scaled_x).unwrap())
        .unwrap();
    let got = with.network.forward(&norm.apply(&x).unwrap()).unwrap();
    assert!(close(got.data(), expected.data()));
    // The report says what was taken, before the NHWC note.
    assert!(matches!(&with.report.notes[0],
        ImportNote::InputNormalizer { ops, nodes, .. }
            if ops == &["Mul", "Add"] && nodes == &["n_m", "n_s"]));
    assert!(matches!(
        with.report.notes[1],
        ImportNote::NhwcInput { hwc: [5, 5, 1], .. }
    ));
    assert!(with.report.to_string().contains("input_normalizer"));
}

#[test]
fn normalization_per_channel_follows_the_nhwc_transpose() {
    // Keras Normalization on [4, 4, 3] images: (x - mean) / std per
    // channel, then the NHWC -> NCHW Transpose and a Conv.
    let mean = vec![0.25f32, 0.5, 0.75];
    let std = vec![2.0f32, 4.0, 0.5];
    let w = floats(
        "w",
        &[2, 3, 3, 3],
        (0..54).map(|v| v as f32 * 0.1).collect(),
    );
    let inits = vec![
        floats("mean", &[3], mean.clone()),
        floats("std", &[1, 1, 1, 3], std.clone()),
        w,
    ];
    let m = scaled(
        &[-1, 4, 4, 3],
        vec![
            node("Sub", &["x", "mean"], "c", vec![]),
            node("Div", &["c", "std"], "s", vec![]),
        ],
        vec![
            node("Transpose", &["s"], "t", vec![ais("perm", &[0, 3, 1, 2])]),
            node("Conv", &["t", "w"], "y", vec![]),
        ],
        inits,
    );
    let imp = imported(&m);
    assert_eq!(imp.network.input_shape, [3, 4, 4]);
    let norm = imp.report.input_normalizer().unwrap();
    assert_eq!(norm.over(), NormalizeOver::Channel);
    assert!(close(norm.mean(), &mean));
    assert!(close(norm.std(), &std));
    // The scaling may also come after the transpose, on [C, H, W].
    let inits = vec![
        floats("scale", &[1, 3, 1, 1], vec![0.5, 1.0, 2.0]),
        floats("w", &[2, 3, 3, 3], vec![0.0; 54]),
    ];
    let m = scaled(
        &[-1, 4, 4, 3],
        vec![
            node("Transpose", &["x"], "t", vec![ais("perm", &[0, 3, 1, 2])]),
            node("Mul", &["scale", "t"], "s", vec![]),
        ],
        vec![node("Conv", &["s", "w"], "y", vec![])],
        inits,
    );
    let norm = imported(&m).report.input_normalizer().cloned().unwrap();
    assert!(close(norm.std(), &[2.0, 1.0, 0.5]));
    assert!(close(norm.mean(), &[0.0, 0.0, 0.0]));
}

#[test]
fn per_feature_scaling_of_a_dense_input() {
    let scale = vec![1.0f32, 2.0, 4.0];
    let b = floats("b", &[3, 2], vec![1.0, -1.0, 0.5, 2.0, -3.0, 0.25]);
    let m = scaled(
        &[-1, 3],
        vec![node("Mul", &["x", "k"], "s", vec![])],
        vec![node("MatMul", &["s", "b"], "y", vec![])],
        vec![floats("k", &[1, 3], scale.clone()), b],
    );
    let imp = imported(&m);
    let norm = imp.report.input_normalizer().unwrap();
    assert_eq!(norm.over(), NormalizeOver::Feature);
    let x = Tensor::new(vec![1, 3], vec![3.0, 5.0, 7.0]).unwrap();
    let got = imp.network.forward(&norm.apply(&x).unwrap()).unwrap();
    // y = (x * scale) B.
    let s = [3.0, 10.0, 28.0];
    let expected = [
        s[0] + s[1] * 0.5 + s[2] * -3.0,
        -s[0] + s[1] * 2.0 + s[2] * 0.25,
    ];
    assert!(close(got.data(), &expected), "{:?}", got.data());
}

#[test]
fn scalings_the_importer_refuses_name_the_fix() {
    let one = |x: &[i64], op: &str, k: TensorProto| {
        scaled(
            x,
            vec![node(op, &["x", "k"], "s", vec![])],
            vec![node("Relu", &["s"], "y", vec![])],
            vec![k],
        )
    };
    let pos = || floats("k", &[], vec![0.5]);
    // The functions that return the network alone cannot pass the
    // normaliser on: refused, naming the functions that can.
    let m = one(&[-1, 3], "Mul", pos());
    assert!(matches!(from_bytes(&m),
        Err(Error::UnsupportedOperator { op_type, hint, .. })
            if op_type == "Mul" && hint.contains("from_path")));
    assert!(from_bytes_with(&m, ImportOptions::default()).is_err());
    // A negative or zero factor has no normaliser; division by zero.
    let neg = one(&[-1, 3], "Mul", floats("k", &[], vec![-2.0]));
    assert!(matches!(import(&neg, None, ImportOptions::default()),
        Err(Error::ImportNode { problem, .. }) if problem.contains("normalise on the client")));
    let zero = one(&[-1, 3], "Div", floats("k", &[], vec![0.0]));
    assert!(problem_of(&zero).contains("zero"));
    // Per element of an image, or along a spatial axis.
    let per_pixel = one(&[-1, 2, 2, 1], "Mul", floats("k", &[2, 2, 1], vec![1.0; 4]));
    assert!(problem_of(&per_pixel).contains("channel"));
    let per_row = one(&[-1, 3, 2, 2], "Mul", floats("k", &[2, 1], vec![1.0; 2]));
    assert!(problem_of(&per_row).contains("spatial"));
    // Integer constants, and a constant minus the data.
    let int = one(&[-1, 3], "Mul", ints("k", &[2]));
    assert!(problem_of(&int).contains("integer"));
    let m = scaled(
        &[-1, 3],
        vec![node("Sub", &["k", "x"], "s", vec![])],
        vec![node("Relu", &["s"], "y", vec![])],
        vec![pos()],
    );
    assert!(problem_of(&m).contains("position"));
    // After a layer it is no input scaling (and no bias either).
    let m = opset13(
        &[-1, 3],
        vec![
            node("Relu", &["x"], "a", vec![]),
            node("Mul", &["a", "k"], "y", vec![]),
        ],
        vec![pos()],
    );
    assert!(problem(&m).contains("neighbouring layer"));
}

fn problem_of(bytes: &[u8]) -> &'static str {
    match import(bytes, None, ImportOptions::default()) {
        Err(Error::ImportNode { problem, .. }) => problem,
        other => panic!("expected ImportNode, got {other:?}"),
    }
}

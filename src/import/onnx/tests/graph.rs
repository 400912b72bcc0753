//! The walk: opsets, NHWC inputs, refusals that name the fix, hostile
//! graphs.

use super::*;
use crate::import::onnx::api::import;
use crate::import::onnx::{ImportOptions, InputLayout, from_bytes_with};
use crate::import::report::{ImportNote, NhwcFold};
use crate::model::Tensor;

#[test]
fn opset_below_11_is_refused() {
    let m = model(10, &[-1, 4], lone("Relu", vec![]), vec![]);
    assert!(matches!(
        from_bytes(&m),
        Err(Error::InvalidParameter { value: 10, .. })
    ));
    let m = model(18, &[-1, 4], lone("Relu", vec![]), vec![]);
    assert_eq!(from_bytes(&m).unwrap().input_shape, [4]);
}

#[test]
fn nhwc_inputs_become_nchw() {
    // A Keras dense model on [2, 2, 3] images: Reshape to flat, MatMul.
    let w: Vec<f32> = (0..24).map(|v| (v as f32 - 11.0) / 7.0).collect();
    let mlp = |producer: Option<&str>| {
        let bytes = opset13(
            &[-1, 2, 2, 3],
            vec![
                node("Reshape", &["x", "s"], "f", vec![]),
                node("MatMul", &["f", "w"], "y", vec![]),
            ],
            vec![ints("s", &[-1, 12]), floats("w", &[12, 2], w.clone())],
        );
        let mut m = ModelProto::decode(bytes.as_slice()).unwrap();
        m.producer_name = producer.map(str::to_string);
        m.encode_to_vec()
    };
    let hwc: Vec<f32> = (0..12).map(|v| v as f32 * 0.25 - 1.0).collect();
    let expected: Vec<f32> = (0..2)
        .map(|o| (0..12).map(|i| hwc[i] * w[i * 2 + o]).sum())
        .collect();
    let mut chw = vec![0.0; 12];
    for h in 0..2 {
        for x in 0..2 {
            for c in 0..3 {
                chw[(c * 2 + h) * 2 + x] = hwc[(h * 2 + x) * 3 + c];
            }
        }
    }
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
    for producer in ["tf2onnx", "keras2onnx"] {
        let imported = import(&mlp(Some(producer)), None, ImportOptions::default()).unwrap();
        let net = imported.network;
        assert_eq!(net.input_shape, [3, 2, 2]);
        let out = net.forward(&Tensor::new(vec![1, 3, 2, 2], chw.clone()).unwrap());
        assert!(close(out.unwrap().data(), &expected));
        assert_eq!(
            imported.report.notes,
            [ImportNote::NhwcInput {
                hwc: [2, 2, 3],
                how: NhwcFold::Flatten
            }]
        );
    }
    // Another producer: NCHW unless told otherwise.
    let net = from_bytes(&mlp(Some("pytorch"))).unwrap();
    assert_eq!(net.input_shape, [2, 2, 3]);
    let out = net.forward(&Tensor::new(vec![1, 2, 2, 3], hwc.clone()).unwrap());
    assert!(close(out.unwrap().data(), &expected));
    let nhwc = ImportOptions {
        input_layout: InputLayout::Nhwc,
        ..Default::default()
    };
    let net = from_bytes_with(&mlp(None), nhwc).unwrap();
    assert_eq!(net.input_shape, [3, 2, 2]);

    // Reshape [-1, 1, H, W] of a one-channel NHWC input is tf2onnx's
    // transpose; with two channels it is not a transpose and is refused.
    let conv = |c: i64| {
        opset13(
            &[-1, 5, 5, c],
            vec![
                node("Reshape", &["x", "s"], "r", vec![]),
                node("Conv", &["r", "w"], "y", vec![]),
            ],
            vec![ints("s", &[-1, c, 5, 5]), conv_w()],
        )
    };
    let imported = import(&conv(1), None, ImportOptions::default()).unwrap();
    assert_eq!(imported.network.input_shape, [1, 5, 5]);
    assert_eq!(imported.network.output_shape().unwrap(), [2, 3, 3]);
    assert!(problem(&conv(2)).contains("Reshape"));
}

#[test]
fn unsupported_operators_name_the_fix() {
    let m = opset13(
        &[-1, 4],
        vec![
            node("Softmax", &["x"], "s", vec![]),
            node("Relu", &["s"], "y", vec![]),
        ],
        vec![],
    );
    // Not the last node: refused even with the default options.
    assert!(matches!(from_bytes(&m),
        Err(Error::UnsupportedOperator { op_type, hint, .. })
            if op_type == "Softmax" && hint.contains("last node")));
    let m = opset13(&[-1, 4], lone("Gelu", vec![]), vec![]);
    assert!(matches!(from_bytes(&m),
        Err(Error::UnsupportedOperator { hint, .. }) if hint.contains("polynomial")));
    // Div after a layer: the hint says where a divisor can go.
    let m = opset13(
        &[-1, 4],
        vec![
            node("Relu", &["x"], "a", vec![]),
            node("Div", &["a", "k"], "y", vec![]),
        ],
        vec![floats("k", &[], vec![2.0])],
    );
    assert!(matches!(from_bytes(&m),
        Err(Error::UnsupportedOperator { op_type, hint, .. })
            if op_type == "Div" && hint.contains("input normaliser")));
}

#[test]
fn hostile_graphs_end_with_errors() {
    // A data cycle: x -> a -> x.
    let m = opset13(
        &[-1, 3],
        vec![
            node("Relu", &["x"], "a", vec![]),
            node("Relu", &["a"], "x", vec![]),
        ],
        vec![],
    );
    assert!(from_bytes(&m).is_err());
    // A constant cycle feeding Reshape.
    let m = opset13(
        &[-1, 3],
        vec![
            node("Concat", &["s"], "s", vec![ai("axis", 0)]),
            node("Reshape", &["x", "s"], "y", vec![]),
        ],
        vec![],
    );
    assert!(from_bytes(&m).is_err());
    // A branch: x feeds two nodes.
    let m = opset13(
        &[-1, 3],
        vec![
            node("Relu", &["x"], "y", vec![]),
            node("Tanh", &["x"], "z", vec![]),
        ],
        vec![],
    );
    assert!(problem(&m).contains("chain"));
    // Output never reached.
    let m = opset13(&[-1, 3], vec![node("Relu", &["x"], "a", vec![])], vec![]);
    assert!(matches!(from_bytes(&m), Err(Error::ImportGraph { .. })));
    // Huge dims in an attribute or an input.
    let m = opset13(
        &[1, 1, 6, 6],
        lone("MaxPool", vec![ais("kernel_shape", &[i64::MAX, 2])]),
        vec![],
    );
    assert!(from_bytes(&m).is_err());
    let m = opset13(
        &[1, i64::MAX, 1 << 30, 1 << 30],
        lone("Relu", vec![]),
        vec![],
    );
    assert!(matches!(from_bytes(&m), Err(Error::ImportGraph { .. })));
    let m = opset13(
        &[1, 1, 6, 6],
        lone(
            "AveragePool",
            vec![
                ais("kernel_shape", &[2, 2]),
                ais("pads", &[1 << 23, 1 << 23, 1 << 23, 1 << 23]),
                ai("count_include_pad", 1),
            ],
        ),
        vec![],
    );
    assert!(from_bytes(&m).is_err());
}

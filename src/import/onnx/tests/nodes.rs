//! Per-operator converters: attributes the IR can and cannot express.

use super::*;
use crate::import::onnx_proto::tensor_proto::DataLocation;
use crate::model::{Activation, Layer, Pool2d};

#[test]
fn conv_attributes_the_ir_cannot_express() {
    let conv = |attrs| {
        opset13(
            &[1, 1, 6, 6],
            vec![node("Conv", &["x", "w"], "y", attrs)],
            vec![conv_w()],
        )
    };
    assert!(problem(&conv(vec![ai("group", 2)])).contains("group"));
    assert!(problem(&conv(vec![ais("dilations", &[2, 2])])).contains("dilation"));
    assert!(problem(&conv(vec![ais("pads", &[1, 1, 0, 0])])).contains("asymmetric"));
    assert!(problem(&conv(vec![ais("kernel_shape", &[5, 5])])).contains("kernel_shape"));
    let net = from_bytes(&conv(vec![
        ais("pads", &[1, 2, 1, 2]),
        ais("strides", &[2, 1]),
    ]))
    .unwrap();
    let Layer::Conv2d(c) = &net.layers[0] else {
        panic!()
    };
    assert_eq!(
        (c.padding, c.stride, c.bias.as_slice()),
        ((1, 2), (2, 1), &[0.0, 0.0][..])
    );
    // SAME_UPPER with an even total pads symmetrically; odd is refused.
    let same = |n| {
        opset13(
            &[1, 1, n, n],
            vec![node(
                "Conv",
                &["x", "w"],
                "y",
                vec![
                    AttributeProto {
                        s: Some(b"SAME_UPPER".to_vec()),
                        ..attr("auto_pad")
                    },
                    ais("strides", &[2, 2]),
                ],
            )],
            vec![conv_w()],
        )
    };
    assert!(from_bytes(&same(5)).is_ok());
    assert!(problem(&same(6)).contains("SAME"));
}

#[test]
fn pools_and_pads() {
    let pad = |p: i64| ints("p", &[0, 0, p, p, 0, 0, p, p]);
    let pool = |op: &str, attrs| {
        opset13(
            &[1, 1, 6, 6],
            vec![
                node("Pad", &["x", "p"], "a", vec![]),
                node(op, &["a"], "y", attrs),
            ],
            vec![pad(1)],
        )
    };
    let k2 = || vec![ais("kernel_shape", &[2, 2]), ais("strides", &[2, 2])];
    // A zero Pad folds into AveragePool (the zeros are counted).
    let net = from_bytes(&pool("AveragePool", k2())).unwrap();
    assert_eq!(
        net.layers,
        [Layer::AvgPool2d(Pool2d {
            kernel: (2, 2),
            stride: (2, 2),
            padding: (1, 1)
        })]
    );
    // MaxPool pads with -inf: a zero Pad cannot fold.
    assert!(problem(&pool("MaxPool", k2())).contains("MaxPool"));
    // AveragePool's own padding: only when counted.
    let own = |include| {
        opset13(
            &[1, 1, 6, 6],
            lone(
                "AveragePool",
                vec![
                    ais("kernel_shape", &[3, 3]),
                    ais("pads", &[1, 1, 1, 1]),
                    ai("count_include_pad", include),
                ],
            ),
            vec![],
        )
    };
    assert!(problem(&own(0)).contains("count_include_pad"));
    let net = from_bytes(&own(1)).unwrap();
    assert_eq!(net.shapes().unwrap()[0], [1, 6, 6]);
    // ceil_mode only when it does not change the size.
    let ceil = |n| {
        opset13(
            &[1, 1, n, n],
            lone(
                "MaxPool",
                vec![
                    ais("kernel_shape", &[2, 2]),
                    ais("strides", &[2, 2]),
                    ai("ceil_mode", 1),
                ],
            ),
            vec![],
        )
    };
    assert!(from_bytes(&ceil(6)).is_ok());
    assert!(problem(&ceil(7)).contains("ceil_mode"));
    // A Pad that nothing takes, or one before a Relu.
    let m = opset13(
        &[1, 1, 6, 6],
        vec![node("Pad", &["x", "p"], "y", vec![])],
        vec![pad(1)],
    );
    assert!(problem(&m).contains("Pad"));
    let m = opset13(
        &[1, 1, 6, 6],
        vec![
            node("Pad", &["x", "p"], "a", vec![]),
            node("Relu", &["a"], "y", vec![]),
        ],
        vec![pad(1)],
    );
    assert!(problem(&m).contains("Pad"));
    // Reflect padding and channel padding are refused.
    let m = opset13(
        &[1, 1, 6, 6],
        vec![
            node(
                "Pad",
                &["x", "p"],
                "a",
                vec![AttributeProto {
                    s: Some(b"reflect".to_vec()),
                    ..attr("mode")
                }],
            ),
            node("Conv", &["a", "w"], "y", vec![]),
        ],
        vec![pad(1), conv_w()],
    );
    assert!(problem(&m).contains("zero"));
    let m = opset13(
        &[1, 1, 6, 6],
        vec![
            node("Pad", &["x", "p"], "a", vec![]),
            node("Conv", &["a", "w"], "y", vec![]),
        ],
        vec![ints("p", &[0, 1, 0, 0, 0, 1, 0, 0]), conv_w()],
    );
    assert!(problem(&m).contains("channel"));
    // GlobalAveragePool is a full-window average.
    let m = opset13(&[1, 3, 4, 5], lone("GlobalAveragePool", vec![]), vec![]);
    assert_eq!(from_bytes(&m).unwrap().output_shape().unwrap(), [3, 1, 1]);
    // ... and Squeeze([2, 3]) after it is a Flatten; without axes it is refused.
    let squeeze = |axes: Option<&[i64]>| {
        let mut nodes = vec![node("GlobalAveragePool", &["x"], "a", vec![])];
        let mut inits = vec![];
        if let Some(a) = axes {
            nodes.push(node("Squeeze", &["a", "axes"], "y", vec![]));
            inits.push(ints("axes", a));
        } else {
            nodes.push(node("Squeeze", &["a"], "y", vec![]));
        }
        opset13(&[-1, 3, 4, 5], nodes, inits)
    };
    let net = from_bytes(&squeeze(Some(&[-1, 2]))).unwrap();
    assert_eq!(net.layers.last(), Some(&Layer::Flatten));
    assert_eq!(net.output_shape().unwrap(), [3]);
    assert!(problem(&squeeze(None)).contains("Squeeze"));
    assert!(problem(&squeeze(Some(&[1]))).contains("Squeeze"));
}

#[test]
fn gemm_alpha_beta_and_layouts() {
    // B is [in, out] = [2, 3] (transB = 0): the IR weight is alpha * B^T.
    let b = floats("b", &[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let c = floats("c", &[1, 3], vec![1.0, 1.0, 2.0]);
    let m = opset13(
        &[-1, 2],
        vec![node(
            "Gemm",
            &["x", "b", "c"],
            "y",
            vec![af("alpha", 2.0), af("beta", 0.5)],
        )],
        vec![b.clone(), c.clone()],
    );
    let net = from_bytes(&m).unwrap();
    let Layer::Dense(d) = &net.layers[0] else {
        panic!()
    };
    assert_eq!(d.weight.shape(), [3, 2]);
    assert_eq!(d.weight.data(), [2.0, 8.0, 4.0, 10.0, 6.0, 12.0]);
    assert_eq!(d.bias, [0.5, 0.5, 1.0]);
    // transA is refused, a wrong input width is a shape mismatch.
    let m = opset13(
        &[-1, 2],
        vec![node("Gemm", &["x", "b"], "y", vec![ai("transA", 1)])],
        vec![b.clone()],
    );
    assert!(problem(&m).contains("transA"));
    let m = opset13(
        &[-1, 5],
        vec![node("Gemm", &["x", "b"], "y", vec![])],
        vec![b.clone()],
    );
    assert!(matches!(
        from_bytes(&m),
        Err(Error::ShapeMismatch { layer: 0, .. })
    ));
    // MatMul then Sub of a constant: folded into the bias.
    let m = opset13(
        &[-1, 2],
        vec![
            node("MatMul", &["x", "b"], "a", vec![]),
            node("Sub", &["a", "c"], "y", vec![]),
        ],
        vec![b.clone(), c.clone()],
    );
    let net = from_bytes(&m).unwrap();
    let Layer::Dense(d) = &net.layers[0] else {
        panic!()
    };
    assert_eq!(d.bias, [-1.0, -1.0, -2.0]);
    // An Add that follows no affine layer is refused.
    let m = opset13(
        &[-1, 3],
        vec![
            node("Relu", &["x"], "a", vec![]),
            node("Add", &["a", "c"], "y", vec![]),
        ],
        vec![c],
    );
    assert!(problem(&m).contains("Add"));
    // Two data inputs, an unknown domain.
    let m = opset13(&[-1, 3], lone("Relu", vec![]), vec![]);
    let mut two: ModelProto = ModelProto::decode(m.as_slice()).unwrap();
    two.graph.as_mut().unwrap().input.push(value("z", &[-1, 3]));
    assert!(matches!(
        from_bytes(&two.encode_to_vec()),
        Err(Error::ImportGraph { .. })
    ));
    let mut custom = node("FusedGemm", &["x", "b"], "y", vec![]);
    custom.domain = Some("com.microsoft".into());
    let m = opset13(&[-1, 2], vec![custom], vec![b]);
    assert!(
        matches!(from_bytes(&m), Err(Error::UnsupportedOperator { op_type, .. }) if op_type == "com.microsoft.FusedGemm")
    );
}

#[test]
fn weights_and_reshape_errors() {
    let mut bad = conv_w();
    bad.float_data.pop();
    let m = opset13(
        &[1, 1, 6, 6],
        vec![node("Conv", &["x", "w"], "y", vec![])],
        vec![bad],
    );
    assert!(matches!(from_bytes(&m), Err(Error::Weight { name, .. }) if name == "w"));
    let raw = TensorProto {
        float_data: vec![],
        raw_data: Some(vec![0u8; 18 * 4 - 1]),
        ..conv_w()
    };
    let m = opset13(
        &[1, 1, 6, 6],
        vec![node("Conv", &["x", "w"], "y", vec![])],
        vec![raw],
    );
    assert!(matches!(from_bytes(&m), Err(Error::Weight { .. })));
    let ext = TensorProto {
        data_location: Some(DataLocation::External as i32),
        ..conv_w()
    };
    let m = opset13(
        &[1, 1, 6, 6],
        vec![node("Conv", &["x", "w"], "y", vec![])],
        vec![ext],
    );
    assert!(
        matches!(from_bytes(&m), Err(Error::Weight { problem, .. }) if problem.contains("external"))
    );
    // Reshape: to flat is fine, anything else is refused.
    let reshape = |target: &[i64]| {
        opset13(
            &[-1, 2, 3, 4],
            vec![node("Reshape", &["x", "s"], "y", vec![])],
            vec![ints("s", target)],
        )
    };
    for ok in [&[-1, 24][..], &[0, -1], &[0, 24], &[0, 2, 3, 4]] {
        assert!(from_bytes(&reshape(ok)).is_ok(), "{ok:?}");
    }
    for bad in [&[-1, 12][..], &[0, 4, 3, 2], &[-1], &[24, -1]] {
        assert!(problem(&reshape(bad)).contains("Reshape"), "{bad:?}");
    }
    // Flatten with axis 2 is refused.
    let m = opset13(&[-1, 2, 3, 4], lone("Flatten", vec![ai("axis", 2)]), vec![]);
    assert!(problem(&m).contains("Flatten"));
    // Dropout in training mode is refused.
    let m = opset13(
        &[-1, 3],
        vec![node("Dropout", &["x", "", "t"], "y", vec![])],
        vec![ints("t", &[1])],
    );
    assert!(problem(&m).contains("training"));
}

#[test]
fn batch_norm_on_features_and_square() {
    let p = |n: &str, v: f32| floats(n, &[2], vec![v, v]);
    let m = model(
        14,
        &[-1, 2],
        vec![
            node(
                "BatchNormalization",
                &["x", "g", "b", "m", "v"],
                "a",
                vec![af("epsilon", 1e-3)],
            ),
            node("Pow", &["a", "two"], "y", vec![]),
        ],
        vec![
            p("g", 1.0),
            p("b", 0.0),
            p("m", 0.5),
            p("v", 4.0),
            floats("two", &[], vec![2.0]),
        ],
    );
    let net = from_bytes(&m).unwrap();
    assert_eq!(net.layers[1], Layer::Activation(Activation::Square));
    let Layer::BatchNorm(bn) = &net.layers[0] else {
        panic!()
    };
    assert_eq!((bn.eps, bn.mean.as_slice()), (1e-3, &[0.5, 0.5][..]));
}

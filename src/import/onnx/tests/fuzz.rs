//! Random chains of operators never panic; what imports runs.

use super::*;
use proptest::prelude::*;

use crate::model::Tensor;

const OPS: [&str; 19] = [
    "Conv",
    "Relu",
    "MaxPool",
    "AveragePool",
    "Pad",
    "Flatten",
    "Reshape",
    "Gemm",
    "MatMul",
    "Add",
    "BatchNormalization",
    "Transpose",
    "Squeeze",
    "Mul",
    "Softmax",
    "Identity",
    "GlobalAveragePool",
    "Sigmoid",
    "Sub",
];
const VALUES: [i64; 9] = [-2, -1, 0, 1, 2, 3, 5, 1 << 20, i64::MAX];

/// One random node: op, an int attribute set, weight dims.
fn step() -> impl Strategy<Value = (usize, Vec<usize>, Vec<usize>)> {
    (
        0..OPS.len(),
        prop::collection::vec(0..VALUES.len(), 4),
        prop::collection::vec(1usize..5, 0..5),
    )
}

fn build(input: &[i64], steps: &[(usize, Vec<usize>, Vec<usize>)]) -> Vec<u8> {
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut cur = "x".to_string();
    for (k, (op, vals, wdims)) in steps.iter().enumerate() {
        let op = OPS[*op];
        let v = |i: usize| VALUES[vals[i % vals.len()]];
        let out = if k + 1 == steps.len() {
            "y".to_string()
        } else {
            format!("t{k}")
        };
        let w = format!("w{k}");
        let dims: Vec<i64> = wdims.iter().map(|&d| d as i64).collect();
        let n: usize = wdims.iter().product();
        inits.push(floats(&w, &dims, (0..n).map(|i| i as f32 * 0.01).collect()));
        let inputs: Vec<&str> = match op {
            "Conv" | "Gemm" | "MatMul" | "Add" | "Sub" | "Reshape" | "Pad" | "Squeeze" => {
                vec![&cur, &w]
            }
            "BatchNormalization" => vec![&cur, &w, &w, &w, &w],
            "Mul" => vec![&cur, &cur],
            _ => vec![&cur],
        };
        if matches!(op, "Reshape" | "Pad" | "Squeeze") {
            inits.pop();
            let ints_v: Vec<i64> = (0..wdims.len().max(1)).map(&v).collect();
            inits.push(ints(&w, &ints_v));
        }
        let attrs = vec![
            ais("kernel_shape", &[v(0), v(1)]),
            ais("strides", &[v(1), v(2)]),
            ais("pads", &[v(2), v(3), v(2), v(3)]),
            ai("transB", v(3).rem_euclid(2)),
            ai("axis", v(0)),
            ais("perm", &[0, v(1), v(2), v(3)]),
        ];
        nodes.push(node(op, &inputs, &out, attrs));
        cur = out;
    }
    opset13(input, nodes, inits)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn random_chains_never_panic(
        image in any::<bool>(),
        dims in prop::collection::vec(1i64..7, 3),
        steps in prop::collection::vec(step(), 1..6),
    ) {
        let input: Vec<i64> = if image {
            vec![-1, dims[0], dims[1], dims[2]]
        } else {
            vec![-1, dims[0] * dims[1]]
        };
        let bytes = build(&input, &steps);
        let r = from_bytes(&bytes);
        if let Ok(net) = r {
            // Whatever imports runs, with the shape it promises.
            let shape = net.output_shape().unwrap();
            let mut batch = vec![2];
            batch.extend(&net.input_shape);
            let x = Tensor::zeros(batch);
            let y = net.forward(&x).unwrap();
            prop_assert_eq!(&y.shape()[1..], shape.as_slice());
        }
        // Truncations of the same bytes fail cleanly.
        for cut in [1, bytes.len() / 3, bytes.len() / 2] {
            prop_assert!(from_bytes(&bytes[..bytes.len() - cut]).is_err());
        }
    }
}

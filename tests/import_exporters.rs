//! Models written by the real exporters (PyTorch's default and legacy
//! exporters, Keras through tf2onnx) import and match onnxruntime on 100
//! real MNIST test digits. Fixtures: `tests/data/exporters/` (made by its
//! `make_fixtures.py`, versions in its README).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions: a failed unwrap is a failed test"
)]

use std::collections::HashMap;
use std::path::PathBuf;

use mofhei::Error;
use mofhei::import::external_data::Folder;
use mofhei::import::onnx::{self, ImportOptions, InputLayout};
use mofhei::import::{ImportNote, NhwcFold};
use mofhei::model::{Layer, Network, Tensor};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/exporters")
        .join(name)
}

/// The 100 test digits as `[100, 1, 28, 28]` (u8 / 255 in f32, as the
/// fixture script fed them to onnxruntime), and their labels.
fn mnist100() -> (Tensor, Vec<usize>) {
    let npy = std::fs::read(data("mnist100.npy")).unwrap();
    // .npy v1: magic, version, u16 header length, header, data.
    assert_eq!(&npy[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let header = std::str::from_utf8(&npy[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '|u1'"), "{header}");
    assert!(header.contains("'shape': (100, 28, 28)"), "{header}");
    let pixels = &npy[10 + header_len..];
    assert_eq!(pixels.len(), 100 * 28 * 28);
    let x: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    let labels: Vec<usize> =
        serde_json::from_str(&std::fs::read_to_string(data("mnist100_labels.json")).unwrap())
            .unwrap();
    (Tensor::new(vec![100, 1, 28, 28], x).unwrap(), labels)
}

/// onnxruntime's output `[100, 10]` and the final operator it applied.
fn reference(name: &str) -> (Tensor, String) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data(name)).unwrap()).unwrap();
    let out: Vec<f32> = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(v["output_shape"], serde_json::json!([100, 10]));
    (
        Tensor::new(vec![100, 10], out).unwrap(),
        v["ends_in"].as_str().unwrap().to_string(),
    )
}

/// `Softmax` or `LogSoftmax` of each row of logits (the operator the
/// import dropped), in f64.
fn apply(op: &str, logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let sum: f64 = logits.iter().map(|&v| f64::from(v - max).exp()).sum();
    logits
        .iter()
        .map(|&v| {
            let z = f64::from(v - max);
            (if op == "LogSoftmax" {
                z - sum.ln()
            } else {
                z.exp() / sum
            }) as f32
        })
        .collect()
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

/// Runs `net` on the 100 digits, applies the dropped final operator and
/// compares with onnxruntime: every element within 1e-4, same argmax.
/// Returns the largest difference and the accuracy.
fn check(net: &Network, reference_file: &str) -> (f32, f32) {
    eprintln!("{reference_file}: input shape {:?}", net.input_shape);
    let (x, labels) = mnist100();
    let (expected, op) = reference(reference_file);
    let logits = net.forward(&x).unwrap();
    assert_eq!(logits.shape(), [100, 10]);
    let mut worst = 0.0f32;
    let mut correct = 0;
    for (s, label) in labels.iter().enumerate() {
        let ours = apply(&op, &logits.data()[s * 10..(s + 1) * 10]);
        let theirs = &expected.data()[s * 10..(s + 1) * 10];
        for (k, (&a, &b)) in ours.iter().zip(theirs).enumerate() {
            let diff = (a - b).abs();
            worst = worst.max(diff);
            assert!(
                diff <= 1e-4,
                "{reference_file}: sample {s} class {k}: ours {a}, onnxruntime {b}"
            );
        }
        // The dropped softmax keeps the predicted class.
        let predicted = argmax(&logits.data()[s * 10..(s + 1) * 10]);
        assert_eq!(predicted, argmax(theirs), "{reference_file}: sample {s}");
        correct += usize::from(predicted == *label);
    }
    let accuracy = correct as f32 / labels.len() as f32;
    eprintln!("{reference_file}: largest |ours - onnxruntime| = {worst:e}, accuracy {accuracy:.2}");
    (worst, accuracy)
}

fn kinds(net: &Network) -> Vec<&'static str> {
    net.layers.iter().map(Layer::kind).collect()
}

const LENET: [&str; 10] = [
    "conv2d",
    "relu",
    "maxpool2d",
    "conv2d",
    "relu",
    "maxpool2d",
    "flatten",
    "dense",
    "relu",
    "dense",
];

#[test]
fn pytorch_default_exporter_with_external_data() {
    let imported = onnx::from_path(data("torch_lenet_dynamo.onnx"), ImportOptions::default())
        .expect("the dynamo export with .onnx.data imports");
    eprintln!("{}", imported.report);
    let net = &imported.network;
    assert_eq!(net.input_shape, [1, 28, 28]);
    assert_eq!(kinds(net), LENET);
    let notes = &imported.report.notes;
    assert!(
        notes.iter().any(|n| matches!(n,
            ImportNote::ExternalData { files, bytes }
                if files == &["torch_lenet_dynamo.onnx.data"] && *bytes == 21264)),
        "{notes:?}"
    );
    assert!(imported.report.dropped_softmax());
    let report = imported.report.to_string();
    assert!(
        report.contains("LogSoftmax") && report.contains("argmax"),
        "{report}"
    );
    let (_, accuracy) = check(net, "torch_lenet_dynamo.json");
    assert!(accuracy >= 0.9);

    // The same through bytes + the model's folder, and through in-memory files.
    let bytes = std::fs::read(data("torch_lenet_dynamo.onnx")).unwrap();
    let mut folder = Folder::new(data(""));
    let again = onnx::from_bytes_with_source(&bytes, &mut folder, ImportOptions::default());
    assert_eq!(again.unwrap().network, *net);
    let mut files = HashMap::new();
    files.insert(
        "torch_lenet_dynamo.onnx.data".to_string(),
        std::fs::read(data("torch_lenet_dynamo.onnx.data")).unwrap(),
    );
    let again = onnx::from_bytes_with_source(&bytes, &mut files, ImportOptions::default());
    assert_eq!(again.unwrap().network, *net);
    // from_file reads the data file too.
    assert_eq!(
        onnx::from_file(data("torch_lenet_dynamo.onnx")).unwrap(),
        *net
    );

    // Bytes alone: refused, naming the fix.
    let err = onnx::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(&err, Error::Weight { problem, .. } if problem.contains("from_path")),
        "{err}"
    );
    // A budget below the data size is refused.
    let mut small = ImportOptions::default();
    small.max_external_bytes = 1000;
    let err = onnx::from_path(data("torch_lenet_dynamo.onnx"), small).unwrap_err();
    assert!(
        matches!(&err, Error::Weight { problem, .. } if problem.contains("max_external_bytes")),
        "{err}"
    );
    // A truncated data file is an error, not a panic.
    let mut short = files.clone();
    short
        .get_mut("torch_lenet_dynamo.onnx.data")
        .unwrap()
        .truncate(20_000);
    assert!(onnx::from_bytes_with_source(&bytes, &mut short, ImportOptions::default()).is_err());
}

#[test]
fn pytorch_legacy_exporter() {
    let imported =
        onnx::from_path(data("torch_lenet_legacy.onnx"), ImportOptions::default()).unwrap();
    assert_eq!(imported.network.input_shape, [1, 28, 28]);
    assert_eq!(kinds(&imported.network), LENET);
    assert_eq!(
        imported.report.notes,
        [ImportNote::DroppedFinalSoftmax {
            op_type: "LogSoftmax".into(),
            node: "/LogSoftmax".into()
        }]
    );
    check(&imported.network, "torch_lenet_legacy.json");

    // Refusing the final LogSoftmax: the error names the option.
    let mut strict = ImportOptions::default();
    strict.drop_final_softmax = false;
    let err = onnx::from_path(data("torch_lenet_legacy.onnx"), strict).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedOperator { op_type, hint, .. }
            if op_type == "LogSoftmax" && hint.contains("drop_final_softmax")),
        "{err}"
    );
}

#[test]
fn keras_cnn_on_one_channel_input_via_tf2onnx() {
    // tf2onnx writes the NHWC -> NCHW transpose of a 1-channel input as
    // Reshape [-1, 1, 28, 28].
    let imported = onnx::from_path(data("keras_cnn_c1.onnx"), ImportOptions::default()).unwrap();
    eprintln!("{}", imported.report);
    let net = &imported.network;
    assert_eq!(net.input_shape, [1, 28, 28], "C = 1, H = 28, W = 28");
    assert_eq!(kinds(net), LENET);
    assert!(imported.report.notes.contains(&ImportNote::NhwcInput {
        hwc: [28, 28, 1],
        how: NhwcFold::Reshape
    }));
    assert!(imported.report.dropped_softmax());
    // The NHWC image [28, 28, 1] has the same pixel order as [1, 28, 28].
    check(net, "keras_cnn_c1.json");
}

#[test]
fn keras_mlp_reads_its_input_as_one_channel_image() {
    let imported = onnx::from_path(data("keras_mlp.onnx"), ImportOptions::default()).unwrap();
    eprintln!("{}", imported.report);
    let net = &imported.network;
    assert_eq!(net.input_shape, [1, 28, 28], "not C = 28, H = 28, W = 1");
    assert_eq!(kinds(net), ["flatten", "dense", "relu", "dense"]);
    assert!(imported.report.notes.contains(&ImportNote::NhwcInput {
        hwc: [28, 28, 1],
        how: NhwcFold::Flatten
    }));
    check(net, "keras_mlp.json");

    // Told the input is NCHW, the import keeps the file's [28, 28, 1] as
    // C, H, W (the old reading), with the same values.
    let mut nchw = ImportOptions::default();
    nchw.input_layout = InputLayout::Nchw;
    let literal = onnx::from_path(data("keras_mlp.onnx"), nchw).unwrap();
    assert_eq!(literal.network.input_shape, [28, 28, 1]);
    let (x, _) = mnist100();
    let as_hwc = Tensor::new(vec![100, 28, 28, 1], x.data().to_vec()).unwrap();
    assert_eq!(
        literal.network.forward(&as_hwc).unwrap(),
        net.forward(&x).unwrap()
    );
}

/// `model` with every occurrence of `from` replaced by `to` (same length).
fn replace_bytes(model: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = model.to_vec();
    let mut i = 0;
    let mut hits = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            hits += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(hits > 0);
    out
}

#[test]
fn hostile_external_data_locations_are_refused() {
    let model = std::fs::read(data("torch_lenet_dynamo.onnx")).unwrap();
    let weights = std::fs::read(data("torch_lenet_dynamo.onnx.data")).unwrap();
    let dir = std::env::temp_dir().join(format!("mofhei-hostile-{}", std::process::id()));
    let inside = dir.join("model");
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::write(dir.join("outside.data"), &weights).unwrap();
    let location = b"torch_lenet_dynamo.onnx.data";
    for (to, expect) in [
        (&b"../../../../../../etc/passwd"[..], ".."),
        (&b"//////////////////etc/passwd"[..], "absolute"),
        (&b"../outside.data/../../a.data"[..], ".."),
    ] {
        let bad = replace_bytes(&model, location, to);
        let path = inside.join("m.onnx");
        std::fs::write(&path, &bad).unwrap();
        let err = onnx::from_path(&path, ImportOptions::default()).unwrap_err();
        assert!(
            matches!(&err, Error::Weight { problem, .. } if problem.contains(expect)),
            "{}: {err}",
            String::from_utf8_lossy(to)
        );
    }
    // A symbolic link out of the model's folder.
    #[cfg(unix)]
    {
        std::fs::write(inside.join("m.onnx"), &model).unwrap();
        std::os::unix::fs::symlink(dir.join("outside.data"), inside.join(location_str())).unwrap();
        let err = onnx::from_path(inside.join("m.onnx"), ImportOptions::default()).unwrap_err();
        assert!(
            matches!(&err, Error::Weight { problem, .. } if problem.contains("symbolic link")),
            "{err}"
        );
        // The same file, really inside: accepted.
        std::fs::remove_file(inside.join(location_str())).unwrap();
        std::fs::write(inside.join(location_str()), &weights).unwrap();
        assert!(onnx::from_path(inside.join("m.onnx"), ImportOptions::default()).is_ok());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn location_str() -> &'static str {
    "torch_lenet_dynamo.onnx.data"
}

#[test]
fn corrupt_exports_give_errors_not_panics() {
    let weights = std::fs::read(data("torch_lenet_dynamo.onnx.data")).unwrap();
    for name in [
        "torch_lenet_dynamo.onnx",
        "torch_lenet_legacy.onnx",
        "keras_cnn_c1.onnx",
        "keras_mlp.onnx",
    ] {
        let good = std::fs::read(data(name)).unwrap();
        let mut files = HashMap::new();
        files.insert(location_str().to_string(), weights.clone());
        let step = (good.len() / 200).max(1);
        for len in (0..good.len()).step_by(step) {
            assert!(
                onnx::from_bytes_with_source(&good[..len], &mut files, ImportOptions::default())
                    .is_err(),
                "{name}: prefix {len}"
            );
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ good.len() as u64;
        for _ in 0..200 {
            let mut bad = good.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % bad.len();
                bad[at] = (state >> 32) as u8;
            }
            let _ = onnx::from_bytes_with_source(&bad, &mut files, ImportOptions::default());
        }
    }
    // Every strict prefix of the data file is refused.
    let model = std::fs::read(data("torch_lenet_dynamo.onnx")).unwrap();
    for len in (0..weights.len()).step_by(997) {
        let mut files = HashMap::new();
        files.insert(location_str().to_string(), weights[..len].to_vec());
        assert!(
            onnx::from_bytes_with_source(&model, &mut files, ImportOptions::default()).is_err(),
            "data prefix {len}"
        );
    }
}

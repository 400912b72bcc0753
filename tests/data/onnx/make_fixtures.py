#!/usr/bin/env python3
"""Builds the ONNX / safetensors test fixtures of mofhei's importer and the
reference outputs onnxruntime computes for them.

PyTorch cannot be installed where these were made (the PyPI wheel is the CUDA
build), so the graphs are written with `onnx.helper` in exactly the layout
`torch.onnx.export` writes (NCHW, OIHW weights, Gemm with transB=1, Flatten,
node names like /conv1/Conv, initializers named like the state_dict) and, for
`keras_cnn.onnx`, the layout tf2onnx writes for a Keras model (MatMul + Add
with [in, out] weights, Reshape to [-1, features]).

Usage (from the repository root, in a virtualenv outside the repo):

    python3 -m venv /tmp/venv-onnx
    /tmp/venv-onnx/bin/pip install onnx onnxruntime numpy safetensors
    /tmp/venv-onnx/bin/python tests/data/onnx/make_fixtures.py

Everything is seeded: re-running gives byte-identical .onnx and .safetensors
files (the JSON reference outputs may differ in the last float digit between
onnxruntime versions). Made with onnx 1.23.2, onnxruntime 1.31.1,
numpy 2.4.6, safetensors (Python) 0.8.0.
"""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
F = TensorProto.FLOAT


def uniform(rng, shape, fan_in):
    """PyTorch's default init range for Conv/Linear: U(-1/sqrt(fan_in), +)."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def init(name, array, use_float_data=False):
    """An initializer; raw_data (little-endian) unless use_float_data."""
    if use_float_data:
        return helper.make_tensor(name, F, array.shape, array.flatten().tolist(), raw=False)
    return numpy_helper.from_array(array, name)


def ints_init(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def save(model, name):
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(HERE, name)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path


def reference(model_file, x, ref_name):
    """Runs onnxruntime on x and stores input and output as JSON."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(
        os.path.join(HERE, model_file), opts, providers=["CPUExecutionProvider"]
    )
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x})
    doc = {
        "model": model_file,
        "onnxruntime": ort.__version__,
        "input_shape": list(x.shape),
        "input": [float(v) for v in x.astype(np.float32).flatten()],
        "output_shape": list(out.shape),
        "output": [float(v) for v in out.astype(np.float32).flatten()],
    }
    with open(os.path.join(HERE, ref_name), "w") as f:
        json.dump(doc, f)
    return out


def torch_model(graph, opset, ir_version):
    model = helper.make_model(
        graph,
        producer_name="pytorch",
        producer_version="2.1.0",
        opset_imports=[helper.make_opsetid("", opset)],
    )
    model.ir_version = ir_version
    return model


def conv_attrs(k, pads=0, stride=1):
    return dict(
        dilations=[1, 1], group=1, kernel_shape=[k, k], pads=[pads] * 4, strides=[stride, stride]
    )


# ---------------------------------------------------------------------------
# 1. MOFHEI's LeNet as torch.onnx.export writes it (opset 13).
#    conv5x5x6 relu maxpool conv5x5x16 relu maxpool conv5x5x120 relu
#    flatten gemm84 relu gemm10 on 1x32x32 inputs.
# ---------------------------------------------------------------------------
def lenet_weights(seed=2024):
    rng = np.random.default_rng(seed)
    w = {}
    w["conv1.weight"] = uniform(rng, (6, 1, 5, 5), 25)
    w["conv1.bias"] = uniform(rng, (6,), 25)
    w["conv2.weight"] = uniform(rng, (16, 6, 5, 5), 150)
    w["conv2.bias"] = uniform(rng, (16,), 150)
    w["conv3.weight"] = uniform(rng, (120, 16, 5, 5), 400)
    w["conv3.bias"] = uniform(rng, (120,), 400)
    w["fc1.weight"] = uniform(rng, (84, 120), 120)
    w["fc1.bias"] = uniform(rng, (84,), 120)
    w["fc2.weight"] = uniform(rng, (10, 84), 84)
    w["fc2.bias"] = uniform(rng, (10,), 84)
    return w


def make_lenet():
    w = lenet_weights()
    n = []

    def node(op, inputs, name, **attrs):
        out = f"{name}_output_0"
        n.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    x = "input.1"
    h = node("Conv", [x, "conv1.weight", "conv1.bias"], "/conv1/Conv", **conv_attrs(5))
    h = node("Relu", [h], "/relu1/Relu")
    pool = dict(ceil_mode=0, dilations=[1, 1], kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
    h = node("MaxPool", [h], "/pool1/MaxPool", **pool)
    h = node("Conv", [h, "conv2.weight", "conv2.bias"], "/conv2/Conv", **conv_attrs(5))
    h = node("Relu", [h], "/relu2/Relu")
    h = node("MaxPool", [h], "/pool2/MaxPool", **pool)
    h = node("Conv", [h, "conv3.weight", "conv3.bias"], "/conv3/Conv", **conv_attrs(5))
    h = node("Relu", [h], "/relu3/Relu")
    h = node("Flatten", [h], "/Flatten", axis=1)
    h = node("Gemm", [h, "fc1.weight", "fc1.bias"], "/fc1/Gemm", alpha=1.0, beta=1.0, transB=1)
    h = node("Relu", [h], "/relu4/Relu")
    n.append(
        helper.make_node(
            "Gemm", [h, "fc2.weight", "fc2.bias"], ["logits"], name="/fc2/Gemm",
            alpha=1.0, beta=1.0, transB=1,
        )
    )
    graph = helper.make_graph(
        n,
        "main_graph",
        [helper.make_tensor_value_info(x, F, ["batch_size", 1, 32, 32])],
        [helper.make_tensor_value_info("logits", F, ["batch_size", 10])],
        [init(k, v) for k, v in w.items()],
    )
    save(torch_model(graph, 13, 7), "lenet_opset13.onnx")
    x = np.random.default_rng(7).uniform(0.0, 1.0, size=(4, 1, 32, 32)).astype(np.float32)
    reference("lenet_opset13.onnx", x, "lenet_opset13.json")
    save_file(w, os.path.join(HERE, "lenet.safetensors"))


# ---------------------------------------------------------------------------
# 2. An MLP as an older torch.onnx.export writes it at opset 11: initializers
#    also listed as graph inputs, weights in float_data, a Constant node,
#    Dropout and Identity left in, Tanh and Sigmoid activations.
# ---------------------------------------------------------------------------
def make_mlp():
    rng = np.random.default_rng(11)
    w1 = uniform(rng, (32, 64), 64)
    b1 = uniform(rng, (32,), 64)
    w2 = uniform(rng, (16, 32), 32)
    w3 = uniform(rng, (10, 16), 16)
    b3 = uniform(rng, (10,), 16)
    b2 = uniform(rng, (16,), 32)
    inits = [
        init("0.weight", w1, use_float_data=True),
        init("0.bias", b1, use_float_data=True),
        init("3.weight", w2),
        init("6.weight", w3, use_float_data=True),
        init("6.bias", b3),
    ]
    nodes = [
        helper.make_node("Gemm", ["input", "0.weight", "0.bias"], ["7"], name="Gemm_0", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("Tanh", ["7"], ["8"], name="Tanh_1"),
        helper.make_node("Dropout", ["8"], ["9"], name="Dropout_2", ratio=0.25),
        helper.make_node(
            "Constant", [], ["10"], name="Constant_3", value=numpy_helper.from_array(b2, "b2")
        ),
        helper.make_node("Gemm", ["9", "3.weight", "10"], ["11"], name="Gemm_4", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("Identity", ["11"], ["12"], name="Identity_5"),
        helper.make_node("Sigmoid", ["12"], ["13"], name="Sigmoid_6"),
        helper.make_node("Gemm", ["13", "6.weight", "6.bias"], ["output"], name="Gemm_7", alpha=1.0, beta=1.0, transB=1),
    ]
    inputs = [helper.make_tensor_value_info("input", F, [3, 64])]
    inputs += [helper.make_tensor_value_info(t.name, F, list(t.dims)) for t in inits]
    graph = helper.make_graph(
        nodes, "torch-jit-export", inputs,
        [helper.make_tensor_value_info("output", F, [3, 10])], inits,
    )
    save(torch_model(graph, 11, 6), "mlp_opset11.onnx")
    x = np.random.default_rng(12).normal(size=(3, 64)).astype(np.float32)
    reference("mlp_opset11.onnx", x, "mlp_opset11.json")


# ---------------------------------------------------------------------------
# 3. A small Keras CNN as tf2onnx writes it (opset 13): SAME padding via
#    auto_pad, Reshape to [-1, features] with an int64 initializer, MatMul +
#    Add with [in, out] weights. (Input kept NCHW, so no Transpose.)
# ---------------------------------------------------------------------------
def make_keras():
    rng = np.random.default_rng(13)
    k = uniform(rng, (8, 1, 3, 3), 9)
    kb = uniform(rng, (8,), 9)
    d1 = uniform(rng, (512, 32), 512)  # [in, out], as Keras stores Dense kernels
    d1b = uniform(rng, (32,), 512)
    d2 = uniform(rng, (32, 10), 32)
    d2b = uniform(rng, (10,), 32)
    inits = [
        init("sequential/conv2d/Conv2D/ReadVariableOp:0", k),
        init("sequential/conv2d/BiasAdd/ReadVariableOp:0", kb),
        ints_init("const_fold_opt__18", [-1, 512]),
        init("sequential/dense/MatMul/ReadVariableOp:0", d1),
        init("sequential/dense/BiasAdd/ReadVariableOp:0", d1b),
        init("sequential/dense_1/MatMul/ReadVariableOp:0", d2),
        init("sequential/dense_1/BiasAdd/ReadVariableOp:0", d2b),
    ]
    nodes = [
        helper.make_node(
            "Conv",
            ["input_1", "sequential/conv2d/Conv2D/ReadVariableOp:0", "sequential/conv2d/BiasAdd/ReadVariableOp:0"],
            ["sequential/conv2d/Relu:0_pre"], name="sequential/conv2d/BiasAdd",
            auto_pad="SAME_UPPER", dilations=[1, 1], group=1, kernel_shape=[3, 3], strides=[1, 1],
        ),
        helper.make_node("Relu", ["sequential/conv2d/Relu:0_pre"], ["sequential/conv2d/Relu:0"], name="sequential/conv2d/Relu"),
        helper.make_node(
            "Reshape", ["sequential/conv2d/Relu:0", "const_fold_opt__18"],
            ["sequential/flatten/Reshape:0"], name="sequential/flatten/Reshape",
        ),
        helper.make_node(
            "MatMul", ["sequential/flatten/Reshape:0", "sequential/dense/MatMul/ReadVariableOp:0"],
            ["sequential/dense/MatMul:0"], name="sequential/dense/MatMul",
        ),
        helper.make_node(
            "Add", ["sequential/dense/MatMul:0", "sequential/dense/BiasAdd/ReadVariableOp:0"],
            ["sequential/dense/BiasAdd:0"], name="sequential/dense/BiasAdd",
        ),
        helper.make_node("Tanh", ["sequential/dense/BiasAdd:0"], ["sequential/dense/Tanh:0"], name="sequential/dense/Tanh"),
        helper.make_node(
            "MatMul", ["sequential/dense/Tanh:0", "sequential/dense_1/MatMul/ReadVariableOp:0"],
            ["sequential/dense_1/MatMul:0"], name="sequential/dense_1/MatMul",
        ),
        helper.make_node(
            "Add", ["sequential/dense_1/MatMul:0", "sequential/dense_1/BiasAdd/ReadVariableOp:0"],
            ["dense_1"], name="sequential/dense_1/BiasAdd",
        ),
    ]
    graph = helper.make_graph(
        nodes, "tf2onnx",
        [helper.make_tensor_value_info("input_1", F, ["unk__20", 1, 8, 8])],
        [helper.make_tensor_value_info("dense_1", F, ["unk__21", 10])], inits,
    )
    model = helper.make_model(
        graph, producer_name="tf2onnx", producer_version="1.16.1 15c810",
        opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 2)],
    )
    model.ir_version = 7
    save(model, "keras_cnn.onnx")
    x = np.random.default_rng(14).uniform(size=(2, 1, 8, 8)).astype(np.float32)
    reference("keras_cnn.onnx", x, "keras_cnn.json")


# ---------------------------------------------------------------------------
# 3b. A Keras CNN in NHWC as tf2onnx writes it: Transpose NHWC->NCHW after
#     the input, Conv/Relu/MaxPool in NCHW, Transpose NCHW->NHWC before the
#     Reshape (Keras flattens in H, W, C order), MatMul + Add, Sigmoid.
# ---------------------------------------------------------------------------
def make_keras_nhwc():
    rng = np.random.default_rng(15)
    k = uniform(rng, (4, 2, 3, 3), 18)
    kb = uniform(rng, (4,), 18)
    d = uniform(rng, (36, 5), 36)  # [in, out], in = H*W*C in NHWC order
    db = uniform(rng, (5,), 36)
    inits = [
        init("sequential/conv2d/Conv2D/ReadVariableOp:0", k),
        init("sequential/conv2d/BiasAdd/ReadVariableOp:0", kb),
        ints_init("const_fold_opt__31", [-1, 36]),
        init("sequential/dense/MatMul/ReadVariableOp:0", d),
        init("sequential/dense/BiasAdd/ReadVariableOp:0", db),
    ]
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["t_in"], name="sequential/conv2d/Conv2D__6", perm=[0, 3, 1, 2]),
        helper.make_node(
            "Conv",
            ["t_in", "sequential/conv2d/Conv2D/ReadVariableOp:0", "sequential/conv2d/BiasAdd/ReadVariableOp:0"],
            ["c"], name="sequential/conv2d/BiasAdd",
            auto_pad="SAME_UPPER", dilations=[1, 1], group=1, kernel_shape=[3, 3], strides=[1, 1],
        ),
        helper.make_node("Relu", ["c"], ["r"], name="sequential/conv2d/Relu"),
        helper.make_node("MaxPool", ["r"], ["m"], name="sequential/max_pooling2d/MaxPool",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["m"], ["t_out"], name="sequential/max_pooling2d/MaxPool__16", perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["t_out", "const_fold_opt__31"], ["f"], name="sequential/flatten/Reshape"),
        helper.make_node("MatMul", ["f", "sequential/dense/MatMul/ReadVariableOp:0"], ["mm"], name="sequential/dense/MatMul"),
        helper.make_node("Add", ["mm", "sequential/dense/BiasAdd/ReadVariableOp:0"], ["a"], name="sequential/dense/BiasAdd"),
        helper.make_node("Sigmoid", ["a"], ["dense"], name="sequential/dense/Sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "tf2onnx",
        [helper.make_tensor_value_info("input_1", F, ["unk__40", 6, 6, 2])],
        [helper.make_tensor_value_info("dense", F, ["unk__41", 5])], inits,
    )
    model = helper.make_model(
        graph, producer_name="tf2onnx", producer_version="1.16.1 15c810",
        opset_imports=[helper.make_opsetid("", 15)],
    )
    model.ir_version = 8
    save(model, "keras_nhwc_cnn.onnx")
    x = np.random.default_rng(16).uniform(size=(3, 6, 6, 2)).astype(np.float32)
    reference("keras_nhwc_cnn.onnx", x, "keras_nhwc_cnn.json")


# ---------------------------------------------------------------------------
# 4. BatchNormalization, Pad folded into Conv and AveragePool, a strided
#    Conv with pads, x*x (Square), the dynamic-batch flatten torch writes
#    (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), Gemm with alpha,
#    beta and transB = 0, Dropout with a ratio input (opset 13).
# ---------------------------------------------------------------------------
def make_bn_pad_pool():
    rng = np.random.default_rng(17)
    c1 = uniform(rng, (8, 3, 3, 3), 27)
    c1b = uniform(rng, (8,), 27)
    gamma = rng.uniform(0.5, 1.5, size=8).astype(np.float32)
    beta = rng.uniform(-0.5, 0.5, size=8).astype(np.float32)
    mean = rng.uniform(-0.2, 0.2, size=8).astype(np.float32)
    var = rng.uniform(0.5, 2.0, size=8).astype(np.float32)
    c2 = uniform(rng, (4, 8, 3, 3), 72)
    c2b = uniform(rng, (4,), 72)
    fc = uniform(rng, (64, 5), 64)  # [in, out]: transB = 0
    fcb = uniform(rng, (5,), 64)
    inits = [
        ints_init("pads1", [0, 0, 1, 1, 0, 0, 1, 1]),
        init("features.0.weight", c1),
        init("features.0.bias", c1b),
        init("features.1.weight", gamma),
        init("features.1.bias", beta),
        init("features.1.running_mean", mean),
        init("features.1.running_var", var),
        init("features.5.weight", c2),
        init("features.5.bias", c2b),
        init("classifier.weight_t", fc),
        init("classifier.bias_half", fcb),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        numpy_helper.from_array(np.array(0.1, dtype=np.float32), "ratio"),
    ]
    nodes = [
        helper.make_node("Pad", ["input", "pads1", "zero"], ["p1"], name="/features/pad0/Pad", mode="constant"),
        helper.make_node("Conv", ["p1", "features.0.weight", "features.0.bias"], ["c1"], name="/features/0/Conv", **conv_attrs(3)),
        helper.make_node(
            "BatchNormalization",
            ["c1", "features.1.weight", "features.1.bias", "features.1.running_mean", "features.1.running_var"],
            ["bn"], name="/features/1/BatchNormalization", epsilon=1e-3, momentum=0.9,
        ),
        helper.make_node("Relu", ["bn"], ["r1"], name="/features/2/Relu"),
        helper.make_node("Constant", [], ["pads2"], name="/features/3/Constant",
                         value=numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64), "pads2")),
        helper.make_node("Pad", ["r1", "pads2"], ["p2"], name="/features/3/Pad", mode="constant"),
        helper.make_node(
            "AveragePool", ["p2"], ["ap"], name="/features/4/AveragePool",
            kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0], ceil_mode=0, count_include_pad=0,
        ),
        helper.make_node("Conv", ["ap", "features.5.weight", "features.5.bias"], ["c2"], name="/features/5/Conv", **conv_attrs(3, pads=1, stride=2)),
        helper.make_node("Mul", ["c2", "c2"], ["sq"], name="/features/6/Mul"),
        helper.make_node("Shape", ["sq"], ["shape"], name="/Shape"),
        helper.make_node("Constant", [], ["idx0"], name="/Constant", value=numpy_helper.from_array(np.array(0, dtype=np.int64), "idx0")),
        helper.make_node("Gather", ["shape", "idx0"], ["n"], name="/Gather", axis=0),
        helper.make_node("Constant", [], ["axes0"], name="/Constant_1", value=numpy_helper.from_array(np.array([0], dtype=np.int64), "axes0")),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="/Unsqueeze"),
        helper.make_node("Constant", [], ["minus1"], name="/Constant_2", value=numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus1")),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["sq", "target"], ["flat"], name="/Reshape"),
        helper.make_node("Gemm", ["flat", "classifier.weight_t", "classifier.bias_half"], ["g"], name="/classifier/Gemm", alpha=0.5, beta=2.0, transB=0),
        helper.make_node("Sigmoid", ["g"], ["s"], name="/Sigmoid"),
        helper.make_node("Dropout", ["s", "ratio"], ["output"], name="/dropout/Dropout"),
    ]
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("input", F, ["N", 3, 12, 12])],
        [helper.make_tensor_value_info("output", F, ["N", 5])], inits,
    )
    save(torch_model(graph, 13, 7), "bn_pad_pool.onnx")
    x = np.random.default_rng(18).normal(size=(2, 3, 12, 12)).astype(np.float32)
    reference("bn_pad_pool.onnx", x, "bn_pad_pool.json")
    # The same weights in a PyTorch nn.Sequential state_dict (Dense weights
    # [out, in] as nn.Linear keeps them, alpha and beta applied), float64 for
    # one tensor and the int64 num_batches_tracked PyTorch writes.
    sd = {
        "features.0.weight": c1,
        "features.0.bias": c1b,
        "features.1.weight": gamma,
        "features.1.bias": beta,
        "features.1.running_mean": mean,
        "features.1.running_var": var.astype(np.float64),
        "features.1.num_batches_tracked": np.array(100, dtype=np.int64),
        "features.5.weight": c2,
        "features.5.bias": c2b,
        "classifier.weight": np.ascontiguousarray((0.5 * fc).T),
        "classifier.bias": 2.0 * fcb,
    }
    save_file(sd, os.path.join(HERE, "bn_pad_pool.safetensors"))


# ---------------------------------------------------------------------------
# 5. Refusals: an operator the IR lacks (Softmax) and a residual branch.
# ---------------------------------------------------------------------------
def make_refusals():
    rng = np.random.default_rng(19)
    w = uniform(rng, (4, 6), 6)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "fc.weight"], ["g"], name="/fc/Gemm", transB=1),
            helper.make_node("Softmax", ["g"], ["y"], name="/softmax/Softmax", axis=1),
        ],
        "main_graph",
        [helper.make_tensor_value_info("x", F, ["batch", 6])],
        [helper.make_tensor_value_info("y", F, ["batch", 4])],
        [init("fc.weight", w)],
    )
    save(torch_model(graph, 13, 7), "unknown_op.onnx")

    c = uniform(rng, (2, 2, 3, 3), 18)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="/conv/Conv", **conv_attrs(3, pads=1)),
            helper.make_node("Relu", ["c"], ["r"], name="/relu/Relu"),
            helper.make_node("Add", ["r", "x"], ["y"], name="/Add"),
        ],
        "main_graph",
        [helper.make_tensor_value_info("x", F, ["batch", 2, 5, 5])],
        [helper.make_tensor_value_info("y", F, ["batch", 2, 5, 5])],
        [init("conv.weight", c)],
    )
    save(torch_model(graph, 13, 7), "branch.onnx")


if __name__ == "__main__":
    make_lenet()
    make_mlp()
    make_keras()
    make_keras_nhwc()
    make_bn_pad_pool()
    make_refusals()
    print("fixtures written to", HERE)

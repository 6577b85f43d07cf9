"""Small ONNX models built with onnx.helper (no converter needed) for the tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def linear_model(n_in: int = 4, n_out: int = 2, seed: int = 0, constant: bool = False) -> onnx.ModelProto:
    """Y = X @ W + B, with W an initializer (and, with ``constant``, B a Constant node's tensor attribute)."""
    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(rng.normal(size=(n_in, n_out)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(n_out,)).astype(np.float32), "B")
    nodes = [helper.make_node("MatMul", ["X", "W"], ["XW"]), helper.make_node("Add", ["XW", "B"], ["Y"])]
    initializers = [weights]
    if constant:
        nodes.insert(0, helper.make_node("Constant", [], ["B"], value=bias))
    else:
        initializers.append(bias)
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_in])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, n_out])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelstore-tests")
    model.ir_version = 8
    return model


def run(model: onnx.ModelProto, feeds: dict) -> list:
    import onnxruntime

    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)

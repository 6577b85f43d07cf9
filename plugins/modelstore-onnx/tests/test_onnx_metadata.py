"""What a version records about its ONNX model."""

from __future__ import annotations

import json

import numpy as np
import onnx
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

from modelstore_core.testing.flavors import open_store


def test_metadata(tmp_path):
    X = np.random.default_rng(1).normal(size=(30, 3)).astype(np.float32)
    model = to_onnx(LinearRegression().fit(X, X[:, 0]), X[:1], target_opset=17)
    onnx.helper.set_model_props(model, {"trained_on": "2026-11", "alpha": "0.5"})
    open_store(tmp_path).upload("m", model=model)
    record = open_store(tmp_path, cache="c2").info("m").metadata  # read back from the store
    info = record["model"]
    assert info["framework"] == "onnx" and info["framework_version"] == onnx.__version__
    assert record["flavor"]["model_class"] == "onnx.onnx_ml_pb2.ModelProto" and record["flavor"]["format"] == "onnx"
    assert record["dependencies"]["onnx"] == onnx.__version__
    assert info["producer_name"] == "skl2onnx" and info["opset_import"]["ai.onnx"] == 17
    assert info["inputs"] == [{"name": "X", "elem_type": "FLOAT", "shape": [None, 3]}]
    assert info["outputs"][0]["name"] == "variable" and info["op_types"] == ["LinearRegressor"]
    assert info["hyperparameters"] == {"trained_on": "2026-11", "alpha": "0.5"}  # metadata_props: ONNX keeps no training parameters
    json.dumps(record, allow_nan=False)

"""The flavor kit's contract: discovery, a round trip, deduplication, the error for a missing
plugin, and no framework import for unrelated uploads."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_models import linear_model, run

from modelstore_core.testing.flavors import FlavorContract

X = np.random.default_rng(1).normal(size=(10, 4)).astype(np.float32)


class TestOnnxFlavor(FlavorContract):
    plugin = "onnx"
    distribution = "modelstore-onnx"
    flavor = "onnx"
    framework_modules = ("onnx", "onnxruntime", "skl2onnx", "numpy")
    own_model_code = "import onnx\nmodel = onnx.ModelProto()"

    @pytest.fixture
    def model(self):
        return linear_model()

    def predict(self, model):
        return run(model, {"X": X})

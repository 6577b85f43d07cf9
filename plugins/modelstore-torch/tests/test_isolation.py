"""The flavor kit's contract (discovery, a round trip, deduplication, the disabled plugin's error,
no torch import for other models), and Keras models left to modelstore-keras."""

from __future__ import annotations

import pytest
import torch

from modelstore_core.testing.flavors import FlavorContract, run_python_json

X = torch.linspace(-1, 1, 12).reshape(6, 2)


def net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


class TestTorchFlavor(FlavorContract):
    plugin = "torch"
    distribution = "modelstore-torch"
    flavor = "torch"
    framework_modules = ("torch", "safetensors")
    unrelated = ('{"not": "tensors"}', "object()")
    own_model_code = "import torch\nmodel = torch.nn.Linear(2, 2)"
    load_options = {"model": net}  # the weights are loaded into a new module from this factory

    @pytest.fixture
    def model(self):
        torch.manual_seed(0)
        return net().eval()

    def predict(self, model):
        with torch.no_grad():
            return model(X)


def test_keras_models_are_left_to_modelstore_keras(tmp_path):
    # On the torch backend every Keras model is an nn.Module; storing its state_dict would lose
    # the architecture Keras needs, so this plugin declines it and the error names modelstore-keras.
    out = run_python_json(
        """
        import json, os, sys
        os.environ["KERAS_BACKEND"] = "torch"
        import keras, torch
        from modelstore_core import ModelStore, UnsupportedModelError
        import modelstore_torch
        root = sys.argv[1]
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        result = {"is_module": isinstance(model, torch.nn.Module)}
        result["hook"] = modelstore_torch.plugin.modelstore_serialize(model=model, directory=None, options={})
        try:
            ModelStore(root + "/store").upload("k", model=model)
        except UnsupportedModelError as e:
            result["error"] = str(e)
        print(json.dumps(result))
        """,
        tmp_path,
        env={"MODELSTORE_DISABLE_PLUGINS": "keras"},  # were modelstore-keras installed here, it would take the model
        args=[tmp_path],
    )
    assert out["is_module"] is True and out["hook"] is None
    assert "pip install modelstore-keras" in out["error"]

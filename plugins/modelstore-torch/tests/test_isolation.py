"""Plugin discovery, from separate processes: the disabled plugin's error, and no torch import for other models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import torch


def run(code: str, tmp_path, **env) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_disabled_plugin_names_what_to_install(store, tmp_path):
    store.upload("net", model=torch.nn.Linear(2, 2))
    out = run(
        """
        import json, sys
        import torch
        from modelstore_core import ModelStore, MissingPluginError, UnsupportedModelError
        root = sys.argv[1]
        s = ModelStore(root + "/store", cache_dir=root + "/cache-disabled")
        result = {}
        try:
            s.load("net")
        except MissingPluginError as e:
            result["load"] = str(e)
        try:
            s.upload("net", model=torch.nn.Linear(2, 2))
        except UnsupportedModelError as e:
            result["upload"] = str(e)
        result["imported"] = "modelstore_torch" in sys.modules
        print(json.dumps(result))
        """,
        tmp_path,
        MODELSTORE_DISABLE_PLUGINS="torch",
    )
    assert "pip install modelstore-torch" in out["load"] and "'torch'" in out["load"]
    assert "pip install modelstore-torch" in out["upload"]
    assert out["imported"] is False


def test_unrelated_uploads_do_not_import_torch(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01" * 100)
    out = run(
        """
        import json, sys
        from modelstore_core import ModelStore, UnsupportedModelError
        from modelstore_core.plugins import get_plugins
        root = sys.argv[1]
        s = ModelStore(root + "/store", cache_dir=root + "/cache")
        s.upload("raw", files=[root + "/weights.bin"])
        paths = s.load("raw")
        try:
            s.upload("other", model={"not": "tensors"})
        except UnsupportedModelError:
            pass
        print(json.dumps({
            "loaded": [p.name for p in paths],
            "registered": get_plugins().manager.has_plugin("torch"),
            "plugin_module": "modelstore_torch" in sys.modules,
            "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
            "safetensors": "safetensors" in sys.modules,
        }))
        """,
        tmp_path,
    )
    assert out["loaded"] == ["weights.bin"]
    assert out["registered"] is True and out["plugin_module"] is True  # the plugin was there and asked
    assert out["torch"] == [] and out["safetensors"] is False


def test_keras_models_are_left_to_modelstore_keras(tmp_path):
    # On the torch backend every Keras model is an nn.Module; storing its state_dict would lose
    # the architecture Keras needs, so this plugin declines it and the error names modelstore-keras.
    out = run(
        """
        import json, os, sys
        os.environ["KERAS_BACKEND"] = "torch"
        import keras, torch
        from modelstore_core import ModelStore, UnsupportedModelError
        import modelstore_torch
        root = sys.argv[1]
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        result = {"is_module": isinstance(model, torch.nn.Module)}
        result["hook"] = modelstore_torch.modelstore_serialize(model=model, directory=None, options={})
        try:
            ModelStore(root + "/store").upload("k", model=model)
        except UnsupportedModelError as e:
            result["error"] = str(e)
        print(json.dumps(result))
        """,
        tmp_path,
        MODELSTORE_DISABLE_PLUGINS="keras",  # were modelstore-keras installed here, it would take the model
    )
    assert out["is_module"] is True and out["hook"] is None
    assert "pip install modelstore-keras" in out["error"]

"""Plugin discovery, from separate processes: the disabled plugin's error, and no keras import for other models.

(That modelstore-torch leaves Keras models, which are nn.Modules on the torch backend, to this
plugin is tested in modelstore-torch's suite, which installs keras for it.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras


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
    store.upload("net", model=keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    out = run(
        """
        import json, sys
        import keras
        from modelstore_core import ModelStore, MissingPluginError, UnsupportedModelError
        root = sys.argv[1]
        s = ModelStore(root + "/store", cache_dir=root + "/cache-disabled")
        result = {}
        try:
            s.load("net")
        except MissingPluginError as e:
            result["load"] = str(e)
        try:
            s.upload("net", model=keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
        except UnsupportedModelError as e:
            result["upload"] = str(e)
        result["imported"] = "modelstore_keras" in sys.modules
        print(json.dumps(result))
        """,
        tmp_path,
        MODELSTORE_DISABLE_PLUGINS="keras",
    )
    assert "pip install modelstore-keras" in out["load"] and "'keras'" in out["load"]
    assert "pip install modelstore-keras" in out["upload"]
    assert out["imported"] is False


def test_unrelated_uploads_do_not_import_keras(tmp_path):
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
            s.upload("other", model=[1, 2, 3])
        except UnsupportedModelError:
            pass
        print(json.dumps({
            "loaded": [p.name for p in paths],
            "registered": get_plugins().manager.has_plugin("keras"),
            "plugin_module": "modelstore_keras" in sys.modules,
            "frameworks": sorted(m for m in ("keras", "torch", "tensorflow", "jax", "h5py", "numpy") if m in sys.modules),
        }))
        """,
        tmp_path,
    )
    assert out["loaded"] == ["weights.bin"]
    assert out["registered"] is True and out["plugin_module"] is True  # the plugin was there and asked
    assert out["frameworks"] == []

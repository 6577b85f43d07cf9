"""Discovery, the error for a missing plugin, and no framework import for unrelated uploads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb
from xgboost_plugin_helpers import isolated, open_store, run_python  # noqa: F401 - autouse fixture

from modelstore_core import MissingPluginError
from modelstore_core.plugins import get_plugins, reset_plugins


def small_booster():
    x = np.arange(40, dtype=float).reshape(20, 2)
    return xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(x, label=x[:, 0]), num_boost_round=2)


def test_plugin_is_found_through_its_entry_point():
    plugins = get_plugins()
    assert plugins.manager.has_plugin("xgboost")
    assert plugins.distributions["xgboost"] == ("modelstore-xgboost", "0.1.0")
    assert ["xgboost"] in plugins.hook.modelstore_flavors()


def test_loading_without_the_plugin_says_what_to_install(tmp_path):
    open_store(tmp_path).upload("m", model=small_booster())
    proc = run_python(
        f"""
        from modelstore_core import ModelStore, MissingPluginError
        try:
            ModelStore({str(tmp_path / "store")!r}, cache_dir={str(tmp_path / "c2")!r}).load("m")
        except MissingPluginError as exc:
            print("ERROR:", exc)
        """,
        cwd=tmp_path,
        env={"MODELSTORE_DISABLE_PLUGINS": "xgboost"},
    )
    assert "ERROR:" in proc.stdout and "pip install modelstore-xgboost" in proc.stdout


def test_missing_plugin_in_process(tmp_path, monkeypatch):
    open_store(tmp_path).upload("m", model=small_booster())
    monkeypatch.setenv("MODELSTORE_DISABLE_PLUGINS", "xgboost")
    reset_plugins()
    with pytest.raises(MissingPluginError, match="pip install modelstore-xgboost"):
        open_store(tmp_path, cache="c2").load("m")


def test_unrelated_uploads_never_import_xgboost(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\x01" * 64)
    proc = run_python(
        f"""
        import json, sys
        from modelstore_core import ModelStore, UnsupportedModelError
        from modelstore_core.plugins import get_plugins
        store = ModelStore({str(tmp_path / "store")!r}, cache_dir={str(tmp_path / "c")!r})
        v = store.upload("raw", files=[{str(tmp_path / "weights.bin")!r}])
        paths = store.load("raw")
        try:
            store.upload("obj", model=object())
        except UnsupportedModelError:
            pass
        print(json.dumps({{
            "registered": get_plugins().manager.has_plugin("xgboost"),
            "flavor": v.flavor["name"],
            "loaded": [p.name for p in paths],
            "imported": sorted(m for m in ("xgboost", "sklearn", "numpy", "scipy") if m in sys.modules),
        }}))
        """,
        cwd=tmp_path,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"registered": True, "flavor": "files", "loaded": ["weights.bin"], "imported": []}

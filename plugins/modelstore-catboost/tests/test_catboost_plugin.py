"""Discovery, the error for a missing plugin, and no framework import for unrelated uploads."""

from __future__ import annotations

import json

import numpy as np
import pytest
from catboost import CatBoostRegressor
from catboost_plugin_helpers import isolated, open_store, run_python  # noqa: F401 - autouse fixture

from modelstore_core import MissingPluginError
from modelstore_core.plugins import get_plugins, reset_plugins


def small_model():
    x = np.arange(60, dtype=float).reshape(30, 2)
    return CatBoostRegressor(iterations=3, depth=2, thread_count=1, verbose=False, allow_writing_files=False).fit(x, x[:, 0])


def test_plugin_is_found_through_its_entry_point():
    plugins = get_plugins()
    assert plugins.manager.has_plugin("catboost")
    assert plugins.distributions["catboost"] == ("modelstore-catboost", "0.1.0")
    assert ["catboost"] in plugins.hook.modelstore_flavors()


def test_loading_without_the_plugin_says_what_to_install(tmp_path):
    open_store(tmp_path).upload("m", model=small_model())
    proc = run_python(
        f"""
        from modelstore_core import ModelStore, MissingPluginError
        try:
            ModelStore({str(tmp_path / "store")!r}, cache_dir={str(tmp_path / "c2")!r}).load("m")
        except MissingPluginError as exc:
            print("ERROR:", exc)
        """,
        cwd=tmp_path,
        env={"MODELSTORE_DISABLE_PLUGINS": "catboost"},
    )
    assert "ERROR:" in proc.stdout and "pip install modelstore-catboost" in proc.stdout


def test_missing_plugin_in_process(tmp_path, monkeypatch):
    open_store(tmp_path).upload("m", model=small_model())
    monkeypatch.setenv("MODELSTORE_DISABLE_PLUGINS", "catboost")
    reset_plugins()
    with pytest.raises(MissingPluginError, match="pip install modelstore-catboost"):
        open_store(tmp_path, cache="c2").load("m")


def test_unrelated_uploads_never_import_catboost(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\x02" * 64)
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
            "registered": get_plugins().manager.has_plugin("catboost"),
            "flavor": v.flavor["name"],
            "loaded": [p.name for p in paths],
            "imported": sorted(m for m in ("catboost", "_catboost", "pandas", "numpy") if m in sys.modules),
        }}))
        """,
        cwd=tmp_path,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"registered": True, "flavor": "files", "loaded": ["weights.bin"], "imported": []}

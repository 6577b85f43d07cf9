"""The same model always gives the same bytes, so a re-upload stores no new object."""

from __future__ import annotations

from modelstore_core.testing.flavors import assert_deterministic_across_processes, assert_reupload_deduplicated, build, open_store

MAKE_MODELS = """
from prophet_models import simple
additive = simple()
multiplicative = simple(seasonality_mode="multiplicative", changepoint_prior_scale=0.5)
"""


def test_reupload_is_deduplicated(tmp_path):
    scope = build(MAKE_MODELS)
    assert_reupload_deduplicated(open_store(tmp_path), tmp_path, {"a": scope["additive"], "m": scope["multiplicative"]})


def test_same_fit_in_another_process_gives_the_same_bytes(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # prophet_models, for the other interpreter
    assert_deterministic_across_processes(tmp_path, MAKE_MODELS, {"a": "additive", "m": "multiplicative"})

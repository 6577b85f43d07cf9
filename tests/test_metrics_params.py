"""Metrics and params: recorded at upload, checked on the way in and on the way back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelstore_core import CorruptRecordError, ModelStore, UsageError
from modelstore_core.testing.tamper_contract import edit_record


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    return path


def test_metrics_and_params_are_recorded_and_read_back(store, model):
    v = store.upload(
        "churn",
        files=[model],
        metrics={"auc": np.float32(0.91), "rmse": 3.2, "trees": np.int64(120), "epochs": 3},
        params={"lr": np.float64(0.1), "optimizer": "adam", "early_stop": True, "seed": None, "missing": float("nan")},
    )
    assert v.metrics == {"auc": 0.91, "rmse": 3.2, "trees": 120.0, "epochs": 3.0}  # float32 kept at its own precision
    assert v.params == {"lr": 0.1, "optimizer": "adam", "early_stop": True, "seed": None, "missing": "nan"}
    again = store.info("churn", 1)
    assert again.metrics == v.metrics and again.params == v.params
    assert again.metadata["metrics"]["epochs"] == 3 and isinstance(again.metadata["metrics"]["epochs"], int)  # kept as given
    plain = store.upload("churn", files=[model])
    assert (plain.metrics, plain.params, plain.signature, plain.data) == ({}, {}, None, {})
    assert "metrics" not in plain.metadata  # nothing recorded, no key


@pytest.mark.parametrize(
    "metrics, problem",
    [
        ({"auc": "0.9"}, "must be a number, not str"),
        ({"auc": True}, "must be a number, not bool"),
        ({"auc": {"value": 1}}, "must be a number, not dict"),
        ({"loss": float("nan")}, "finite numbers"),
        ({"loss": float("-inf")}, "finite numbers"),
        ({"loss": np.float64("inf")}, "finite numbers"),
        ({"n": 10**400}, "too large"),
        ({"val/loss": 1.0}, "invalid metric name"),
        ({"<script>": 1.0}, "invalid metric name"),
        ([("auc", 0.9)], "must be a dict"),
    ],
)
def test_bad_metrics_are_refused_before_anything_is_written(store, model, metrics, problem):
    with pytest.raises(UsageError, match=problem):
        store.upload("churn", files=[model], metrics=metrics)
    assert store.list_domains() == []


@pytest.mark.parametrize(
    "params, problem",
    [({"layers": [1, 2]}, "not list"), ({"opt": {"lr": 1}}, "not dict"), ({"a b": 1}, "invalid param name"), ("lr=1", "must be a dict")],
)
def test_bad_params_are_refused(store, model, params, problem):
    with pytest.raises(UsageError, match=problem):
        store.upload("churn", files=[model], params=params)


@pytest.mark.parametrize(
    "section, value, field",
    [
        ("metrics", {"auc": "0.91"}, "metrics.auc"),
        ("metrics", {"auc": {"$gt": 0}}, "metrics.auc"),
        ("metrics", {"auc": True}, "metrics.auc"),
        ("metrics", {"auc": math.nan}, "metrics.auc"),
        ("metrics", {"auc": math.inf}, "metrics.auc"),
        ("metrics", {"big": 10**400}, "metrics.big"),
        ("metrics", {"<script>alert(1)</script>": 1}, "metrics.<script>"),
        ("metrics", ["auc", 0.9], "metrics"),
        ("metrics", "auc=0.9", "metrics"),
        ("params", {"lr": [0.1]}, "params.lr"),
        ("params", {"lr": {"v": 1}}, "params.lr"),
        ("params", {"lr": math.nan}, "params.lr"),
        ("params", {"\x1b[31m": 1}, "params.\x1b[31m"),
        ("signature", {"format": "columns", "source": "x", "inputs": [{"name": 1}]}, "signature.inputs[0].name"),
        ("signature", {"format": "pickle", "source": "x", "inputs": []}, "signature.format"),
        ("signature", {"format": "tensors", "source": "x", "inputs": [{"shape": [-1, 3]}]}, "signature.inputs[0].shape"),
        ("data", {"train": {"kind": "dataframe", "sha256": "x" * 64}}, "data.train.sha256"),
        ("data", {"train": {"kind": "exe", "sha256": "0" * 64}}, "data.train.kind"),
        ("data", {"../x": {"kind": "file", "sha256": "0" * 64}}, "data.../x"),
        ("data", {"train": {"kind": "file", "sha256": "0" * 64, "bytes": -1}}, "data.train.bytes"),
    ],
)
def test_a_hostile_record_is_a_corrupt_record_error(store, model, section, value, field):
    """A record written by anyone: bad metrics, params, signature or data fail as a typed error naming the field."""
    store.upload("churn", files=[model], metrics={"auc": 0.5})
    edit_record(store, "churn", 1, lambda doc: doc.__setitem__(section, value))
    v = store.list_versions("churn")[0]
    with pytest.raises(CorruptRecordError) as caught:
        v.metrics  # noqa: B018
    assert caught.value.field.startswith(field[:40])


def test_a_plugin_writing_a_core_key_fails_before_anything_is_committed(store, model):
    class BadMetrics:
        from modelstore_core.hookspecs import hookimpl

        @hookimpl
        def modelstore_collect_metadata(self):
            return {"metrics": {"auc": "high"}}

    plugin = BadMetrics()
    store.plugins.manager.register(plugin)
    try:
        with pytest.raises(TypeError, match="metrics.auc"):
            store.upload("churn", files=[model])
    finally:
        store.plugins.manager.unregister(plugin)
    assert store.list_domains() == []

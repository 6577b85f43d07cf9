"""Nothing from an artifact runs unless the caller trusts it: skops types are audited against a
fixed list plus the caller's, pickles need trust=True, and tampered bytes never reach a loader."""

from __future__ import annotations

import importlib
import json
import os
import pickle
import stat
from pathlib import Path

import modelstore_sklearn
import numpy as np
import pytest
from modelstore_sklearn._checks import CHECKED_TYPES
from modelstore_sklearn._persist import DEFAULT_TRUSTED_TYPES, MEMORY_UNSAFE_TYPES
from sklearn.base import BaseEstimator
from sklearn.cluster import Birch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from modelstore_core import IntegrityError, UntrustedArtifactError
from modelstore_core.testing.flavors import open_store

X, Y = make_classification(n_samples=80, n_features=4, random_state=0)


class CreatesFile:
    """Unpickling this opens (so creates) the file: what a malicious pickle would do."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class Custom(BaseEstimator):
    """A user estimator: skops stores it, but its type is not trusted on load by default.
    Rebuilding it runs ``__setstate__``, which here leaves a trace."""

    def __init__(self, marker: str = ""):
        self.marker = marker

    def fit(self, x, y=None):
        self.mean_ = np.asarray(x).mean(axis=0)
        return self

    def __setstate__(self, state):
        Path(state["marker"]).touch()
        self.__dict__.update(state)


def birch():
    return Birch(n_clusters=2).fit(X)


def test_model_skops_cannot_represent_falls_back_to_pickle_behind_trust(tmp_path):
    model = birch()
    with pytest.warns(UserWarning, match="pickle"):
        v = open_store(tmp_path).upload("b", model=model)
    assert v.flavor.format == "pickle" and v.flavor.safe is False
    assert [f.path for f in v.files] == ["model.joblib"]
    reader = open_store(tmp_path, cache="reader")

    with pytest.raises(UntrustedArtifactError, match="trust=True"):
        reader.load("b")

    loaded = reader.load("b", trust=True)
    assert type(loaded) is Birch
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_malicious_pickle_model_is_not_unpickled_without_trust(tmp_path):
    marker = tmp_path / "pwned"
    model = birch()
    model.payload_ = CreatesFile(marker)  # a real Birch whose pickle creates a file when loaded
    with pytest.warns(UserWarning):
        v = open_store(tmp_path).upload("evil", model=model)
    assert v.flavor.format == "pickle" and not marker.exists()

    with pytest.raises(UntrustedArtifactError):
        open_store(tmp_path, cache="reader").load("evil")
    assert not marker.exists()

    # The payload is real: trusting the artifact runs it.
    open_store(tmp_path, cache="trusting").load("evil", trust=True)
    assert marker.exists()


def _object_path(tmp_path: Path, sha256: str) -> Path:
    return tmp_path / "store" / "objects" / "sha256" / sha256[:2] / sha256


def _overwrite(path: Path, data: bytes) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    path.write_bytes(data)


def test_overwritten_object_bytes_fail_the_sha256_check_before_any_loader(tmp_path):
    marker = tmp_path / "pwned"
    v = open_store(tmp_path).upload("m", model=LogisticRegression().fit(X, Y))
    _overwrite(_object_path(tmp_path, v.files[0].sha256), pickle.dumps(CreatesFile(marker)))

    with pytest.raises(IntegrityError, match="model.skops"):
        open_store(tmp_path, cache="reader").load("m", trust=True)
    assert not marker.exists()


def test_rewritten_record_claiming_a_safe_pickle_still_needs_trust(tmp_path):
    """An attacker who can also rewrite the version record (fixing the sha256) and marks the
    pickle ``safe``: the loader decides from the format, never from the ``safe`` flag."""
    marker = tmp_path / "pwned"
    v = open_store(tmp_path).upload("m", model=LogisticRegression().fit(X, Y))
    evil = pickle.dumps(CreatesFile(marker))
    import hashlib

    sha = hashlib.sha256(evil).hexdigest()
    target = _object_path(tmp_path, sha)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(evil)
    record_path = tmp_path / "store" / "domains" / "m" / "versions" / f"{v.version:010d}.json"
    record = json.loads(record_path.read_text())
    record["flavor"].update(format="pickle", safe=True, options={"file": "model.joblib"})
    record["files"] = [{"path": "model.joblib", "size": len(evil), "sha256": sha}]
    _overwrite(record_path, json.dumps(record).encode())

    with pytest.raises(UntrustedArtifactError):
        open_store(tmp_path, cache="reader").load("m")
    assert not marker.exists()


def test_skops_types_outside_the_allowed_set_are_refused_before_anything_is_built(tmp_path):
    marker = tmp_path / "setstate-ran"
    model = Custom(marker=str(marker)).fit(X)
    v = open_store(tmp_path).upload("c", model=model)
    assert v.flavor.format == "skops"
    custom = f"{Custom.__module__}.Custom"
    assert v.flavor.options["types_to_trust"] == [custom]
    marker.unlink(missing_ok=True)  # the upload-time read-back rebuilt the uploader's own model

    with pytest.raises(UntrustedArtifactError) as err:
        open_store(tmp_path, cache="reader").load("c")
    assert custom in str(err.value) and "trusted_types=" in str(err.value)
    assert not marker.exists()

    loaded = open_store(tmp_path, cache="reader").load("c", trusted_types=[custom])
    assert marker.exists()  # proves that the refused load would have run the class's code
    np.testing.assert_array_equal(loaded.mean_, model.mean_)


def test_caller_trusted_types_do_not_widen_to_other_types(tmp_path):
    model = Custom(marker=str(tmp_path / "m")).fit(X)
    model.extra_ = Custom(marker=str(tmp_path / "m"))
    open_store(tmp_path).upload("c", model=model)
    with pytest.raises(UntrustedArtifactError, match="Custom"):
        open_store(tmp_path, cache="reader").load("c", trusted_types=["sklearn.tree._tree.Tree"])


def test_default_trusted_types_are_exactly_the_safe_and_the_checked_ones():
    """Types whose stored arrays compiled code indexes without bounds checks are trusted by default
    only where _checks.py validates them (trees, tree indexes, plain metrics); the others stay untrusted."""
    for name in DEFAULT_TRUSTED_TYPES + MEMORY_UNSAFE_TYPES:
        module, _, attr = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), f"{name} no longer exists in this scikit-learn"
    assert {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
    } <= set(CHECKED_TYPES)
    assert set(CHECKED_TYPES) <= set(DEFAULT_TRUSTED_TYPES)
    for unsafe in MEMORY_UNSAFE_TYPES:
        assert unsafe not in DEFAULT_TRUSTED_TYPES
    assert "sklearn.metrics._dist_metrics.MahalanobisDistance64" not in DEFAULT_TRUSTED_TYPES


def test_plugin_is_the_fallback_for_sklearn_api_classes(tmp_path):
    """xgboost's and catboost's sklearn-API classes subclass sklearn's BaseEstimator: this plugin's
    serializer runs last (``trylast``), so their own plugins store them when installed."""
    xgb_like = type("XGBClassifier", (BaseEstimator,), {"__module__": "xgboost.sklearn"})()
    plugin = modelstore_sklearn.plugin
    assert plugin.modelstore_serialize.modelstore_impl["trylast"] is True
    assert plugin.handles(xgb_like) is True
    assert plugin.modelstore_serialize(model={"not": "a model"}, directory=tmp_path, options={}) is None
    assert plugin.handles(Custom()) is True  # a user's own estimator is scikit-learn's
    assert plugin.handles(LogisticRegression()) is True
    assert plugin.handles({"not": "a model"}) is False
    assert list(tmp_path.iterdir()) == []


def test_model_neither_skops_nor_pickle_can_store_is_refused_with_both_reasons(tmp_path):
    """skops writes a lambda by name but cannot rebuild it; the upload-time read-back catches
    that instead of storing a version nobody can load."""
    from sklearn.preprocessing import FunctionTransformer

    from modelstore_core import ModelStoreError

    model = FunctionTransformer(func=lambda x: x + 1).fit(X)
    store = open_store(tmp_path)
    with pytest.raises(ModelStoreError, match="skops cannot represent it .* pickling it failed too"):
        store.upload("f", model=model)
    assert store.list_domains() == []

"""Run with only modelstore-core (and scikit-learn) installed: the `core_only` nox session."""

from __future__ import annotations

import importlib.metadata

import pytest

from modelstore_core import ModelStore, UnsupportedModelError


def test_only_the_core_is_installed():
    dists = {d.metadata["Name"] for d in importlib.metadata.distributions()}
    assert "modelstore-core" in dists
    assert not {d for d in dists if d.startswith("modelstore-") and d != "modelstore-core"}


def test_an_sklearn_model_asks_for_the_sklearn_plugin(tmp_path):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    store = ModelStore(tmp_path / "store")
    with pytest.raises(UnsupportedModelError) as err:
        store.upload("churn", model=clf)
    message = str(err.value)
    assert "sklearn.linear_model._logistic.LogisticRegression" in message
    assert "pip install modelstore-sklearn" in message
    assert "files" in message  # the installed flavors
    assert not (tmp_path / "store").exists()

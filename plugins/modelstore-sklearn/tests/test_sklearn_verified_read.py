"""A skops archive is parsed from the bytes that are hashed as they are read (one pass), a pickle
(with trust) is unpickled only from a verified file: a stored object damaged after upload (its last
byte changed, or cut short) raises ``IntegrityError`` and nothing is returned, on a cold cache and
on one that verified the file before."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from sklearn.cluster import Birch
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

from modelstore_core import IntegrityError
from modelstore_core.testing.flavors import open_store
from modelstore_core.testing.tamper_contract import damage_stored_file

X, Y = make_classification(n_samples=80, n_features=4, random_state=0)


def forest():
    return RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, Y), "model.skops", {}


def pickled():  # skops cannot represent Birch: stored as a pickle (with a warning)
    return Birch(n_clusters=2).fit(X), "model.joblib", {"trust": True}


@pytest.mark.parametrize("how", ["flip-last", "truncate"])
@pytest.mark.parametrize("case", [forest, pickled])
def test_a_damaged_model_file_raises_and_returns_nothing(tmp_path, case, how):
    store = open_store(tmp_path)
    model, name, load = case()
    with pytest.warns(UserWarning, match="pickle") if name == "model.joblib" else contextlib.nullcontext():
        v = store.upload("m", model=model)
    assert [f.path for f in v.files] == [name]
    warm = open_store(tmp_path, cache="warm")
    np.testing.assert_array_equal(warm.load("m", **load).predict(X), model.predict(X))  # verified once, remembered

    damage_stored_file(store, v, name, how)
    for reader in (open_store(tmp_path, cache="cold"), warm):
        with pytest.raises(IntegrityError, match=name):
            reader.load("m", **load)

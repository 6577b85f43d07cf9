"""The text model is read once, through the core (hashed as it is read), checked and parsed from
memory: a stored object damaged after upload (its last byte changed, or cut short) raises
``IntegrityError`` and nothing is returned, on a cold cache and on one that verified the file before."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from modelstore_core import IntegrityError
from modelstore_core.testing.flavors import open_store
from modelstore_core.testing.tamper_contract import check_verdict_reuse, damage_stored_file

X = np.random.default_rng(0).normal(size=(80, 4))
Y = (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize("how", ["flip-last", "truncate"])
def test_a_damaged_model_file_raises_and_returns_nothing(tmp_path, how):
    model = lgb.LGBMClassifier(n_estimators=4, num_leaves=4, min_child_samples=5, n_jobs=1, verbose=-1).fit(X, Y)
    store = open_store(tmp_path)
    v = store.upload("m", model=model)
    warm = open_store(tmp_path, cache="warm")
    np.testing.assert_array_equal(warm.load("m").predict_proba(X), model.predict_proba(X))  # verified once, remembered

    damage_stored_file(store, v, "model.txt", how)
    for reader in (open_store(tmp_path, cache="cold"), warm):
        with pytest.raises(IntegrityError, match="model.txt"):
            reader.load("m")


def test_the_same_bytes_in_another_store_load_on_the_first_checks_verdict(tmp_path):
    model = lgb.LGBMClassifier(n_estimators=4, num_leaves=4, min_child_samples=5, n_jobs=1, verbose=-1).fit(X, Y)
    check_verdict_reuse(tmp_path, model, "model.txt", lambda m: m.predict_proba(X), "modelstore-lightgbm")

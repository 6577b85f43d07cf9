"""The model file is parsed from the bytes that are hashed as they are read (one pass): a stored
object damaged after upload (its last byte changed, or cut short) raises ``IntegrityError`` and
nothing is returned, on a cold cache and on one that verified the file before."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from modelstore_core import IntegrityError
from modelstore_core.testing.flavors import open_store
from modelstore_core.testing.tamper_contract import check_verdict_reuse, damage_stored_file

X = np.random.default_rng(0).normal(size=(80, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize("how", ["flip-last", "truncate"])
@pytest.mark.parametrize("fmt", ["ubj", "json"])
def test_a_damaged_model_file_raises_and_returns_nothing(tmp_path, fmt, how):
    model = xgb.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1).fit(X, Y)
    store = open_store(tmp_path)
    v = store.upload("m", model=model, format=fmt)
    warm = open_store(tmp_path, cache="warm")
    np.testing.assert_array_equal(warm.load("m").predict_proba(X), model.predict_proba(X))  # verified once, remembered

    damage_stored_file(store, v, f"model.{fmt}", how)
    for reader in (open_store(tmp_path, cache="cold"), warm):
        with pytest.raises(IntegrityError, match=f"model.{fmt}"):
            reader.load("m")


@pytest.mark.parametrize("fmt", ["ubj", "json"])
def test_the_same_bytes_in_another_store_load_on_the_first_checks_verdict(tmp_path, fmt):
    model = xgb.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1).fit(X, Y)
    check_verdict_reuse(tmp_path, model, f"model.{fmt}", lambda m: m.predict_proba(X), "modelstore-xgboost", format=fmt)

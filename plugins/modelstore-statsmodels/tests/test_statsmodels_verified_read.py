"""A trusted pickle is unpickled only from a verified path (``verified.path``): a stored object
damaged after upload (its last byte changed, or cut short) raises ``IntegrityError`` and nothing is
returned, on a cold cache and on one that verified the file before."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from modelstore_core import IntegrityError
from modelstore_core.testing.flavors import open_store
from modelstore_core.testing.tamper_contract import damage_stored_file

X = sm.add_constant(np.random.default_rng(0).normal(size=(30, 2)))
Y = X @ [1.0, 2.0, 3.0] + np.random.default_rng(1).normal(0, 0.1, 30)


@pytest.mark.parametrize("how", ["flip-last", "truncate"])
def test_a_damaged_model_file_raises_and_returns_nothing(tmp_path, how):
    model = sm.OLS(Y, X).fit()
    store = open_store(tmp_path)
    v = store.upload("m", model=model)
    warm = open_store(tmp_path, cache="warm")
    np.testing.assert_array_equal(warm.load("m", trust=True).predict(X), model.predict(X))  # verified once, remembered

    damage_stored_file(store, v, "model.pickle", how)
    for reader in (open_store(tmp_path, cache="cold"), warm):
        with pytest.raises(IntegrityError, match=r"model\.pickle"):
            reader.load("m", trust=True)

"""The JSON model is read once, through the core (hashed as it is read), checked and rebuilt from
memory: a stored object damaged after upload (its last byte changed, or cut short) raises
``IntegrityError`` and nothing is returned, on a cold cache and on one that verified the file before."""

from __future__ import annotations

import numpy as np
import pytest
from prophet_models import simple, yhat

from modelstore_core import IntegrityError
from modelstore_core.testing.flavors import open_store
from modelstore_core.testing.tamper_contract import damage_stored_file


@pytest.fixture(scope="module")
def model():
    return simple()


@pytest.mark.parametrize("how", ["flip-last", "truncate"])
def test_a_damaged_model_file_raises_and_returns_nothing(tmp_path, model, how):
    store = open_store(tmp_path)
    v = store.upload("m", model=model)
    warm = open_store(tmp_path, cache="warm")
    np.testing.assert_allclose(yhat(warm.load("m")), yhat(model))  # verified once, remembered

    damage_stored_file(store, v, "model.json", how)
    for reader in (open_store(tmp_path, cache="cold"), warm):
        with pytest.raises(IntegrityError, match="model.json"):
            reader.load("m")

"""Keras and the zip checks need a file: the plugin takes it through ``verified.path`` (hashed
before either opens it, or proven unchanged since). A stored object damaged after upload (its last
byte changed, or cut short) raises ``IntegrityError`` and nothing is returned, on a cold cache and
on one that verified the file before."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from modelstore_core import IntegrityError
from modelstore_core.testing.flavors import open_store
from modelstore_core.testing.tamper_contract import damage_stored_file

X = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")


@pytest.mark.parametrize("how", ["flip-last", "truncate"])
def test_a_damaged_model_file_raises_and_returns_nothing(tmp_path, how):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    store = open_store(tmp_path)
    v = store.upload("m", model=model)
    warm = open_store(tmp_path, cache="warm")
    np.testing.assert_allclose(warm.load("m").predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)  # verified, remembered

    damage_stored_file(store, v, "model.keras", how)
    for reader in (open_store(tmp_path, cache="cold"), warm):
        with pytest.raises(IntegrityError, match="model.keras"):
            reader.load("m")

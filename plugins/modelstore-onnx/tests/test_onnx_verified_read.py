"""``model.onnx`` is parsed from the bytes hashed as they are read (one pass), and an external data
file is verified before its size is trusted or a tensor is read from it: a stored object damaged
after upload (its last byte changed, or cut short) raises ``IntegrityError`` and nothing is
returned, on a cold cache and on one that verified the file before."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_models import linear_model, run

from modelstore_core import IntegrityError
from modelstore_core.testing.flavors import open_store
from modelstore_core.testing.tamper_contract import damage_stored_file

X = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)


@pytest.mark.parametrize("how", ["flip-last", "truncate"])
@pytest.mark.parametrize("file", ["model.onnx", "model.onnx.data"])
def test_a_damaged_model_file_raises_and_returns_nothing(tmp_path, file, how):
    model = linear_model(64, 32)
    store = open_store(tmp_path)
    v = store.upload("m", model=model, external_data=True)
    warm = open_store(tmp_path, cache="warm")
    np.testing.assert_array_equal(run(warm.load("m"), {"X": X})[0], run(model, {"X": X})[0])  # verified once, remembered

    damage_stored_file(store, v, file, how)
    for reader in (open_store(tmp_path, cache="cold"), warm):
        with pytest.raises(IntegrityError, match=file.replace(".", r"\.")):
            reader.load("m")

"""The flavor kit's contract: discovery, a round trip, deduplication, the error for a missing
plugin, and no framework import for unrelated uploads."""

from __future__ import annotations

import numpy as np
import pytest
from catboost import CatBoostRegressor

from modelstore_core.testing.flavors import FlavorContract

X = np.arange(60, dtype=float).reshape(30, 2)


class TestCatboostFlavor(FlavorContract):
    plugin = "catboost"
    distribution = "modelstore-catboost"
    flavor = "catboost"
    framework_modules = ("catboost", "_catboost", "pandas", "numpy")
    own_model_code = "from catboost import CatBoostRegressor\nmodel = CatBoostRegressor()"

    @pytest.fixture
    def model(self):
        return CatBoostRegressor(iterations=3, depth=2, thread_count=1, verbose=False, allow_writing_files=False).fit(X, X[:, 0])

    def predict(self, model):
        return model.predict(X)

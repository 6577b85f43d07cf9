"""The flavor kit's contract: discovery, a round trip, deduplication, the error for a missing
plugin, and no framework import for unrelated uploads."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from modelstore_core.testing.flavors import FlavorContract

X = np.arange(40, dtype=float).reshape(20, 2)


class TestXgboostFlavor(FlavorContract):
    plugin = "xgboost"
    distribution = "modelstore-xgboost"
    flavor = "xgboost"
    framework_modules = ("xgboost", "sklearn", "numpy", "scipy")
    own_model_code = "import xgboost\nmodel = xgboost.XGBRegressor()"

    @pytest.fixture
    def model(self):
        return xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(X, label=X[:, 0]), num_boost_round=2)

    def predict(self, model):
        return model.predict(xgb.DMatrix(X))

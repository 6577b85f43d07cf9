"""The flavor kit's contract: discovery, a round trip, deduplication, the error for a missing
plugin, and no framework import for unrelated uploads."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from modelstore_core.testing.flavors import FlavorContract

X = np.random.default_rng(0).normal(size=(60, 3))


class TestLightgbmFlavor(FlavorContract):
    plugin = "lightgbm"
    distribution = "modelstore-lightgbm"
    flavor = "lightgbm"
    framework_modules = ("lightgbm", "sklearn", "numpy", "scipy", "pandas")
    own_model_code = "import lightgbm\nmodel = lightgbm.LGBMRegressor()"

    @pytest.fixture
    def model(self):
        return lgb.LGBMRegressor(n_estimators=3, num_leaves=4, min_child_samples=5, n_jobs=1, verbose=-1).fit(X, X[:, 0])

    def predict(self, model):
        return model.predict(X)

"""The flavor kit's contract: discovery, a round trip, deduplication, the error for a missing
plugin, and no framework import for unrelated uploads."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from modelstore_core.testing.flavors import FlavorContract

RNG = np.random.default_rng(0)
X = sm.add_constant(RNG.normal(size=(40, 2)))
Y = X @ [1.0, 2.0, -1.0] + RNG.normal(size=40)


class TestStatsmodelsFlavor(FlavorContract):
    plugin = "statsmodels"
    distribution = "modelstore-statsmodels"
    flavor = "statsmodels"
    framework_modules = ("statsmodels", "pandas", "numpy", "scipy", "patsy")
    own_model_code = "import statsmodels.api as sm\nmodel = sm.OLS([1.0, 2.0, 4.0], [[1.0], [1.0], [1.0]]).fit()"
    load_options = {"trust": True}  # a pickle: see test_statsmodels_trust.py

    @pytest.fixture
    def model(self):
        return sm.OLS(Y, X).fit()

    def predict(self, model):
        return model.predict(X)

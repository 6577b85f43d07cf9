"""The flavor kit's contract: discovery, a round trip, deduplication, the error for a missing
plugin, and no framework import for unrelated uploads."""

from __future__ import annotations

import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from modelstore_core.testing.flavors import FlavorContract

X, Y = make_classification(n_samples=60, n_features=4, random_state=0)


class TestSklearnFlavor(FlavorContract):
    plugin = "sklearn"
    distribution = "modelstore-sklearn"
    flavor = "sklearn"
    framework_modules = ("sklearn", "skops", "scipy", "joblib")
    own_model_code = "from sklearn.linear_model import LogisticRegression\nmodel = LogisticRegression()"

    @pytest.fixture
    def model(self):
        return LogisticRegression().fit(X, Y)

    def predict(self, model):
        return model.predict_proba(X)

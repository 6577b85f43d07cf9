"""The flavor kit's contract: discovery, a round trip, deduplication, the error for a missing
plugin, and no framework import for unrelated uploads."""

from __future__ import annotations

import pytest
from prophet_models import simple, yhat

from modelstore_core.testing.flavors import FlavorContract


class TestProphetFlavor(FlavorContract):
    plugin = "prophet"
    distribution = "modelstore-prophet"
    flavor = "prophet"
    framework_modules = ("prophet", "cmdstanpy", "pandas", "numpy", "holidays")
    own_model_code = "from prophet import Prophet\nmodel = Prophet()"

    @pytest.fixture
    def model(self):
        return simple()

    def predict(self, model):
        return yhat(model)

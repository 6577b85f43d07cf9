"""The flavor kit's contract for a LightningModule: discovery, a round trip through a fresh store
(built from the stored hyperparameters, outputs compared), deduplication, the disabled plugin's
error, and no Lightning (or torch) import for raw files and unrelated objects."""

from __future__ import annotations

import pytest
import torch

from modelstore_core.testing.flavors import FlavorContract

X = torch.linspace(-2, 2, 15).reshape(5, 3)


class TestLightningFlavor(FlavorContract):
    plugin = "lightning"
    distribution = "modelstore-lightning"
    flavor = "lightning"
    framework_modules = ("pytorch_lightning", "lightning", "torch", "safetensors")
    unrelated = ('{"not": "a module"}', "object()")
    # The weights load into the class the caller passes (or as a state dict): the plugin never imports
    # Lightning to load, so there is no missing-framework error to check.
    loads_need_the_framework = False
    own_model_code = (
        "import torch, pytorch_lightning as pl\n"
        "class Tiny(pl.LightningModule):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.lin = torch.nn.Linear(2, 2)\n"
        "model = Tiny()\n"
    )

    @pytest.fixture(autouse=True)
    def _classes(self, regressor_code):
        # load(model=Regressor): a new module built from the stored hyperparameters, then the weights
        self.load_options = {"model": regressor_code["Regressor"]}

    @pytest.fixture
    def model(self, regressor_code):
        return regressor_code["regressor"]

    def predict(self, model):
        with torch.no_grad():
            return model.eval()(X)

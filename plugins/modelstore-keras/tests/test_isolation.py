"""The flavor kit's contract: discovery, a round trip, deduplication, the disabled plugin's error,
and no keras import for other models.

(That modelstore-torch leaves Keras models, which are nn.Modules on the torch backend, to this
plugin is tested in modelstore-torch's suite, which installs keras for it.)"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from modelstore_core.testing.flavors import FlavorContract

X = np.linspace(-1, 1, 12, dtype="float32").reshape(6, 2)


class TestKerasFlavor(FlavorContract):
    plugin = "keras"
    distribution = "modelstore-keras"
    flavor = "keras"
    framework_modules = ("keras", "torch", "tensorflow", "jax", "h5py", "numpy")
    unrelated = ("[1, 2, 3]", "object()")
    own_model_code = "import keras\nmodel = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])"

    @pytest.fixture
    def model(self):
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1)])

    def predict(self, model):
        return model.predict(X, verbose=0)

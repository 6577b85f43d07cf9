import os

# Keras picks its backend once, when first imported: torch here (no TensorFlow in the test venv).
# Subprocesses started by the tests inherit it.
os.environ["KERAS_BACKEND"] = "torch"

# The flavor kit's fixtures: `isolated` (autouse: never the user's own store or cache, plugins
# rediscovered around each test), `store` and `fresh`.
from modelstore_core.testing.flavors import fresh, isolated, store  # noqa: E402, F401

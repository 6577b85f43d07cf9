import os

# Keras picks its backend once, when first imported: torch here (no TensorFlow in the test venv).
# Subprocesses started by the tests inherit it.
os.environ["KERAS_BACKEND"] = "torch"

import os

import pytest
from tiny_transformers import TINY

# No hub access, ever: everything a test loads comes from the store. Subprocesses inherit these.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"


@pytest.fixture(scope="session")
def tiny():
    from modelstore_core.testing.flavors import build

    return build(TINY)

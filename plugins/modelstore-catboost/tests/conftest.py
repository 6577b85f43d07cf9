import pytest

# The flavor kit's fixtures: `isolated` (autouse: never the user's own store or cache, plugins
# rediscovered around each test), `store` and `fresh`.
from modelstore_core.testing.flavors import fresh, isolated, store  # noqa: F401


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """catboost writes catboost_info/ into the working directory unless told not to."""
    monkeypatch.chdir(tmp_path)

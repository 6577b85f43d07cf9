from __future__ import annotations

import pytest

from modelstore_core import ModelStore
from modelstore_core.testing.flavors import isolated  # noqa: F401 - autouse: per-user dirs under tmp_path


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")

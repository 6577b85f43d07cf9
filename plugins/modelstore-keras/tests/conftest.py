from __future__ import annotations

import os

# Keras picks its backend once, when first imported: torch here (no TensorFlow in the test venv).
# Subprocesses started by the tests inherit it.
os.environ["KERAS_BACKEND"] = "torch"

import pytest  # noqa: E402

from modelstore_core import ModelStore  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path, monkeypatch):
    """Never touch the real per-user store or cache."""
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.setenv("MODELSTORE_URL", str(tmp_path / "user-store"))


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")


@pytest.fixture
def fresh(tmp_path):
    """A new ModelStore object on the same store with a new cache: what another process would see."""
    count = 0

    def make() -> ModelStore:
        nonlocal count
        count += 1
        return ModelStore(tmp_path / "store", cache_dir=tmp_path / f"cache-{count}")

    return make

"""The storage conformance kit, run against the builtin local-directory backend."""

from __future__ import annotations

import pytest

from modelstore_core.default_plugins.local_storage import LocalStorage
from modelstore_core.testing import FeedContract, LivenessContract, StorageContract, StoreContract, TamperContract


class TestLocalStorage(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path):
        return LocalStorage(tmp_path / "root")


class TestLocalStore(StoreContract):
    @pytest.fixture
    def store_url(self, tmp_path):
        return str(tmp_path / "store")


class TestFileUrlStore(StoreContract):
    @pytest.fixture
    def store_url(self, tmp_path):
        return (tmp_path / "store with space").as_uri()


class TestLocalTamper(TamperContract):
    @pytest.fixture
    def store_url(self, tmp_path):
        return str(tmp_path / "store")


class TestLocalLiveness(LivenessContract):
    @pytest.fixture
    def store_url(self, tmp_path):
        return str(tmp_path / "store")


class TestLocalFeed(FeedContract):
    @pytest.fixture
    def store_url(self, tmp_path):
        return str(tmp_path / "store")

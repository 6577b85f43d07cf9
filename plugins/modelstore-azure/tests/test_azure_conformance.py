"""The storage, store, tamper, liveness and feed kits against Azurite."""

from __future__ import annotations

import pytest
from modelstore_azure.storage import AzureStorage

from modelstore_core.testing import FeedContract, LivenessContract, StorageContract, StoreContract, TamperContract

MB = 1 << 20


class TestAzureStorage(StorageContract):
    @pytest.fixture
    def storage(self, az_url):
        # Small blocks: the kit's 3 MiB objects go through staged blocks too.
        storage = AzureStorage.from_url(az_url, page_size=7, single_put_size=MB, block_size=MB)
        yield storage
        storage.close()


class TestAzureStore(StoreContract):
    writers = 8

    @pytest.fixture
    def store_url(self, az_url):
        return az_url

    @pytest.fixture
    def store_options(self):
        return {"page_size": 5, "single_put_size": MB, "block_size": MB}

    @pytest.fixture
    def store_env(self, azurite):
        return dict(azurite.env)


class TestAzureTamper(TamperContract):
    ranged_download_options = {"single_get_size": 256 << 10, "block_size": 256 << 10}  # 1.5 MB: six parallel ranges

    @pytest.fixture
    def store_url(self, az_url):
        return az_url

    @pytest.fixture
    def store_env(self, azurite):
        return dict(azurite.env)


class TestAzureLiveness(LivenessContract):
    @pytest.fixture
    def store_url(self, az_url):
        return az_url

    @pytest.fixture
    def store_env(self, azurite):
        return dict(azurite.env)


class TestAzureFeed(FeedContract):
    @pytest.fixture
    def store_url(self, az_url):
        return az_url

    @pytest.fixture
    def store_options(self):
        return {"page_size": 5}  # listings of the feed and of claims go through pages

    @pytest.fixture
    def store_env(self, azurite):
        return dict(azurite.env)

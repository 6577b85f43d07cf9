"""The storage, store, tamper, liveness and feed kits against Azurite."""

from __future__ import annotations

import pytest
from modelstore_azure.storage import AzureStorage

from modelstore_core.testing import FeedContract, LivenessContract, StorageContract, StoreContract, TamperContract
from modelstore_core.testing.store_contract import SecondaryBackend

MB = 1 << 20


class OnAzurite(SecondaryBackend):
    """The store every kit below runs against: a bucket of the session's Azurite, its
    credentials in the environment of the child processes the kits start."""

    @pytest.fixture
    def store_url(self, az_url):
        return az_url

    @pytest.fixture
    def store_env(self, azurite):
        return dict(azurite.env)


class TestAzureStorage(StorageContract):
    @pytest.fixture
    def storage(self, az_url):
        # Small blocks: the kit's 3 MiB objects go through staged blocks too.
        storage = AzureStorage.from_url(az_url, page_size=7, single_put_size=MB, block_size=MB)
        yield storage
        storage.close()


class TestAzureStore(OnAzurite, StoreContract):
    @pytest.fixture
    def store_options(self):
        return {"page_size": 5, "single_put_size": MB, "block_size": MB}


class TestAzureTamper(OnAzurite, TamperContract):
    ranged_download_options = {"single_get_size": 256 << 10, "block_size": 256 << 10}  # 1.5 MB: six parallel ranges


class TestAzureLiveness(OnAzurite, LivenessContract):
    pass


class TestAzureFeed(OnAzurite, FeedContract):
    @pytest.fixture
    def store_options(self):
        return {"page_size": 5}  # listings of the feed and of claims go through pages

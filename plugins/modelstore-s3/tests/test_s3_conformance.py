"""The storage conformance, tamper and liveness and feed kits against moto's S3 server."""

from __future__ import annotations

import pytest
from modelstore_s3.storage import S3Storage

from modelstore_core.testing import FeedContract, LivenessContract, StorageContract, StoreContract, TamperContract
from modelstore_core.testing.store_contract import SecondaryBackend


class OnMoto(SecondaryBackend):
    """The store every kit below runs against: a bucket of the session's moto's S3 server, its
    credentials in the environment of the child processes the kits start."""

    @pytest.fixture
    def store_url(self, s3_url):
        return s3_url

    @pytest.fixture
    def store_env(self, moto_server):
        return dict(moto_server.env)


class TestS3Storage(StorageContract):
    @pytest.fixture
    def storage(self, s3_url):
        storage = S3Storage.from_url(s3_url, page_size=7)
        yield storage
        storage.close()


class TestS3Store(OnMoto, StoreContract):
    @pytest.fixture
    def store_options(self):
        return {"page_size": 5}


class TestS3Tamper(OnMoto, TamperContract):
    ranged_download_options = {"multipart_threshold": 256 << 10, "multipart_chunksize": 256 << 10}  # 1.5 MB: six parallel ranges


class TestS3Liveness(OnMoto, LivenessContract):
    pass


class TestS3Feed(OnMoto, FeedContract):
    @pytest.fixture
    def store_options(self):
        return {"page_size": 5}  # listings of the feed and of claims go through pages

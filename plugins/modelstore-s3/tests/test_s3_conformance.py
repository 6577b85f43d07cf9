"""The storage conformance, tamper and liveness and feed kits against moto's S3 server."""

from __future__ import annotations

import pytest
from modelstore_s3.storage import S3Storage

from modelstore_core.testing import FeedContract, LivenessContract, StorageContract, StoreContract, TamperContract


class TestS3Storage(StorageContract):
    @pytest.fixture
    def storage(self, s3_url):
        storage = S3Storage.from_url(s3_url, page_size=7)
        yield storage
        storage.close()


class TestS3Store(StoreContract):
    writers = 8

    @pytest.fixture
    def store_url(self, s3_url):
        return s3_url

    @pytest.fixture
    def store_options(self):
        return {"page_size": 5}

    @pytest.fixture
    def store_env(self, moto_server):
        return dict(moto_server.env)


class TestS3Tamper(TamperContract):
    ranged_download_options = {"multipart_threshold": 256 << 10, "multipart_chunksize": 256 << 10}  # 1.5 MB: six parallel ranges

    @pytest.fixture
    def store_url(self, s3_url):
        return s3_url

    @pytest.fixture
    def store_env(self, moto_server):
        return dict(moto_server.env)


class TestS3Liveness(LivenessContract):
    @pytest.fixture
    def store_url(self, s3_url):
        return s3_url

    @pytest.fixture
    def store_env(self, moto_server):
        return dict(moto_server.env)


class TestS3Feed(FeedContract):
    @pytest.fixture
    def store_url(self, s3_url):
        return s3_url

    @pytest.fixture
    def store_options(self):
        return {"page_size": 5}  # listings of the feed and of claims go through pages

    @pytest.fixture
    def store_env(self, moto_server):
        return dict(moto_server.env)

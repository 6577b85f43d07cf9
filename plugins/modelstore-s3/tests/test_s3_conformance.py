"""The storage conformance, tamper and liveness and feed kits against moto's S3 server."""

from __future__ import annotations

import pytest
from modelstore_s3.storage import S3Storage

from modelstore_core.testing import FeedContract, LivenessContract, StorageContract, StoreContract, TamperContract


class OnMoto:
    """The store every kit below runs against: a bucket of the session's moto's S3 server, its
    credentials in the environment of the child processes the kits start."""

    # Each matrix of the kits (kill points, writer poses, hostile variants of a document) at its first
    # and last case: all of them run against the local store and GCS (fake-gcs-server), and this
    # backend's StorageContract checks the primitives they share; the same for the writers racing
    # each other, at half the reference's numbers.
    full_matrices = False
    writers = 4  # StoreContract's and FeedContract's concurrent writer processes
    stress_uploads = 6  # LivenessContract's uploads per writer under deletes and gc

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

"""The storage conformance, tamper and liveness and feed kits against fake-gcs-server."""

from __future__ import annotations

import pytest
from modelstore_gcs.storage import GCSStorage

from modelstore_core.testing import FeedContract, LivenessContract, StorageContract, StoreContract, TamperContract


class OnFakeGCS:
    """The store every kit below runs against: a bucket of the session's fake-gcs-server, its
    credentials in the environment of the child processes the kits start."""

    # The reference remote backend: each matrix of the kits in full (the S3 and Azure suites run
    # each at its first and last case). fake-gcs-server is the cheapest of the three test servers
    # in CPU per request.
    full_matrices = True

    @pytest.fixture
    def store_url(self, gs_url):
        return gs_url

    @pytest.fixture
    def store_env(self, gcs_server):
        return dict(gcs_server.env)


class TestGCSStorage(StorageContract):
    @pytest.fixture
    def storage(self, gs_url):
        storage = GCSStorage.from_url(gs_url, page_size=7)
        yield storage
        storage.close()


class TestGCSStore(OnFakeGCS, StoreContract):
    writers = 8

    @pytest.fixture
    def store_options(self):
        return {"page_size": 5}


class TestGCSTamper(OnFakeGCS, TamperContract):
    ranged_download_options = {"download_part_size": 256 << 10}  # 1.5 MB: six parallel ranges


class TestGCSLiveness(OnFakeGCS, LivenessContract):
    pass


class TestGCSFeed(OnFakeGCS, FeedContract):
    @pytest.fixture
    def store_options(self):
        return {"page_size": 5}  # listings of the feed and of claims go through pages

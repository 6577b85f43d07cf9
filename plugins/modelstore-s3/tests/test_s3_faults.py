"""Faults between the client and S3: 5xx answers, dropped connections, lost answers, cut bodies, killed writers.

Requests go through :class:`modelstore_core.testing.faults.FaultProxy`, a real HTTP forwarder in front
of moto's server; the tests shared with every backend are the core's ``FaultContract``.
"""

from __future__ import annotations

import os
import signal

import boto3
import pytest
from s3_servers import S3_ERRORS

from modelstore_core.protocol import keys
from modelstore_core.testing import FaultContract
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.store_contract import collect_now

MB = 1 << 20
SMALL_PARTS = {"multipart_threshold": 5 * MB, "multipart_chunksize": 5 * MB}  # S3's smallest part


class TestS3Faults(FaultContract):
    endpoint_option = "endpoint_url"
    retry_options = {
        "many": {"max_attempts": 8, **SMALL_PARTS},  # small parts: the multipart upload meets faults too
        "default": {},
        "few": {"max_attempts": 3},
        "none": {"max_attempts": 1},
    }
    few_attempts = 3
    upload_sizes = (150_000, 11 * MB + 123, 10)  # 3 parts
    min_faults = 14
    error_match = "InternalError"
    error_bodies = S3_ERRORS
    error_content_type = "application/xml"

    @pytest.fixture
    def store_url(self, s3_url):
        return s3_url

    @pytest.fixture
    def upstream_port(self, moto_server):
        return moto_server.port

    @pytest.fixture
    def store_env(self, moto_server):
        return dict(moto_server.env)

    def is_version_write(self, method, target, body):
        return method == "PUT" and "/versions/" in target

    def is_states_write(self, method, target, body):
        return method == "PUT" and target.split("?")[0].endswith("/states.json")

    def test_writer_killed_mid_multipart_upload_is_cleaned_by_gc(
        self, store_url, upstream_port, store_env, direct, tmp_path, fast_heartbeat
    ):
        """A writer dies while its multipart upload is half sent: nothing is listed, and gc aborts the
        unfinished multipart upload (S3 would otherwise bill its parts forever)."""
        model = tmp_path / "big.bin"
        model.write_bytes(os.urandom(12 * MB))
        decide = lambda method, target, headers, body: "hold" if method == "PUT" and "partNumber=2" in target else None  # noqa: E731
        with self.proxy(upstream_port, decide) as proxy:
            options = self.options(proxy, max_concurrency=1, **SMALL_PARTS)
            worker = self.start_worker(store_url, store_env, options, tmp_path, "d", str(model))
            assert proxy.held.wait(HANG_TIMEOUT), worker.communicate(timeout=5)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        client = boto3.client("s3")
        bucket, prefix = store_url[len("s3://") :].split("/", 1)
        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix + "/").get("Uploads", [])
        assert [u["Key"].split("/")[1] for u in uploads] == ["objects"]
        assert list(direct.storage.list(keys.OBJECTS)) == []
        assert direct.list_domains() == []
        # A young unfinished upload (from a live writer) is spared; then gc aborts it.
        initiated = uploads[0]["Initiated"].timestamp()
        assert direct.storage.cleanup(older_than=initiated) == []
        report = collect_now(direct)  # once a grace passed since the dead writer's last heartbeat
        assert len(report.temporary) == 1 and "unfinished multipart upload" in report.temporary[0]
        assert client.list_multipart_uploads(Bucket=bucket, Prefix=prefix + "/").get("Uploads", []) == []
        assert list(direct.storage.list(keys.UPLOADS)) == []  # the dead writer's marker went too

"""Faults between the client and Azure: 5xx answers, dropped connections, lost answers, cut bodies, killed writers.

Requests go through :class:`modelstore_core.testing.faults.FaultProxy`, a real HTTP forwarder in front
of Azurite; the tests shared with every backend are the core's ``FaultContract``.
"""

from __future__ import annotations

import os
import signal

import pytest
from azure.storage.blob import BlobServiceClient
from azure_servers import AZURE_ERRORS
from conftest import CONTAINER

from modelstore_core import ModelStore
from modelstore_core.protocol import keys
from modelstore_core.testing import FaultContract
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.store_contract import collect_now

MB = 1 << 20
SMALL_BLOCKS = {"single_put_size": MB, "block_size": MB}


class TestAzureFaults(FaultContract):
    endpoint_option = "endpoint"
    retry_options = {
        "many": {"max_attempts": 8, **SMALL_BLOCKS},  # small blocks: the staged upload meets faults too
        "default": {},
        "few": {"max_attempts": 3},
        "none": {"max_attempts": 1},
    }
    few_attempts = 3
    upload_sizes = (150_000, 3 * MB + 123, 10)  # 4 blocks
    error_match = "InternalError"
    error_bodies = AZURE_ERRORS
    error_content_type = "application/xml"

    @pytest.fixture
    def store_url(self, az_url):
        return az_url

    @pytest.fixture
    def upstream_port(self, azurite):
        return azurite.port

    @pytest.fixture
    def store_env(self, azurite):
        return dict(azurite.env)

    def is_version_write(self, method, target, body):
        return method == "PUT" and "/versions/" in target

    def is_states_write(self, method, target, body):
        return method == "PUT" and target.split("?")[0].endswith("/states.json")

    def test_writer_killed_mid_staged_upload_leaves_nothing_visible(
        self, store_url, upstream_port, store_env, direct, tmp_path, azurite, fast_heartbeat
    ):
        """A writer dies while its staged upload is half sent: its uncommitted blocks are invisible (no
        listing or stat shows the object), gc removes its marker, and the next upload of the same
        file commits its own blocks and loads."""
        model = tmp_path / "big.bin"
        model.write_bytes(os.urandom(3 * MB))
        puts = []

        def decide(method, target, headers, body):
            if method == "PUT" and "comp=block" in target and "comp=blocklist" not in target:
                puts.append(target)
                return "hold" if len(puts) == 2 else None
            return None

        with self.proxy(upstream_port, decide) as proxy:
            options = self.options(proxy, max_concurrency=1, **SMALL_BLOCKS)
            worker = self.start_worker(store_url, store_env, options, tmp_path, "d", str(model))
            assert proxy.held.wait(HANG_TIMEOUT), worker.communicate(timeout=5)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        prefix = store_url.split("/", 3)[3] + "/"
        with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
            container = client.get_container_client(CONTAINER)
            uncommitted = [b.name for b in container.list_blobs(name_starts_with=prefix + keys.OBJECTS, include=["uncommittedblobs"])]
        assert len(uncommitted) == 1, uncommitted  # the killed upload's first block is there, uncommitted
        object_key = uncommitted[0][len(prefix) :]
        assert list(direct.storage.list(keys.OBJECTS)) == [] and direct.storage.stat(object_key) is None
        assert direct.list_domains() == []
        report = collect_now(direct)  # once a grace passed since the dead writer's last heartbeat
        assert report.objects == [] and list(direct.storage.list(keys.UPLOADS)) == []  # the dead writer's marker went

        with ModelStore(store_url, cache_dir=tmp_path / "again", **SMALL_BLOCKS) as store:
            assert store.upload("d", files=[model]).version == 1
            assert store.load("d")[0].read_bytes() == model.read_bytes()

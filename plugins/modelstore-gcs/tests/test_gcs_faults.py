"""Faults between the client and GCS: 5xx answers, dropped connections, lost answers, cut bodies.

Requests go through :class:`gcs_servers.FaultProxy`, a real HTTP forwarder in front of fake-gcs-server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from gcs_servers import ACTIONS, FaultProxy, every_nth

from modelstore_core import ModelStore, StorageError, VersionNotFoundError, layout

FAST = {"retry_deadline": 30.0}


@pytest.fixture
def direct(gs_url, tmp_path):
    """The store opened straight on the server, to check what the faulty runs left."""
    with ModelStore(gs_url, cache_dir=tmp_path / "direct-cache") as store:
        yield store


def test_uploads_and_loads_complete_through_faults(gcs_server, gs_url, direct, tmp_path):
    """Every 4th request fails (500, 503, dropped, answered-then-dropped, cut): the SDK's retries,
    conditional writes included, carry every upload, state change and load through."""
    files = {name: os.urandom(size) for name, size in [("small.bin", 150_000), ("mid.bin", 3 << 20), ("tiny.txt", 10)]}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with FaultProxy(gcs_server.port, every_nth(4)) as proxy:
        store = ModelStore(gs_url, cache_dir=tmp_path / "cache", endpoint=proxy.endpoint, **FAST)
        v1 = store.upload("d", files=[tmp_path / "small.bin", tmp_path / "mid.bin"])
        v2 = store.upload("d", files=[tmp_path / "tiny.txt"], extras=[tmp_path / "small.bin"])
        v3 = store.upload("d", files=[tmp_path / "mid.bin"])
        store.set_state("d", v2.version, "production")
        assert [v.version for v in store.list_versions("d")] == [3, 2, 1]
        loaded = {p.name: p.read_bytes() for v in (v1, v2, v3) for p in store.load("d", version=v.version)}
        assert loaded == files
        assert store.states("d") == {"production": 2}
        store.close()
    assert set(proxy.faults()) == set(ACTIONS), proxy.faults()
    assert sum(proxy.faults().values()) >= 10
    assert direct.verify().ok
    assert direct.gc(grace=0).empty


def test_lost_answer_to_the_commit_is_recognised(gcs_server, gs_url, direct, tmp_path):
    """The version record's upload takes effect but its answer is lost: the retry meets its own
    ifGenerationMatch=0, and the backend recognises the record as its own."""
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(1000))
    seen = []

    def decide(method, target, headers, body):
        if method == "POST" and b'/versions/' in body:  # a multipart upload names its object in the body
            seen.append(target)
            return "drop-after" if len(seen) == 1 else None
        return None

    with FaultProxy(gcs_server.port, decide) as proxy:
        with ModelStore(gs_url, cache_dir=tmp_path / "c", endpoint=proxy.endpoint, **FAST) as store:
            assert store.upload("d", files=[model]).version == 1
    assert len(seen) == 2 and proxy.faults() == {"drop-after": 1}
    assert [v.version for v in direct.list_versions("d")] == [1]
    assert direct.load("d")[0].read_bytes() == model.read_bytes()


def test_upload_failing_at_the_commit_leaves_nothing_visible(gcs_server, gs_url, direct, tmp_path):
    """Every write of a version record fails (503 until the retry deadline): the upload raises a
    StorageError, no version is listed, and gc reclaims the objects it stored."""
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(300_000))
    decide = every_nth(1, actions=("503",), only=lambda method, target, body: method == "POST" and b"/versions/" in body)
    with FaultProxy(gcs_server.port, decide) as proxy:
        env = {**os.environ, **gcs_server.env, "MODELSTORE_CACHE_DIR": str(tmp_path / "wc")}
        options = {"endpoint": proxy.endpoint, "retry_deadline": 2.0}
        cmd = [sys.executable, "-m", "modelstore_core.testing.worker", gs_url, "d", str(model), "--options", json.dumps(options)]
        worker = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert worker.returncode != 0 and "StorageError" in worker.stderr, worker.stderr
    assert proxy.faults().get("503", 0) >= 2  # retried, then gave up
    assert direct.list_versions("d") == []
    with pytest.raises(VersionNotFoundError):
        direct.latest("d")
    assert len(list(direct.storage.list(layout.OBJECTS))) == 1
    report = direct.gc(grace=0)
    assert len(report.objects) == 1
    assert list(direct.storage.list(layout.OBJECTS)) == [] and list(direct.storage.list(layout.UPLOADS)) == []


def test_errors_are_storage_errors(gcs_server, gs_url, tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"x" * 1000)
    with FaultProxy(gcs_server.port, every_nth(1, actions=("500",))) as proxy:
        store = ModelStore(gs_url, cache_dir=tmp_path / "c", endpoint=proxy.endpoint, retry_deadline=1.0)
        with pytest.raises(StorageError, match="GCS could not"):
            store.upload("d", files=[model])
        store.close()

"""Faults between the client and S3: 5xx answers, dropped connections, lost answers, cut bodies, killed writers.

Requests go through :class:`s3_servers.FaultProxy`, a real HTTP forwarder in front of moto's server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import boto3
import pytest
from s3_servers import ACTIONS, FaultProxy, every_nth

from modelstore_core import ModelStore, StorageError, VersionNotFoundError, layout

MB = 1 << 20
SMALL_PARTS = {"multipart_threshold": 5 * MB, "multipart_chunksize": 5 * MB}  # S3's smallest part


@pytest.fixture
def direct(s3_url, tmp_path):
    """The store opened straight on moto, to check what the faulty runs left."""
    with ModelStore(s3_url, cache_dir=tmp_path / "direct-cache") as store:
        yield store


def _proxy(moto_server, decide) -> FaultProxy:
    return FaultProxy(moto_server.port, decide).start()


def _worker(moto_server, url, options, tmp_path, *args):
    env = {**os.environ, **moto_server.env, "MODELSTORE_CACHE_DIR": str(tmp_path / "wc")}
    cmd = [sys.executable, "-m", "modelstore_core.testing.worker", url, *args, "--options", json.dumps(options)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_uploads_and_loads_complete_through_faults(moto_server, s3_url, direct, tmp_path):
    """Every 4th request fails (500, 503, dropped, answered-then-dropped, cut): retries carry every
    upload (single and multipart), state change and load through."""
    files = {name: os.urandom(size) for name, size in [("small.bin", 150_000), ("big.bin", 11 * MB + 123), ("tiny.txt", 10)]}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with _proxy(moto_server, every_nth(4)) as proxy:
        store = ModelStore(s3_url, cache_dir=tmp_path / "cache", endpoint_url=proxy.endpoint, max_attempts=8, **SMALL_PARTS)
        v1 = store.upload("d", files=[tmp_path / "small.bin", tmp_path / "big.bin"])
        v2 = store.upload("d", files=[tmp_path / "tiny.txt"], extras=[tmp_path / "small.bin"])
        v3 = store.upload("d", files=[tmp_path / "big.bin"])
        store.set_state("d", v2.version, "production")
        assert [v.version for v in store.list_versions("d")] == [3, 2, 1]
        loaded = {p.name: p.read_bytes() for v in (v1, v2, v3) for p in store.load("d", version=v.version)}
        assert loaded == {"small.bin": files["small.bin"], "big.bin": files["big.bin"], "tiny.txt": files["tiny.txt"]}
        assert store.states("d") == {"production": 2}
        store.close()
    assert set(proxy.faults()) == set(ACTIONS), proxy.faults()  # every kind of fault happened
    assert sum(proxy.faults().values()) >= 15
    assert direct.verify().ok
    assert direct.gc(grace=0).empty  # nothing half-written was left behind


def test_lost_answer_to_the_commit_is_recognised(moto_server, s3_url, direct, tmp_path):
    """The version record's PUT takes effect but its answer is lost: botocore retries, meets its own
    If-None-Match, and the backend recognises the record as its own instead of failing the upload."""
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(1000))
    seen = []

    def decide(method, target, headers, body):
        if method == "PUT" and "/versions/" in target:
            seen.append(target)
            return "drop-after" if len(seen) == 1 else None
        return None

    with _proxy(moto_server, decide) as proxy:
        with ModelStore(s3_url, cache_dir=tmp_path / "c", endpoint_url=proxy.endpoint) as store:
            assert store.upload("d", files=[model]).version == 1
    assert len(seen) == 2 and proxy.faults() == {"drop-after": 1}
    assert [v.version for v in direct.list_versions("d")] == [1]
    assert direct.load("d")[0].read_bytes() == model.read_bytes()


def test_upload_failing_at_the_commit_leaves_nothing_visible(moto_server, s3_url, direct, tmp_path):
    """Every write of a version record fails (503 until retries run out): the upload raises a
    StorageError, no version is listed, and gc reclaims the objects it stored."""
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(300_000))
    decide = every_nth(1, actions=("503",), only=lambda method, target, body: method == "PUT" and "/versions/" in target)
    with _proxy(moto_server, decide) as proxy:
        worker = _worker(moto_server, s3_url, {"endpoint_url": proxy.endpoint, "max_attempts": 3}, tmp_path, "d", str(model))
        out, err = worker.communicate(timeout=120)
    assert worker.returncode != 0 and "StorageError" in err, err
    assert proxy.faults() == {"503": 3}, "\n".join(map(str, proxy.log))
    assert direct.list_versions("d") == []
    with pytest.raises(VersionNotFoundError):
        direct.latest("d")
    assert len(list(direct.storage.list(layout.OBJECTS))) == 1  # stored, never committed
    report = direct.gc(grace=0)
    assert len(report.objects) == 1
    assert list(direct.storage.list(layout.OBJECTS)) == [] and list(direct.storage.list(layout.UPLOADS)) == []


def test_upload_error_is_a_storage_error_without_retries(moto_server, s3_url, tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"x" * 1000)
    with _proxy(moto_server, every_nth(1, actions=("500",))) as proxy:
        store = ModelStore(s3_url, cache_dir=tmp_path / "c", endpoint_url=proxy.endpoint, max_attempts=1)
        with pytest.raises(StorageError, match="InternalError"):
            store.upload("d", files=[model])
        store.close()


def test_writer_killed_mid_multipart_upload_is_cleaned_by_gc(moto_server, s3_url, direct, tmp_path):
    """A writer dies while its multipart upload is half sent: nothing is listed, and gc aborts the
    unfinished multipart upload (S3 would otherwise bill its parts forever)."""
    model = tmp_path / "big.bin"
    model.write_bytes(os.urandom(12 * MB))
    decide = lambda method, target, headers, body: "hold" if method == "PUT" and "partNumber=2" in target else None  # noqa: E731
    with _proxy(moto_server, decide) as proxy:
        options = {"endpoint_url": proxy.endpoint, "max_concurrency": 1, **SMALL_PARTS}
        worker = _worker(moto_server, s3_url, options, tmp_path, "d", str(model))
        assert proxy.held.wait(60), worker.communicate(timeout=5)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    client = boto3.client("s3")
    bucket, prefix = s3_url[len("s3://"):].split("/", 1)
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix + "/").get("Uploads", [])
    assert [u["Key"].split("/")[1] for u in uploads] == ["objects"]
    assert list(direct.storage.list(layout.OBJECTS)) == []
    assert direct.list_domains() == []
    # A young unfinished upload (from a live writer) is spared; then gc aborts it.
    initiated = uploads[0]["Initiated"].timestamp()
    assert direct.storage.cleanup(older_than=initiated) == []
    report = direct.gc(grace=0)
    assert len(report.temporary) == 1 and "unfinished multipart upload" in report.temporary[0]
    assert client.list_multipart_uploads(Bucket=bucket, Prefix=prefix + "/").get("Uploads", []) == []
    assert list(direct.storage.list(layout.UPLOADS)) == []  # the dead writer's marker went too

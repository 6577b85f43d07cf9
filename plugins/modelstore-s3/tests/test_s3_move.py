"""Mirror, copy and offline loads on moto's S3 server: what a mirror run with nothing new costs in
requests, and loads with the server stopped."""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter

import pytest
from conftest import BUCKET
from s3_requests import RequestLog

from modelstore_core import ModelStore, StorageError, UsageError
from modelstore_core.offline import StaleWarning
from modelstore_core.testing.faults import FaultProxy, FrozenServer

DOMAINS = 3


@pytest.fixture
def two_stores(moto_server, tmp_path):
    cache = tmp_path / "cache"
    source = ModelStore(f"s3://{BUCKET}/{uuid.uuid4().hex}", cache_dir=cache)
    target = ModelStore(f"s3://{BUCKET}/{uuid.uuid4().hex}", cache_dir=cache)
    yield source, target
    source.close()
    target.close()


def test_a_mirror_run_with_nothing_new_only_lists(two_stores, tmp_path):
    source, target = two_stores
    model = tmp_path / "model.bin"
    for d in range(DOMAINS):
        for v in range(2):
            model.write_bytes(f"domain {d} version {v}".encode() * 100)
            source.upload(f"d{d}", files=[model])
        if d:
            source.set_state(f"d{d}", 1, "production")
    first = source.mirror_to(target)
    assert len(first.copied) == 2 * DOMAINS and first.objects == 2 * DOMAINS

    logs = {"source": RequestLog(source.storage), "target": RequestLog(target.storage)}
    with logs["source"].measure() as src_calls, logs["target"].measure() as dst_calls:
        again = source.mirror_to(target)
    assert again.copied == [] and again.objects == 0 and len(again.skipped) == 2 * DOMAINS
    counts = {side: Counter(op for op, _, _ in calls) for side, calls in (("source", src_calls), ("target", dst_calls))}
    print(f"\nmirror with nothing new ({DOMAINS} domains, {2 * DOMAINS} versions, states in {DOMAINS - 1}): {counts}", file=sys.stderr)
    for side, calls in (("source", src_calls), ("target", dst_calls)):
        # One listing of each domain (and of the source's domains), and a read of each states.json:
        # no record, object or write request.
        assert counts[side]["ListObjectsV2"] == DOMAINS + (side == "source"), calls
        gets = [path for op, _, path in calls if op == "GetObject"]
        assert len(gets) == DOMAINS - 1 and all(path.endswith("/states.json") for path in gets), calls
        assert set(counts[side]) == {"ListObjectsV2", "GetObject"}, calls

    source.set_state("d0", 2, "production")  # a state moved: one more write, still no transfer
    with logs["target"].measure() as dst_calls:
        moved = source.mirror_to(target)
    assert moved.states == ["d0@production=2"] and moved.objects == 0
    assert not [path for op, _, path in dst_calls if op == "PutObject" and "/objects/" in path]


@pytest.fixture
def own_server(moto_server):
    """The session's moto server behind an endpoint of this test alone, so that it can be stopped
    (a proxy that forwards every request; once stopped, connections to it are refused)."""
    with FaultProxy(moto_server.port) as proxy:
        yield proxy


def test_offline_load_with_the_server_stopped(own_server, s3_url, tmp_path):
    url = s3_url  # a fresh store on the session's server, reached through own_server
    store = ModelStore(url, cache_dir=tmp_path / "cache", endpoint_url=own_server.endpoint, timeout=3)
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 1000)
    store.upload("churn", files=[model])
    store.set_state("churn", 1, "production")
    assert store.load("churn", state="production")[0].read_bytes() == model.read_bytes()
    own_server.stop()

    start = time.monotonic()
    with pytest.raises(StorageError) as error:
        store.load("churn", state="production")
    assert time.monotonic() - start < 30
    assert "this machine has version 1 of 'churn' cached" in str(error.value) and "MODELSTORE_OFFLINE=1" in str(error.value)
    with pytest.raises(StorageError) as error:
        store.load("churn", state="staging")  # never resolved here: no offline answer to offer
    assert "did not answer in time" in str(error.value) or "could not reach" in str(error.value)
    assert "MODELSTORE_OFFLINE" not in str(error.value)

    # Offline, pointed at an endpoint that would hold any request: not one connection is made.
    with FrozenServer() as frozen:
        offline = ModelStore(url, cache_dir=tmp_path / "cache", endpoint_url=frozen.endpoint, offline=True, timeout=3)
        with pytest.warns(StaleWarning, match="state 'production' of 'churn' is version 1"):
            [path] = offline.load("churn", state="production")
        assert path.read_bytes() == model.read_bytes()
        target = offline.download("churn", 1, to=tmp_path / "out")
        assert (target / "model.bin").read_bytes() == model.read_bytes()
    assert frozen.connections == 0


def test_a_mirror_with_delete_from_an_empty_prefix_is_refused(two_stores, tmp_path):
    """A typo in the source's prefix lists nothing, like an empty store: the target keeps its domains."""
    empty, target = two_stores
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    target.upload("churn", files=[model])
    with pytest.raises(UsageError, match="holds no domains.*allow_empty_source=True"):
        empty.mirror_to(target, delete=True)
    assert target.list_domains() == ["churn"]
    assert empty.mirror_to(target, delete=True, allow_empty_source=True).deleted == ["churn"]

"""What each operation costs in Blob service requests, at 201 versions, and the download cache."""

from __future__ import annotations

import math
import os
import uuid

import pytest
from azure_requests import RequestLog, kind, object_gets
from conftest import CONTAINER

from modelstore_core import ModelStore
from modelstore_core.protocol.probe import forget_verdicts
from modelstore_core.testing.history import build_history

#: Versions; ``list_versions`` is counted with listing pages of PAGE keys, so that the domain spans
#: pages as 1,001 versions span S3's and GCS's largest (a thousand commits to Azurite cost a minute
#: of the suite). The other operations use the default pages of 5,000: ``latest`` lists the domain's
#: versions from their start (List Blobs has no StartAfter: see the backend's ``_list``).
N = 201
PAGE = 50


@pytest.fixture(scope="module")
def long_domain(azurite, tmp_path_factory):
    """A domain of N versions. Versions 1 and N are real uploads (2 and 3 files); those
    between are copies of version 1's record, committed the way the core commits a version
    (create-if-absent of the claim, then of the record), concurrently, to keep the test quick."""
    tmp = tmp_path_factory.mktemp("long-domain")
    url = f"azure://{CONTAINER}/{uuid.uuid4().hex}"
    store = ModelStore(url, cache_dir=tmp / "seed-cache")
    last, files = build_history(store, "d", N, tmp)
    store.close()
    return url, last, files


@pytest.fixture
def counted(long_domain, tmp_path):
    url, _, _ = long_domain
    store = ModelStore(url, cache_dir=tmp_path / "cache")
    yield store, RequestLog(store.storage)
    store.close()


def test_list_versions_is_one_listing(long_domain, tmp_path):
    store = ModelStore(long_domain[0], cache_dir=tmp_path / "cache", page_size=PAGE)
    log = RequestLog(store.storage)
    with log.measure() as calls:
        listed = store.list_versions("d")
    assert [v.version for v in listed] == list(range(N, 0, -1))
    assert len(calls) <= math.ceil(N / PAGE) + 2, calls
    assert {kind(*c) for c in calls} == {"List Blobs"}
    store.close()


def test_latest_is_two_requests(counted):
    store, log = counted
    with log.measure() as calls:
        assert store.latest("d").version == N
    assert len(calls) <= 2, calls


def test_load_and_cached_reload(counted, long_domain, tmp_path):
    store, log = counted
    url, last, files = long_domain
    with log.measure() as calls:
        paths = store.load("d")
    assert [p.read_bytes() for p in paths] == [f.read_bytes() for f in files[2:]]
    assert len(calls) <= 3 + len(last.files), calls
    assert len(object_gets(calls)) == len(last.files)

    # The same cache from a new store object (a new process, say): no artifact is downloaded.
    again = ModelStore(url, cache_dir=tmp_path / "cache")
    again_log = RequestLog(again.storage)
    with again_log.measure() as calls:
        assert [p.read_bytes() for p in again.load("d")] == [f.read_bytes() for f in files[2:]]
    assert object_gets(calls) == [] and len(calls) <= 3, calls
    again.close()


def test_cache_is_shared_by_content_across_versions(counted, long_domain):
    """Version N - 1's files are version 1's: once one is loaded, the other downloads nothing."""
    store, log = counted
    _, _, files = long_domain
    with log.measure() as first:
        store.load("d", version=1)
    with log.measure() as second:
        paths = store.load("d", version=N - 1)
    assert len(object_gets(first)) == 2 and object_gets(second) == []
    assert [p.read_bytes() for p in paths] == [f.read_bytes() for f in files[:2]]


def test_upload_cost(az_url, tmp_path):
    """A new version of one small file: marker, Get Blob Properties + Put Blob of the object, the
    check that it is still there (a listing of gc runs, Get Blob Properties), hint read, a listing of
    the change feed's end, claim, record, summary read + swap, its event's slot, hint read + swap,
    the marker marked finished; the first upload of a domain also reads the feed's head hint. A
    re-upload of the same file skips the Put."""
    store = ModelStore(az_url, cache_dir=tmp_path / "cache")
    log = RequestLog(store.storage)
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(10_000))
    # The first write to a server proves its conditional writes on a probe key: 7 requests, once.
    forget_verdicts()
    with log.measure() as probe:
        store._before_writing()
    assert len(probe) == 7, probe
    with log.measure() as first:
        store.upload("d", files=[model])
    with log.measure() as again:
        store.upload("d", files=[model])
    assert len(first) <= 15, first
    assert len(again) <= 13 and not [c for c in again if c[0] == "PUT" and "/objects/" in c[1]], again
    assert [c[0] for c in again if "/feed/" in c[1]] == ["PUT"], again  # its event's slot
    store.close()

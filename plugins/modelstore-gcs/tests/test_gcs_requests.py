"""What each operation costs in GCS requests, at 201 versions in pages of 50, and the download cache.

Requests are counted on the wire, by a forwarding proxy (no faults) between the SDK and the server.
"""

from __future__ import annotations

import math
import os
import uuid

import pytest
from conftest import BUCKET

from modelstore_core import ModelStore
from modelstore_core.protocol.probe import forget_verdicts
from modelstore_core.testing.faults import FaultProxy
from modelstore_core.testing.history import build_history

#: Versions, and listing pages of PAGE keys: a domain spans pages as 1,001 versions span the
#: service's largest pages (S3's suite runs at 1,001 with those; a thousand commits to this
#: test server cost a minute of the suite).
N = 201
PAGE = 50


def object_gets(log) -> list[str]:
    """Artifact downloads: media GETs of content-addressed objects."""
    return [t for m, t, _ in log if m == "GET" and "objects%2Fsha256" in t.replace("/", "%2F") and "alt=media" in t]


@pytest.fixture(scope="module")
def long_domain(gcs_server, tmp_path_factory):
    """A domain of N versions. Versions 1 and N are real uploads (2 and 3 files); those
    between are copies of version 1's record, committed the way the core commits a version
    (create-if-absent of the claim, then of the record), concurrently, to keep the test quick."""
    tmp = tmp_path_factory.mktemp("long-domain")
    url = f"gs://{BUCKET}/{uuid.uuid4().hex}"
    store = ModelStore(url, cache_dir=tmp / "seed-cache")
    last, files = build_history(store, "d", N, tmp)
    store.close()
    return url, last, files


@pytest.fixture
def proxy(gcs_server):
    with FaultProxy(gcs_server.port) as proxy:
        yield proxy


@pytest.fixture
def counted(long_domain, proxy, tmp_path):
    url, _, _ = long_domain
    store = ModelStore(url, cache_dir=tmp_path / "cache", page_size=PAGE, endpoint=proxy.endpoint)
    yield store, proxy.log
    store.close()


def test_list_versions_is_one_listing(counted):
    store, log = counted
    listed = store.list_versions("d")
    assert [v.version for v in listed] == list(range(N, 0, -1))
    assert len(log) <= math.ceil(N / PAGE) + 2, log


def test_latest_is_two_requests(counted):
    store, log = counted
    assert store.latest("d").version == N
    assert len(log) <= 2, log


def test_load_and_cached_reload(counted, long_domain, proxy, tmp_path):
    store, log = counted
    url, last, files = long_domain
    paths = store.load("d")
    assert [p.read_bytes() for p in paths] == [f.read_bytes() for f in files[2:]]
    assert len(log) <= 3 + len(last.files), log
    assert len(object_gets(log)) == len(last.files), log

    # The same cache from a new store object (a new process, say): no artifact is downloaded.
    del log[:]
    again = ModelStore(url, cache_dir=tmp_path / "cache", page_size=PAGE, endpoint=proxy.endpoint)
    assert [p.read_bytes() for p in again.load("d")] == [f.read_bytes() for f in files[2:]]
    assert object_gets(log) == [] and len(log) <= 3, log
    again.close()


def test_cache_is_shared_by_content_across_versions(counted, long_domain):
    """Version N - 1's files are version 1's: once one is loaded, the other downloads nothing."""
    store, log = counted
    _, _, files = long_domain
    store.load("d", version=1)
    assert len(object_gets(log)) == 2
    del log[:]
    paths = store.load("d", version=N - 1)
    assert object_gets(log) == []
    assert [p.read_bytes() for p in paths] == [f.read_bytes() for f in files[:2]]


def test_upload_cost(gs_url, proxy, tmp_path):
    """A new version of one small file: marker, object stat + upload, the check that it is still there
    (a listing of gc runs, a stat), hint read, a listing of the change feed's end, claim, record,
    summary read + swap, its event's slot, hint read + swap, the marker marked finished; the first
    upload of a domain also reads the feed's head hint. A re-upload of the same file skips the
    object upload."""
    store = ModelStore(gs_url, cache_dir=tmp_path / "cache", endpoint=proxy.endpoint)
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(10_000))
    # The first write to a server proves its conditional writes on a probe key: 7 requests, once.
    forget_verdicts()
    store._before_writing()
    assert len(proxy.log) == 7, proxy.log
    del proxy.log[:]
    store.upload("d", files=[model])
    first = list(proxy.log)
    del proxy.log[:]
    store.upload("d", files=[model])
    assert len(first) <= 15, first
    assert len(proxy.log) <= 13, proxy.log
    store.close()

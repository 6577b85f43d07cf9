"""What each operation costs in S3 requests, over a domain that spans several listing pages, and the
download cache."""

from __future__ import annotations

import math
import os
import uuid

import pytest
from s3_requests import RequestLog, object_gets

from modelstore_core import ModelStore
from modelstore_core.protocol.probe import forget_verdicts
from modelstore_core.testing.history import build_history

#: Versions, and listing pages of PAGE keys: a domain spans pages as 1,001 versions span S3's
#: largest pages (1,000 keys), for a fifth of the commits to the test server (a long_domain cost 30
#: CPU seconds of the suite).
N = 201
PAGE = 50


@pytest.fixture(scope="module")
def long_domain(moto_server, tmp_path_factory):
    """A domain of N versions. Versions 1 and N are real uploads (2 and 3 files); those
    between are copies of version 1's record, committed the way the core commits a version
    (create-if-absent of the claim, then of the record), concurrently, to keep the test quick."""
    tmp = tmp_path_factory.mktemp("long-domain")
    url = f"s3://{moto_server.new_bucket()}/{uuid.uuid4().hex}"
    store = ModelStore(url, cache_dir=tmp / "seed-cache")
    last, files = build_history(store, "d", N, tmp)
    store.close()
    return url, last, files


@pytest.fixture
def counted(long_domain, tmp_path):
    url, _, _ = long_domain
    store = ModelStore(url, cache_dir=tmp_path / "cache", page_size=PAGE)
    yield store, RequestLog(store.storage)
    store.close()


def test_list_versions_is_one_listing(counted):
    store, log = counted
    with log.measure() as calls:
        listed = store.list_versions("d")
    assert [v.version for v in listed] == list(range(N, 0, -1))
    assert len(calls) <= math.ceil(N / PAGE) + 2, calls
    assert {op for op, _, _ in calls} == {"ListObjectsV2"}


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
    again = ModelStore(url, cache_dir=tmp_path / "cache", page_size=PAGE)
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


def test_upload_cost(s3_url, tmp_path):
    """A new version of one small file: marker, HEAD + PUT of the object, the check that it is still
    there (a listing of gc runs, a HEAD), hint read, a listing of the change feed's end, claim, record,
    summary read + swap, its event's slot, hint read + swap, the marker marked finished; the first
    upload of a domain also reads the feed's head hint (no place of its own to list from). A
    re-upload of the same file skips the PUT."""
    store = ModelStore(s3_url, cache_dir=tmp_path / "cache")
    log = RequestLog(store.storage)
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(10_000))
    forget_verdicts()  # the first write to a server proves its conditional writes on a probe key, once: not counted
    store._before_writing()
    with log.measure() as first:
        store.upload("d", files=[model])
    with log.measure() as again:
        store.upload("d", files=[model])
    assert len(first) <= 15, first
    assert len(again) <= 13 and not [c for c in again if c[0] == "PutObject" and "/objects/" in c[2]], again
    assert [op for op, _, path in again if "/feed/" in path] == ["PutObject"], again  # its event's slot
    store.close()


def test_find_reads_a_listing_and_the_summary_not_the_records(counted):
    """A filtered, sorted query of N versions: the listing's pages, the summary's segments, the states.
    The history was committed without summary entries (as records written before the summary
    existed): the first query reads every record once and writes the summary."""
    store, log = counted
    with log.measure() as first:
        store.find("d")
    assert len([c for c in first if c[0] == "GetObject" and "/versions/" in c[2]]) == N - 2  # all but the two uploads
    store.set_state("d", 7, "production")
    with log.measure() as calls:
        found = store.find("d", ["flavor=files", "state!=production", "files>=2"], "-files")
    assert [v.version for v in found] == [N, *range(N - 1, 7, -1), *range(6, 0, -1)]
    assert len(calls) <= 2 * math.ceil(N / PAGE) + 1, calls
    assert {path.rsplit("/", 2)[-2] for op, _, path in calls if op == "GetObject"} <= {"summary", "d"}, calls  # no record


def test_find_over_every_domain_of_a_small_store(s3_url, tmp_path):
    """20 domains: one listing of them all, then one summary read per domain (no listing per domain)."""
    from modelstore_core.protocol import commit

    store = ModelStore(s3_url, cache_dir=tmp_path / "cache")
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(1000))
    first = store.upload("d00", files=[model], metrics={"auc": 0.0}).metadata
    for i in range(1, 20):
        draft = {k: v for k, v in first.items() if k not in ("version", "created")}
        commit.create_record(store.storage, f"d{i:02d}", {**draft, "domain": f"d{i:02d}", "metrics": {"auc": i / 20}})
    store.find()  # the records were committed without summary entries: this query writes them
    log = RequestLog(store.storage)
    with log.measure() as calls:
        found = store.find(where="metrics.auc>0.5", sort="-metrics.auc")
    assert [v.domain for v in found] == [f"d{i:02d}" for i in range(19, 10, -1)]
    assert len(calls) <= 1 + 20, calls
    store.close()

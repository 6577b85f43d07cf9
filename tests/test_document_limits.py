"""Every document of a store is read up to a size limit (``protocol.limits``): a record inflated with
tags, a latest hint, states, a summary segment or an upload marker past its limit is refused after
one byte more, naming its key, size and limit; an object larger than its record says is refused
before it is downloaded or copied whole."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelstore_core import CorruptRecordError, IntegrityError, ModelStore, UsageError
from modelstore_core.errors import DocumentTooLargeError
from modelstore_core.protocol import keys, limits
from modelstore_core.testing.store_contract import collect_now


@pytest.fixture
def store(tmp_path) -> ModelStore:
    src = tmp_path / "w.bin"
    src.write_bytes(os.urandom(5000))
    s = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    s.upload("d", files=[src], tags={"team": "risk"}, metrics={"auc": 0.9})
    s.upload("d", files=[src], tags={"team": "growth"}, metrics={"auc": 0.8})
    s.set_state("d", 2, "production")
    return s


def root(store: ModelStore) -> Path:
    return Path(store.url.removeprefix("file://"))


def inflate(store: ModelStore, key: str, size: int) -> None:
    """Rewrite the document at ``key`` as itself plus whitespace up to ``size`` bytes (still valid JSON)."""
    path = root(store) / key
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(data + b" " * (size - len(data)))


class Reads:
    """The bytes each ``read`` of the store's backend returned."""

    def __init__(self, store: ModelStore):
        self.sizes: list[int] = []
        read = store.storage.read

        def counted(key, max_bytes=None):
            data, token = read(key, max_bytes=max_bytes)
            self.sizes.append(len(data))
            return data, token

        store.storage.read = counted


def test_an_inflated_record_is_refused_after_its_limit(store, tmp_path):
    """A record of 17 MiB (tags padded): read whole, parsed and shown before; now refused after
    ``RECORD_BYTES + 1`` bytes, with the key, its size and the limit."""
    key = keys.version_key("d", 1)
    inflate(store, key, limits.RECORD_BYTES + 2**20)
    reader = ModelStore(store.url, cache_dir=tmp_path / "reader")
    reads = Reads(reader)
    with pytest.raises(DocumentTooLargeError) as err:
        reader.info("d", 1)
    assert isinstance(err.value, CorruptRecordError) and err.value.key == key
    assert err.value.size == limits.RECORD_BYTES + 2**20 and err.value.limit == limits.RECORD_BYTES
    assert f"{limits.RECORD_BYTES + 2**20} bytes, over the {limits.RECORD_BYTES} byte limit for a version record" in str(err.value)
    assert max(reads.sizes) == limits.RECORD_BYTES + 1
    problems: list[str] = []
    assert [v.version for v in reader.find("d", problems=problems)] == [2]  # listed without it, said why
    assert any(key in p and "byte limit" in p for p in problems), problems


def test_oversized_small_documents_are_refused_or_replaced(store, tmp_path, fast_heartbeat):
    """The latest hint is unusable (readers list past it; the next upload replaces it); states are
    refused; an upload marker is reported by gc and removed once old."""
    inflate(store, keys.latest_key("d"), limits.SMALL_BYTES + 1)
    reader = ModelStore(store.url, cache_dir=tmp_path / "reader")
    assert reader.latest("d").version == 2
    (tmp_path / "x.bin").write_bytes(b"x")
    assert reader.upload("d", files=[tmp_path / "x.bin"]).version == 3
    assert json.loads((root(store) / keys.latest_key("d")).read_bytes())["version"] == 3  # replaced

    inflate(store, keys.states_key("d"), limits.STATES_BYTES + 1)
    with pytest.raises(DocumentTooLargeError, match="states.json is 1048577 bytes, over the 1048576 byte limit"):
        reader.states("d")

    marker = root(store) / keys.upload_key("f" * 32)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_bytes(b"{" + b" " * limits.RECORD_BYTES + b"}")
    report = collect_now(reader)  # once it is older than the grace
    assert any("byte limit for an upload marker" in p for p in report.problems), report.problems
    assert not marker.exists()


def test_an_oversized_summary_segment_is_rebuilt_from_the_records(store, tmp_path):
    key = keys.summary_key("d", 1)
    inflate(store, key, limits.SEGMENT_BYTES + 1)
    reader = ModelStore(store.url, cache_dir=tmp_path / "reader")
    problems: list[str] = []
    assert sorted(v.version for v in reader.find("d", problems=problems)) == [1, 2]
    assert any("byte limit for a summary segment" in p and "rebuilt" in p for p in problems), problems
    assert (root(store) / key).stat().st_size < 10_000  # the query rebuilt it


def test_a_record_over_the_limit_is_not_uploaded(store, tmp_path):
    (tmp_path / "x.bin").write_bytes(b"x")
    with pytest.raises(UsageError, match="over the 16777216 byte limit"):
        store.upload("d", files=[tmp_path / "x.bin"], tags={"notes": "x" * limits.RECORD_BYTES})
    assert store.latest("d").version == 2 and not (root(store) / keys.claim_key("d", 3)).exists()  # no number claimed


def test_an_object_larger_than_its_record_is_refused_before_it_is_copied(store, tmp_path):
    """The object behind a 5000-byte file grown to 20 MB: refused from its size, not copied whole."""
    entry = store.info("d", 1).files[0]
    obj = root(store) / keys.object_key(entry.sha256)
    obj.chmod(0o644)
    with open(obj, "ab") as f:
        f.write(os.urandom(20 * 10**6))
    reader = ModelStore(store.url, cache_dir=tmp_path / "reader")
    with pytest.raises(IntegrityError, match="larger than the 5000 bytes its record names"):
        reader.download("d", 1, to=tmp_path / "out")
    assert not (tmp_path / "out" / entry.path).exists() or (tmp_path / "out" / entry.path).stat().st_size <= 5001


def test_get_file_stops_one_byte_past_the_recorded_size(store, tmp_path):
    """What a remote backend's download does (the local one links or copies the object instead)."""
    entry = store.info("d", 1).files[0]
    obj = root(store) / keys.object_key(entry.sha256)
    obj.chmod(0o644)
    with open(obj, "ab") as f:
        f.write(os.urandom(10**6))
    store.storage.get_file(keys.object_key(entry.sha256), tmp_path / "part", max_bytes=entry.size)
    assert (tmp_path / "part").stat().st_size == entry.size + 1

"""Against moto: a document over its size limit is read with a ranged GetObject of the limit plus one
byte and refused; an object larger than its record is downloaded up to one byte past the recorded
size and refused, never whole."""

from __future__ import annotations

import io
import os

import pytest
from s3_requests import RequestLog

from modelstore_core import IntegrityError, ModelStore
from modelstore_core.errors import DocumentTooLargeError
from modelstore_core.protocol import keys, limits


class HeaderLog(RequestLog):
    """Also each request's ``Range`` header."""

    def __init__(self, storage):
        super().__init__(storage)
        self.ranges: list[tuple[str, str, str | None]] = []
        storage.client.meta.events.register("before-send.s3", self._range)

    def _range(self, request, event_name: str, **kwargs):
        value = request.headers.get("Range")
        self.ranges.append(
            (event_name.rsplit(".", 1)[-1], request.url.split("?")[0], value.decode() if isinstance(value, bytes) else value)
        )


def ranges(log: HeaderLog, key: str) -> list[str | None]:
    """The Range header of each GetObject of ``key`` sent so far."""
    return [value for op, url, value in log.ranges if op == "GetObject" and url.endswith(key)]


def test_an_inflated_record_is_read_up_to_its_limit(s3_url, tmp_path):
    src = tmp_path / "w.bin"
    src.write_bytes(os.urandom(5000))
    store = ModelStore(s3_url, cache_dir=tmp_path / "cache")
    store.upload("d", files=[src])
    key = keys.version_key("d", 1)
    data, _ = store.storage.read(key)
    store.storage.put(key, io.BytesIO(data + b" " * (limits.RECORD_BYTES + 2**20)))
    reader = ModelStore(s3_url, cache_dir=tmp_path / "reader")
    log = HeaderLog(reader.storage)
    with pytest.raises(DocumentTooLargeError, match=f"over the {limits.RECORD_BYTES} byte limit for a version record"):
        reader.info("d", 1)
    assert ranges(log, key) == [f"bytes=0-{limits.RECORD_BYTES}"]


def test_an_object_larger_than_its_record_is_not_downloaded_whole(s3_url, tmp_path):
    src = tmp_path / "w.bin"
    src.write_bytes(os.urandom(5000))
    store = ModelStore(s3_url, cache_dir=tmp_path / "cache")
    entry = store.upload("d", files=[src]).files[0]
    obj = keys.object_key(entry.sha256)
    store.storage.put(obj, io.BytesIO(src.read_bytes() + os.urandom(20 * 10**6)))  # 20 MB behind a 5000-byte record
    reader = ModelStore(s3_url, cache_dir=tmp_path / "reader")
    log = HeaderLog(reader.storage)
    with pytest.raises(IntegrityError, match="larger than the 5000 bytes its record names"):
        reader.download("d", 1, to=tmp_path / "out")
    assert ranges(log, obj) == ["bytes=0-5000"]

"""A storage backend that keeps objects in this process's memory: ``memory://<name>``.

Every ``ModelStore("memory://team")`` in one process shares the same objects, which is enough
to show the eight primitives a backend implements (``put``, ``put_if_absent``, ``get``, ``read``,
``compare_and_swap``, ``list``, ``delete``, ``stat``; the core builds versions, states,
deduplication and garbage collection on top). It is gone when the process exits, so it suits
tests and notebooks, not other processes (the whole-store conformance tests that start other
processes do not apply to it).
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import BinaryIO

from modelstore_core.plugin_api import KeyNotFoundError, ObjectInfo, Storage

_stores: dict[str, MemoryStorage] = {}
_stores_lock = threading.Lock()


def open_memory_storage(url: str) -> MemoryStorage:
    """The process-wide store named by ``memory://<name>`` (created empty on first use)."""
    name = url.split("://", 1)[1].strip("/")
    with _stores_lock:
        if name not in _stores:
            _stores[name] = MemoryStorage(name)
        return _stores[name]


class MemoryStorage(Storage):
    """Objects in a dict: ``key -> (bytes, modified, generation)``; one lock makes each primitive atomic."""

    def __init__(self, name: str):
        self.url = f"memory://{name}"
        self._objects: dict[str, tuple[bytes, datetime, int]] = {}
        self._lock = threading.Lock()
        self._generations = itertools.count(1)

    def _set(self, key: str, data: bytes) -> None:  # call with the lock held
        self._objects[key] = (bytes(data), datetime.now(timezone.utc), next(self._generations))

    def put(self, key: str, stream: BinaryIO) -> None:
        data = stream.read()  # read fully first: readers never see a partial object
        with self._lock:
            self._set(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._lock:
            if key in self._objects:
                return False
            self._set(key, data)
            return True

    def get(self, key: str) -> BinaryIO:
        return io.BytesIO(self.read(key)[0])

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, int]:
        with self._lock:
            try:
                data, _, generation = self._objects[key]
            except KeyError:
                raise KeyNotFoundError(key) from None
        # the token: which write produced these bytes; at most max_bytes + 1 of them (a ranged read)
        return (data if max_bytes is None else data[: max_bytes + 1]), generation

    def compare_and_swap(self, key: str, data: bytes, token: int) -> bool:
        with self._lock:
            current = self._objects.get(key)
            if current is None or current[2] != token:
                return False
            self._set(key, data)
            return True

    def list(self, prefix: str, *, start_after: str | None = None, delimiter: str | None = None) -> Iterator[ObjectInfo]:
        with self._lock:  # a snapshot, in key order
            entries = sorted((k, v) for k, v in self._objects.items() if k.startswith(prefix))
        last_prefix = None
        for key, (data, modified, _) in entries:
            if start_after is not None and key <= start_after:
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if common != last_prefix:
                    last_prefix = common
                    yield ObjectInfo(common)
                continue
            yield ObjectInfo(key, len(data), modified)

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def stat(self, key: str) -> ObjectInfo | None:
        with self._lock:
            entry = self._objects.get(key)
        return None if entry is None else ObjectInfo(key, len(entry[0]), entry[1])

"""Conformance tests for the storage primitives of :class:`modelstore_core.storage.Storage`."""

from __future__ import annotations

import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..errors import KeyNotFoundError
from ..storage import Storage


class StorageContract:
    """Subclass and provide a ``storage`` fixture returning a fresh, empty backend."""

    @pytest.fixture(autouse=True)
    def _isolated(self, isolated):
        """Never the user's own store or cache (the kit's pytest plugin provides ``isolated``)."""

    #: Number of keys written to exercise listing pagination; construct the backend with a
    #: page size below this in the fixture.
    pagination_keys = 23

    @pytest.fixture
    def storage(self) -> Storage:  # pragma: no cover - provided by the subclass
        raise NotImplementedError("provide a `storage` fixture returning a fresh, empty Storage")

    # --- put / get ----------------------------------------------------------------

    def test_put_then_get_streams_the_same_bytes(self, storage: Storage):
        data = os.urandom(3 * (1 << 20) + 17)
        storage.put("a/b/blob", io.BytesIO(data))
        with storage.get("a/b/blob") as f:
            chunks = []
            while chunk := f.read(1 << 16):
                chunks.append(chunk)
        assert b"".join(chunks) == data

    def test_put_replaces_an_existing_object(self, storage: Storage):
        storage.put("k", io.BytesIO(b"old"))
        storage.put("k", io.BytesIO(b"new!"))
        assert storage.read("k")[0] == b"new!"
        assert storage.stat("k").size == 4

    def test_put_file_and_get_file_round_trip(self, storage: Storage, tmp_path):
        src = tmp_path / "src.bin"
        src.write_bytes(os.urandom(1 << 20))
        storage.put_file("files/x", src)
        dest = tmp_path / "dest.bin"
        storage.get_file("files/x", dest)
        assert dest.read_bytes() == src.read_bytes()

    def test_empty_object(self, storage: Storage):
        storage.put("empty", io.BytesIO(b""))
        assert storage.read("empty")[0] == b""
        assert storage.stat("empty").size == 0

    def test_read_with_max_bytes_returns_at_most_one_byte_more(self, storage: Storage):
        """What bounds every document the core reads: a ranged read of ``max_bytes + 1`` bytes,
        whose token is still the whole object's (a writer replaces an oversized document)."""
        data = os.urandom(5000)
        storage.put_if_absent("doc", data)
        assert storage.read("doc", max_bytes=10_000)[0] == data
        assert storage.read("doc", max_bytes=5000)[0] == data
        head, token = storage.read("doc", max_bytes=100)
        assert head == data[:101]
        assert storage.compare_and_swap("doc", b"small", token)
        assert storage.read("doc", max_bytes=100)[0] == b"small"
        storage.put("empty", io.BytesIO(b""))
        assert storage.read("empty", max_bytes=0)[0] == b""
        assert storage.read("empty", max_bytes=64)[0] == b""
        with pytest.raises(KeyNotFoundError):
            storage.read("nope/missing", max_bytes=64)

    def test_get_file_with_max_bytes_writes_at_most_one_byte_more(self, storage: Storage, tmp_path):
        """A download stops one byte past the size the record names."""
        data = os.urandom(3 * (1 << 20))
        storage.put("files/big", io.BytesIO(data))
        dest = tmp_path / "dest.bin"
        storage.get_file("files/big", dest, max_bytes=1000)
        assert dest.read_bytes() == data[:1001]
        storage.get_file("files/big", dest, max_bytes=len(data))
        assert dest.read_bytes() == data
        storage.put("files/empty", io.BytesIO(b""))
        storage.get_file("files/empty", dest, max_bytes=0)
        assert dest.read_bytes() == b""

    def test_missing_keys_raise_key_not_found(self, storage: Storage):
        with pytest.raises(KeyNotFoundError):
            storage.get("nope/missing")
        with pytest.raises(KeyNotFoundError):
            storage.read("nope/missing")
        assert storage.stat("nope/missing") is None

    def test_stat_reports_size_and_time(self, storage: Storage):
        storage.put("s", io.BytesIO(b"12345"))
        info = storage.stat("s")
        assert info.key == "s" and info.size == 5
        assert info.modified is not None and info.modified.tzinfo is not None

    # --- create-if-absent and compare-and-swap ------------------------------------------

    def test_put_if_absent_creates_once(self, storage: Storage):
        assert storage.put_if_absent("claims/1", b"first") is True
        assert storage.put_if_absent("claims/1", b"second") is False
        assert storage.read("claims/1")[0] == b"first"

    def test_put_if_absent_race_has_one_winner(self, storage: Storage):
        barrier = threading.Barrier(8)

        def attempt(i: int) -> bool:
            barrier.wait()
            return storage.put_if_absent("race/key", f"writer {i}".encode())

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(attempt, range(8)))
        assert results.count(True) == 1
        winner = results.index(True)
        assert storage.read("race/key")[0] == f"writer {winner}".encode()

    def test_compare_and_swap(self, storage: Storage):
        storage.put_if_absent("rec", b"v1")
        _, token1 = storage.read("rec")
        assert storage.compare_and_swap("rec", b"v2", token1) is True
        assert storage.read("rec")[0] == b"v2"
        assert storage.compare_and_swap("rec", b"v3", token1) is False  # stale token
        assert storage.read("rec")[0] == b"v2"

    def test_compare_and_swap_on_a_deleted_key_fails(self, storage: Storage):
        storage.put_if_absent("gone", b"x")
        _, token = storage.read("gone")
        storage.delete("gone")
        assert storage.compare_and_swap("gone", b"y", token) is False
        assert storage.stat("gone") is None

    def test_compare_and_swap_loses_no_update_under_contention(self, storage: Storage):
        storage.put_if_absent("counter", b"0")

        def increment(_):
            while True:
                data, token = storage.read("counter")
                if storage.compare_and_swap("counter", str(int(data) + 1).encode(), token):
                    return

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(increment, range(30)))
        assert storage.read("counter")[0] == b"30"

    # --- listing -----------------------------------------------------------------------

    def test_list_is_in_key_order_and_filtered_by_prefix(self, storage: Storage):
        # "-" < "/" < "0": a filesystem walk that sorts names alone gets this wrong.
        keys = ["d/a-b", "d/a/x", "d/a0", "d/b/c/d", "d/b0", "e/z", "da"]
        for key in keys:
            storage.put(key, io.BytesIO(key.encode()))
        listed = [info.key for info in storage.list("d/")]
        assert listed == sorted(k for k in keys if k.startswith("d/"))
        assert [i.key for i in storage.list("d")] == sorted(k for k in keys if k.startswith("d"))
        assert all(info.size is not None for info in storage.list("d/"))

    def test_list_start_after(self, storage: Storage):
        for n in range(1, 8):
            storage.put(f"v/{n:04d}.json", io.BytesIO(b"x"))
        assert [i.key for i in storage.list("v/", start_after="v/0004.json")] == ["v/0005.json", "v/0006.json", "v/0007.json"]
        assert [i.key for i in storage.list("v/", start_after="v/0004")][0] == "v/0004.json"
        assert list(storage.list("v/", start_after="v/9999")) == []

    def test_list_with_delimiter_rolls_up_common_prefixes(self, storage: Storage):
        for key in ["top/one/a", "top/one/b", "top/two/c", "top/file", "other/x"]:
            storage.put(key, io.BytesIO(b"x"))
        entries = list(storage.list("top/", delimiter="/"))
        assert [e.key for e in entries] == ["top/file", "top/one/", "top/two/"]
        assert [e.is_prefix for e in entries] == [False, True, True]

    def test_list_pages_through_everything(self, storage: Storage):
        n = self.pagination_keys
        for i in range(n):
            storage.put(f"many/{i:05d}", io.BytesIO(b"x"))
        assert [i.key for i in storage.list("many/")] == [f"many/{i:05d}" for i in range(n)]
        assert len(list(storage.list("many/", start_after=f"many/{3:05d}"))) == n - 4
        for i in range(n):
            storage.put(f"deep/{i:05d}/leaf", io.BytesIO(b"x"))
        assert len(list(storage.list("deep/", delimiter="/"))) == n

    def test_list_of_an_absent_prefix_is_empty(self, storage: Storage):
        assert list(storage.list("nothing/here/")) == []

    # --- delete ---------------------------------------------------------------------------

    def test_delete(self, storage: Storage):
        storage.put("del/me", io.BytesIO(b"x"))
        storage.put("del/keep", io.BytesIO(b"y"))
        storage.delete("del/me")
        storage.delete("del/me")  # idempotent
        assert storage.stat("del/me") is None
        assert [i.key for i in storage.list("del/")] == ["del/keep"]
        storage.delete("del/keep")
        assert list(storage.list("", delimiter="/")) == []

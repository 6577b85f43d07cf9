"""The one-read copy that hashes in a second thread: same bytes, same digest, every size."""

from __future__ import annotations

import hashlib
import os

import pytest

from modelstore_core.hashing import copy_file_hashed, hash_file
from modelstore_core.storage import CHUNK_SIZE

BLOCK = 4 * CHUNK_SIZE


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 3 * BLOCK + 7])
def test_copy_file_hashed(tmp_path, size):
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    reported, writebacks = [], []
    sha, n = copy_file_hashed(tmp_path / "src", tmp_path / "dest", lambda *a: writebacks.append(a), reported.append)
    assert (sha, n) == (hashlib.sha256(data).hexdigest(), size)
    assert (tmp_path / "dest").read_bytes() == data
    assert sum(reported) == size
    assert hash_file(tmp_path / "dest") == (sha, size)


def test_hashing_writer_hashes_what_it_writes(tmp_path):
    import hashlib

    from modelstore_core.hashing import HashingWriter

    big = os.urandom(9 << 20)  # several pieces
    with HashingWriter(tmp_path / "f.bin") as w:
        w.write(b"head")
        w.write(memoryview(big))
        w.write(b"")
    assert w.size == len(big) + 4
    assert w.sha256 == hashlib.sha256(b"head" + big).hexdigest() == hashlib.sha256((tmp_path / "f.bin").read_bytes()).hexdigest()


def _parts(data: bytes, size: int) -> list[tuple[int, bytes]]:
    return [(start, data[start : start + size]) for start in range(0, len(data), size)]


@pytest.mark.parametrize("order", ["in order", "shuffled", "reversed"])
def test_hashing_download_hashes_parts_written_at_offsets_by_several_threads(tmp_path, order):
    """Parts written out of order from four threads: the digest is the file's, and the hashing
    thread had followed the filled prefix (no second read of the whole file)."""
    import random
    import threading

    from modelstore_core.hashing import HashingDownload

    data = os.urandom(3 * HashingDownload.PIECE + 12345)
    parts = _parts(data, (1 << 20) + 17)
    if order == "shuffled":
        random.Random(7).shuffle(parts)
    elif order == "reversed":
        parts.reverse()
    with HashingDownload(tmp_path / "f.bin") as out:
        writers = [threading.Thread(target=lambda mine: [out.write_at(o, b) for o, b in mine], args=(parts[i::4],)) for i in range(4)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        assert out.finish() == (hashlib.sha256(data).hexdigest(), len(data))
    assert (tmp_path / "f.bin").read_bytes() == data


def test_hashing_download_is_a_seekable_stream_for_transfer_libraries(tmp_path):
    from modelstore_core.hashing import HashingDownload

    data = os.urandom(2 * HashingDownload.PIECE)
    half = len(data) // 2
    with HashingDownload(tmp_path / "f.bin") as out:
        assert out.seekable() and out.writable() and not out.readable()
        out.seek(half)
        out.write(data[half:])
        assert out.tell() == len(data)
        out.seek(0)
        out.write(data[:half])
        assert out.finish() == (hashlib.sha256(data).hexdigest(), len(data))


@pytest.mark.parametrize("rewrite", ["a retried part over hashed bytes", "overlapping parts", "a gap left"])
def test_hashing_download_digest_is_always_of_the_file_as_written(tmp_path, rewrite):
    """Writes that do not tile the file once (a part written again with other bytes after it was
    hashed, parts that overlap, a hole) make it hash the whole file again: never the digest of
    bytes that merely went by."""
    from modelstore_core.hashing import HashingDownload

    data = bytearray(os.urandom(2 * HashingDownload.PIECE + 99))
    path = tmp_path / "f.bin"
    with HashingDownload(path) as out:
        if rewrite == "a retried part over hashed bytes":
            out.write_at(0, data)
            data[10] ^= 0xFF
            out.write_at(0, data[:20])
        elif rewrite == "overlapping parts":
            out.write_at(100, data[100:])
            out.write_at(0, data[:200])
        else:
            out.write_at(0, data[:1000])
            out.write_at(2000, data[2000:])
            data[1000:2000] = bytes(1000)  # what a hole reads as
        sha, size = out.finish()
    assert path.read_bytes() == bytes(data)
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))

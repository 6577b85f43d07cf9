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

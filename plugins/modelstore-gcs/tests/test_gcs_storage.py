"""GCS-specific behaviour of the primitives: resumable uploads past 8 MiB, generations as tokens."""

from __future__ import annotations

import io
import os

from modelstore_gcs.storage import GCSStorage

MB = 1 << 20


def test_large_file_goes_resumable_in_chunks(gs_url, tmp_path):
    storage = GCSStorage.from_url(gs_url, chunk_size=2 * MB)
    data = os.urandom(9 * MB + 5)  # past the SDK's 8 MiB single-request limit
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    storage.put_file("objects/big", src)
    assert storage.stat("objects/big").size == len(data)
    storage.get_file("objects/big", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    with storage.get("objects/big") as f:
        assert f.read(10) == data[:10]
    storage.close()


def test_token_is_the_generation_and_changes_with_every_write(gs_url):
    storage = GCSStorage.from_url(gs_url)
    assert storage.put_if_absent("rec", b"1")
    _, g1 = storage.read("rec")
    assert storage.compare_and_swap("rec", b"2", g1)
    _, g2 = storage.read("rec")
    assert isinstance(g1, int) and g2 != g1
    storage.put("rec", io.BytesIO(b"3"))  # an unconditional write moves the generation too
    assert not storage.compare_and_swap("rec", b"4", g2)
    assert storage.read("rec")[0] == b"3"
    storage.close()


def test_url_forms(gcs_server):
    assert GCSStorage.from_url("gs://bucket").url == "gs://bucket"
    storage = GCSStorage.from_url("gs://bucket//a/b/")
    assert (storage.url, storage.prefix) == ("gs://bucket/a/b", "a/b/")

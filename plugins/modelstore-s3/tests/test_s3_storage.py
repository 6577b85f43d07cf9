"""S3-specific behaviour of the primitives: transfers past the multipart threshold, empty objects, endpoints."""

from __future__ import annotations

import io
import math
import os

from modelstore_s3.storage import S3Storage
from s3_requests import RequestLog

MB = 1 << 20


def test_large_objects_go_multipart_and_come_back_in_parallel_ranges(s3_url, tmp_path):
    storage = S3Storage.from_url(s3_url, multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    log = RequestLog(storage)
    data = os.urandom(12 * MB + 7)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    with log.measure() as up:
        storage.put_file("objects/big", src)
    ops = [op for op, _, _ in up]
    assert ops.count("UploadPart") == 3 and "CreateMultipartUpload" in ops and "CompleteMultipartUpload" in ops
    with log.measure() as down:
        storage.get_file("objects/big", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    # One ranged GET that learns the size, then s3transfer's ranged GETs; no HeadObject.
    assert [op for op, _, _ in down] == ["GetObject"] * (1 + math.ceil(len(data) / (5 * MB)))
    storage.close()


def test_small_object_download_is_one_request(s3_url, tmp_path):
    storage = S3Storage.from_url(s3_url)
    log = RequestLog(storage)
    storage.put("objects/small", io.BytesIO(b"abc" * 1000))
    with log.measure() as down:
        storage.get_file("objects/small", tmp_path / "small.bin")
    assert (tmp_path / "small.bin").read_bytes() == b"abc" * 1000
    assert [op for op, _, _ in down] == ["GetObject"]
    storage.close()


def test_empty_object_downloads_as_an_empty_file(s3_url, tmp_path):
    storage = S3Storage.from_url(s3_url)
    storage.put("objects/empty", io.BytesIO(b""))
    (tmp_path / "e.bin").write_bytes(b"stale")
    storage.get_file("objects/empty", tmp_path / "e.bin")
    assert (tmp_path / "e.bin").read_bytes() == b""
    storage.close()


def test_endpoint_from_the_environment_with_userinfo(moto_server, s3_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://envkey:envsecret@127.0.0.1:{moto_server.port}")
    storage = S3Storage.from_url(s3_url)
    assert storage.endpoint == moto_server.endpoint and "envsecret" not in repr(storage)
    storage.put("k", io.BytesIO(b"x"))
    assert storage.read("k")[0] == b"x"
    storage.close()


def test_url_forms(moto_server):
    assert S3Storage.from_url("s3://bucket").url == "s3://bucket"
    storage = S3Storage.from_url("s3://bucket//a/b/")
    assert (storage.url, storage.prefix) == ("s3://bucket/a/b", "a/b/")

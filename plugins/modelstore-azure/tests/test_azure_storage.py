"""Azure-specific behaviour of the primitives: staged blocks in parallel, ETags as tokens, URL forms."""

from __future__ import annotations

import io
import math
import os
import threading

import pytest
from azure_requests import RequestLog, kind
from azure_servers import ACCOUNT
from conftest import CONTAINER
from modelstore_azure.storage import AzureStorage

from modelstore_core import InvalidNameError

MB = 1 << 20


def test_large_file_goes_in_parallel_blocks_and_comes_back(az_url, tmp_path):
    storage = AzureStorage.from_url(az_url, single_put_size=MB, block_size=MB, max_concurrency=4)
    log = RequestLog(storage)
    data = os.urandom(5 * MB + 7)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    sent = []
    with log.measure() as up:
        storage.put_file("objects/big", src, progress=sent.append)
    assert [kind(*c) for c in up] == ["Put Block"] * math.ceil(len(data) / MB) + ["Put Block List"]
    assert sum(sent) == len(data)
    got = []
    storage.get_file("objects/big", tmp_path / "out.bin", progress=got.append)
    assert (tmp_path / "out.bin").read_bytes() == data and sum(got) == len(data)
    with storage.get("objects/big") as f:
        assert f.read(10) == data[:10] and f.read() == data[10:]
    storage.close()


def test_small_file_is_one_put_and_one_get(az_url, tmp_path):
    storage = AzureStorage.from_url(az_url)
    log = RequestLog(storage)
    (tmp_path / "s.bin").write_bytes(b"abc" * 1000)
    with log.measure() as calls:
        storage.put_file("objects/small", tmp_path / "s.bin")
        storage.get_file("objects/small", tmp_path / "out.bin")
    assert [kind(*c) for c in calls] == ["Put Blob", "Get Blob"]
    assert (tmp_path / "out.bin").read_bytes() == b"abc" * 1000
    storage.close()


def test_concurrent_staged_uploads_of_one_key_never_mix_blocks(az_url, tmp_path):
    """Two writers upload the same content-addressed object with different block sizes at once: each
    names its blocks with its own id, and a writer whose blocks the other's commit discarded sends
    its upload again. The object ends whole."""
    data = os.urandom(6 * MB)
    src = tmp_path / "same.bin"
    src.write_bytes(data)
    stores = [AzureStorage.from_url(az_url, single_put_size=MB, block_size=size, max_concurrency=2) for size in (MB, 2 * MB)]
    errors = []

    def upload(storage):
        try:
            for _ in range(3):
                storage.put_file("objects/same", src)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stores[0].read("objects/same")[0] == data
    for s in stores:
        s.close()


def test_token_is_the_etag_and_changes_with_every_write(az_url):
    storage = AzureStorage.from_url(az_url)
    assert storage.put_if_absent("rec", b"1")
    _, e1 = storage.read("rec")
    assert storage.compare_and_swap("rec", b"2", e1)
    _, e2 = storage.read("rec")
    assert e1.startswith('"') and e2 != e1
    storage.put("rec", io.BytesIO(b"3"))  # an unconditional write moves the ETag too
    assert not storage.compare_and_swap("rec", b"4", e2)
    storage.delete("rec")
    assert not storage.compare_and_swap("rec", b"5", e2)  # deleted meanwhile
    assert storage.stat("rec") is None
    storage.close()


def test_url_forms(azurite):
    assert AzureStorage.from_url(f"azure://{CONTAINER}").url == f"azure://{CONTAINER}"
    storage = AzureStorage.from_url(f"az://{CONTAINER}//a/b/")
    assert (storage.url, storage.prefix) == (f"azure://{CONTAINER}/a/b", "a/b/")
    # The forms Spark and fsspec users have: the account comes from the host.
    for url in (f"abfss://{CONTAINER}@myaccount.dfs.core.windows.net/a/b", f"wasbs://{CONTAINER}@myaccount.blob.core.windows.net/a/b"):
        storage = AzureStorage.from_url(url, connection_string=None, account_key="a2V5", account=None)
        assert (storage.url, storage.account, storage.endpoint) == (
            f"azure://{CONTAINER}/a/b",
            "myaccount",
            "https://myaccount.blob.core.windows.net",
        )
    with pytest.raises(InvalidNameError, match="abfss://container@account.dfs.core.windows.net/prefix"):
        AzureStorage.from_url(f"abfss://{CONTAINER}/p")
    with pytest.raises(InvalidNameError, match="names account 'myaccount' and account= names 'other'"):
        AzureStorage.from_url(f"abfss://{CONTAINER}@myaccount.dfs.core.windows.net/p", account="other")


def test_emulator_endpoint_gets_the_account_path(azurite, az_url):
    storage = AzureStorage.from_url(az_url, endpoint=azurite.endpoint)
    assert storage.endpoint == f"{azurite.endpoint}/{ACCOUNT}"
    assert list(storage.list("")) == []
    storage.close()

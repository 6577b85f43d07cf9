"""Azure backend benchmark against Azurite on 127.0.0.1, each figure next to the raw SDK in the same run.

    pip install -e . -e 'plugins/modelstore-azure[test]'
    python bench/azure_bench.py [--big-mb 400] [--versions 1000] [--repeat 1]

- upload and download of a ``--big-mb`` artifact through the store vs azure-storage-blob's own
  ``upload_blob`` / ``download_blob(...).readinto`` with the same ``max_concurrency`` (8) and block
  size (8 MiB); target <= 1.2x. Each run is a fresh process, so its peak RSS (VmHWM) is its own.
- HTTP requests (every attempt, counted on the store's HTTP session) at ``--versions`` versions:
  list_versions, latest, load of the latest (fresh cache), the same load again from the same cache,
  and an upload of one small file.

The ``--versions`` version records are written the way the core commits a version (claim, then
record with create-if-absent; the latest hint moved at the end), concurrently: only versions 1 and
N are real uploads.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import _common

TESTS = Path(__file__).resolve().parents[1] / "plugins" / "modelstore-azure" / "tests"
CONCURRENCY = 8  # the store's default max_concurrency
BLOCK = 8 << 20  # the store's default block_size


def raw(op: str, url: str, path: str) -> None:
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"], max_block_size=BLOCK)
    blob = client.get_blob_client(_common.BUCKET, url.split("/", 3)[3] + "/raw.bin")
    if op == "raw-upload":
        with open(path, "rb") as f:
            blob.upload_blob(f, overwrite=True, max_concurrency=CONCURRENCY)
    else:
        with open(path, "wb") as f:
            blob.download_blob(max_concurrency=CONCURRENCY).readinto(f)


def server(work: Path):
    """Azurite, started as the plugin's tests start it (``tests/azure_servers.py``)."""
    sys.path.insert(0, str(TESTS))
    from azure_servers import Azurite

    return Azurite(work / "azurite.log")


def environment(endpoint: str) -> dict:
    from azure_servers import ACCOUNT, KEY

    return {
        "AZURE_STORAGE_CONNECTION_STRING": (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint}/{ACCOUNT};"
        )
    }


def create_bucket() -> None:
    from azure.storage.blob import BlobServiceClient

    BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"]).create_container(_common.BUCKET)


def raw_list(prefix: str):
    """A plain client's ``list_blobs`` pages (the service's default page size)."""
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"]).get_container_client(_common.BUCKET)

    def listing() -> tuple[int, int]:
        pages = keys = 0
        for page in container.list_blobs(name_starts_with=prefix).by_page():
            pages, keys = pages + 1, keys + sum(1 for _ in page)
        return pages, keys

    return listing


def count(store, fn) -> tuple[int, int, str]:
    """Every request the store's client sends (retries included), on its HTTP session."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from azure_requests import RequestLog, kind, object_gets

    with RequestLog(store.storage).measure() as calls:
        fn(store)
    return len(calls), len(object_gets(calls)), _common.tally(kind(*c) for c in calls)


if __name__ == "__main__":
    sys.exit(
        _common.main(
            __doc__, name="azure", scheme="azure", server=server, environment=environment, create_bucket=create_bucket, raw=raw,
            raw_list=raw_list, count=count,
            how="every attempt, counted on the store's HTTP session",
            server_name="Azurite", raw_name="raw SDK", raw_calls=("upload_blob", "download_blob"),
            target="target <= 1.2x",
        )
    )  # fmt: skip

"""GCS backend benchmark against fake-gcs-server on 127.0.0.1, each figure next to the raw SDK in the same run.

    pip install -e . -e 'plugins/modelstore-gcs[test]'
    python bench/gcs_bench.py [--big-mb 400] [--versions 1000] [--repeat 1]

- upload and download of a ``--big-mb`` artifact through the store vs google-cloud-storage's
  ``upload_from_filename`` (same chunk_size) / ``download_to_filename``. Each run is a fresh process,
  so its peak RSS (VmHWM) is its own.
- HTTP requests (every attempt, counted on the client's HTTP session) at ``--versions`` versions:
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

TESTS = Path(__file__).resolve().parents[1] / "plugins" / "modelstore-gcs" / "tests"
CHUNK = 32 << 20  # the store's default resumable chunk_size


def raw(op: str, url: str, path: str) -> None:
    from google.cloud import storage

    bucket = storage.Client().bucket(_common.BUCKET)
    blob = bucket.blob(url.split("/", 3)[3] + "/raw.bin", chunk_size=CHUNK)
    if op == "raw-upload":
        blob.upload_from_filename(path)
    else:
        blob.download_to_filename(path)


def server(work: Path):
    """fake-gcs-server, started as the plugin's tests start it (``tests/gcs_servers.py``)."""
    sys.path.insert(0, str(TESTS))
    from gcs_servers import FakeGCSServer

    return FakeGCSServer(work / "fake-gcs.log")


def prepare(endpoint: str) -> None:
    os.environ.update(STORAGE_EMULATOR_HOST=endpoint, GOOGLE_CLOUD_PROJECT="bench")
    os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    from google.cloud import storage

    storage.Client().create_bucket(_common.BUCKET)


def count(store, fn) -> tuple[int, int, str]:
    """Every request the store's client sends (retries included), on its HTTP session."""
    calls: list[tuple[str, str]] = []
    session = store.storage.client._http
    send = session.request

    def request(method, url, *args, **kwargs):
        calls.append((method, url))
        return send(method, url, *args, **kwargs)

    session.request = request
    fn(store)
    object_gets = sum(1 for m, u in calls if m == "GET" and "alt=media" in u and "objects%2Fsha256" in u)

    def kind(method: str, url: str) -> str:
        path = url.split("?")[0]
        what = "media" if "alt=media" in url else "upload" if "/upload/" in url else "list" if path.endswith("/o") else "object"
        return f"{method} {what}"

    return len(calls), object_gets, _common.tally(kind(m, u) for m, u in calls)


if __name__ == "__main__":
    sys.exit(
        _common.main(
            __doc__,
            name="gcs",
            scheme="gs",
            server=server,
            prepare=prepare,
            raw=raw,
            count=count,
            how="every attempt, counted on the client's HTTP session",
            server_name="fake-gcs-server",
            raw_name="raw SDK",
            raw_calls=("upload_from_filename", "download_to_filename"),
        )
    )

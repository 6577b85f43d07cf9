"""A listing whose entries lack what a listing must hold is a StorageError naming the entry, never an
``ObjectInfo`` with holes or an uncaught ``KeyError``: the backend reads the listing's JSON itself
(no ``Blob`` per object), so it checks each entry itself. The server is a local HTTP server that
answers every objects.list with the entries the test gives it."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from modelstore_gcs.storage import GCSStorage

from modelstore_core import StorageError

GOOD = {"name": "p/domains/churn/latest.json", "size": "12", "updated": "2026-12-06T09:03:12.123Z"}


@pytest.fixture
def listing_server():
    """``(endpoint, entries)``: each objects.list answers ``entries`` (a list the test fills)."""
    entries: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = json.dumps({"kind": "storage#objects", "items": entries}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", entries
    server.shutdown()
    server.server_close()


def storage(endpoint: str) -> GCSStorage:
    return GCSStorage.from_url("gs://bucket/p", endpoint=endpoint, anonymous=True, project="p", retry_deadline=0)


def test_a_well_formed_entry_is_listed(listing_server):
    endpoint, entries = listing_server
    entries.append(GOOD)
    [info] = storage(endpoint).list("domains/")
    assert (info.key, info.size, info.modified) == ("domains/churn/latest.json", 12, datetime(2026, 12, 6, 9, 3, 12, 123000, timezone.utc))


@pytest.mark.parametrize(
    "entry",
    [
        {k: v for k, v in GOOD.items() if k != "size"},
        {k: v for k, v in GOOD.items() if k != "updated"},
        {k: v for k, v in GOOD.items() if k != "name"},
        {**GOOD, "size": "twelve"},
        {**GOOD, "updated": "yesterday"},
        {**GOOD, "updated": 5},
        {**GOOD, "name": ["p/domains/churn/latest.json"]},
    ],
    ids=["no-size", "no-updated", "no-name", "size-not-a-number", "updated-not-a-time", "updated-not-a-string", "name-not-a-string"],
)
def test_a_malformed_entry_is_a_storage_error_naming_it(listing_server, entry):
    endpoint, entries = listing_server
    entries.extend([GOOD, entry])
    with pytest.raises(StorageError, match="the GCS server listed an object") as err:
        list(storage(endpoint).list("domains/"))
    assert "churn" in str(err.value) or "size" in str(err.value)

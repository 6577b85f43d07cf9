"""The web view over an S3 store (moto's server on 127.0.0.1): every HTTP request the store's
client sends is counted, so each page's cost is the real number of requests to the bucket."""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from urllib.parse import unquote, urlsplit

import pytest

from modelstore_core import ModelStore
from modelstore_core.testing.faults import ServerProcess

BUCKET = "web-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_store(tmp_path_factory):
    """A store in a bucket of moto's S3 server: two domains, three versions of one, raw files."""
    root = tmp_path_factory.mktemp("s3")
    server = ServerProcess(lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", port], root / "moto.log").start()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
            mp.delenv(name, raising=False)
        for name, value in {**CREDENTIALS, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}.items():
            mp.setenv(name, value)
        import boto3

        boto3.client("s3", endpoint_url=server.endpoint).create_bucket(Bucket=BUCKET)
        store = ModelStore(f"s3://{BUCKET}/models", endpoint_url=server.endpoint, cache_dir=root / "cache")
        src = root / "src"
        src.mkdir()
        for n, auc in enumerate([0.81, 0.87, 0.84], start=1):
            (src / "model.bin").write_bytes(os.urandom(4000 + n))
            store.upload("churn", files=[src / "model.bin"], tags={"run": str(n)}, metrics={"auc": auc})
        store.upload("fraud", files=[src / "model.bin"])
        store.set_state("churn", 2, "production")
        yield store
    server.stop()


class Requests:
    """Every request the store's S3 client sends, through botocore's ``before-send`` event."""

    def __init__(self, store: ModelStore):
        self.calls: list[tuple[str, str]] = []
        store.storage.client.meta.events.register("before-send.s3", self._record)

    def _record(self, request, **kwargs):
        self.calls.append((request.method, unquote(urlsplit(request.url).path)))


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


def test_pages_cost_what_the_docs_say_on_s3(s3_store, serve):
    requests = Requests(s3_store)
    server = serve(s3_store, ttl=0)
    costs = {}
    for path in ["/", "/d/churn", "/d/churn?where=metrics.auc%3E0.82&sort=-metrics.auc", "/d/churn/v/2", "/d/churn/plot?metric=auc",
                 "/d/churn/compare?v=1&v=2&v=3"]:  # fmt: skip
        requests.calls.clear()
        status, body = get(server.url + path)
        assert status == 200, path
        costs[path] = len(requests.calls)
        assert {method for method, _ in requests.calls} <= {"GET", "HEAD"}, requests.calls  # nothing written
    assert costs["/"] <= 1 + 5 * 2
    assert costs["/d/churn"] <= 3 and costs["/d/churn?where=metrics.auc%3E0.82&sort=-metrics.auc"] <= 3
    assert costs["/d/churn/v/2"] == 2 and costs["/d/churn/plot?metric=auc"] <= 3
    assert costs["/d/churn/compare?v=1&v=2&v=3"] <= 3 + 1
    print("S3 requests per page:", costs)


def test_a_download_from_s3_is_verified_and_cached(s3_store, serve):
    requests = Requests(s3_store)
    server = serve(s3_store, ttl=0)
    entry = s3_store.info("churn", 3).files[0]
    for attempt in range(2):
        requests.calls.clear()
        status, body = get(server.url + "/d/churn/v/3/files/0")
        assert status == 200 and hashlib.sha256(body).hexdigest() == entry.sha256
        objects = [p for method, p in requests.calls if "/objects/sha256/" in p]
        assert objects == ([f"/{BUCKET}/models/objects/sha256/{entry.sha256[:2]}/{entry.sha256}"] if attempt == 0 else [])

"""The web view over HTTP, against uvicorn on 127.0.0.1: read-only, headers, the storage requests
each page costs, caching, verified downloads, and records that were tampered with."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import stat
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from modelstore_web.app import CONTENT_SECURITY_POLICY, host_name
from modelstore_web.reader import DOMAINS_PER_PAGE
from web_helpers import RequestCounter

from modelstore_core import ModelStore


def fetch(url: str, method: str = "GET", headers: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


PAGES = ["/", "/d/churn", "/d/churn?where=tags.team%3Drisk&sort=-metrics.auc", "/d/churn/v/3", "/d/churn/plot?metric=auc"]
ALL = [*PAGES, "/d/churn/compare?v=1&v=4", "/d/docs/v/1/files/0", "/static/style.css", "/d/nope", "/no/such/route"]


@pytest.mark.parametrize("path", ALL)
def test_every_response_carries_the_security_headers(server, path):
    status, headers, _ = fetch(server.url + path)
    assert status in (200, 404), path
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src" not in CONTENT_SECURITY_POLICY and CONTENT_SECURITY_POLICY.startswith("default-src 'none'")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_nothing_but_get_and_head(server, counted, method):
    counted.reset()
    for path in ("/", "/d/churn", "/d/churn/v/1", "/d/docs/v/1/files/0", "/static/style.css"):
        status, headers, _ = fetch(server.url + path, method)
        assert (status, headers["allow"]) == (405, "GET, HEAD"), path
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert counted.total == 0  # refused before any route ran

    status, headers, body = fetch(server.url + "/d/churn", "HEAD")
    assert status == 200 and body == b"" and headers["content-type"].startswith("text/html")


#: Host headers that are not ``host[:port]``, however they start ({port}: the server's).
MALFORMED_HOSTS = (
    "",
    "127.0.0.1:{port}@attacker.example",  # user info: the host is what follows the @
    "[::1]attacker.example",
    "[::1]:{port}@attacker.example",
    "localhost:{port}/attacker.example",
    "localhost:{port}:{port}",
    "localhost:port",
    "localhost:",
    "127.0.0.1 attacker.example",
    "::1",  # an IPv6 address is bracketed whole, or it is not one
    "[::1",
    "[::1%25lo]:{port}",
    "[127.0.0.1]",
)
#: Well-formed Host headers that name another host.
FOREIGN_HOSTS = ("attacker.example", "attacker.example:{port}", "127.0.0.1.attacker.example:{port}", "[::2]", "localhost.")


def test_a_foreign_host_header_is_refused(server):
    """A web page cannot reach the server through a DNS name of its own pointing at 127.0.0.1."""
    port = server.url.rsplit(":", 1)[1]
    for host in FOREIGN_HOSTS + MALFORMED_HOSTS:
        status, headers, _ = fetch(server.url + "/", headers={"Host": host.format(port=port)})
        assert status == 400, host
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "LOCALHOST", "127.0.0.1", f"[::1]:{port}"):
        assert fetch(server.url + "/", headers={"Host": host})[0] == 200, host


def test_two_host_headers_are_not_one_host():
    """uvicorn refuses such a request itself; the middleware does too, whatever server runs it."""
    from modelstore_web.app import ReadOnly

    async def app(scope, receive, send):
        raise AssertionError("the request reached the application")

    async def receive():
        return {"type": "http.request", "body": b""}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", b"127.0.0.1"), (b"host", b"attacker.example")]}
    with ThreadPoolExecutor(1) as thread:  # a loop of its own: the browser tests' may run in this thread
        thread.submit(asyncio.run, ReadOnly(app, ["127.0.0.1"])(scope, receive, send)).result()
    assert sent[0]["status"] == 400


@pytest.mark.parametrize(
    "header, host",
    [
        ("localhost:8000", "localhost"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("Example.COM", "example.com"),
        *((header.format(port=8000), None) for header in MALFORMED_HOSTS),
    ],
)
def test_host_names_are_read_from_the_header(header, host):
    assert host_name(header) == host


def test_storage_requests_per_page_are_bounded_and_nothing_is_written(server, counted, demo):
    """The costs documented in modelstore_web.reader, measured on every page (caching off)."""
    costs = {}
    for path in [*PAGES, "/d/churn/compare?v=1&v=4&v=5", "/d/docs/v/1/files/1"]:
        counted.reset()
        status, _, _ = fetch(server.url + path)
        assert status == 200, path
        costs[path] = counted.total
    domains = len(demo.store.list_domains())
    assert domains <= DOMAINS_PER_PAGE
    # the listing of domains/, then per domain: latest (2), its record, states.json (and a listing when it has none)
    assert costs["/"] <= 1 + 5 * domains
    assert costs["/d/churn"] <= 3  # find: a listing and the summary; states.json
    assert costs["/d/churn?where=tags.team%3Drisk&sort=-metrics.auc"] <= 3
    assert costs["/d/churn/v/3"] == 2  # the record, states.json
    assert costs["/d/churn/plot?metric=auc"] <= 3
    assert costs["/d/churn/compare?v=1&v=4&v=5"] <= 3 + 1  # a record each, states.json
    assert costs["/d/docs/v/1/files/1"] <= 1 + 2  # the record, then each of the version's objects
    assert counted.writes == 0, counted.counts
    print("storage requests per page:", json.dumps(costs))


def test_pages_are_cached_for_ttl_seconds(demo, serve):
    other = ModelStore(demo.store.url, cache_dir=demo.root / "cache-ttl")
    counter = RequestCounter(other)
    server = serve(other, ttl=3600)  # far longer than the two rounds take on any machine
    for path in PAGES:
        assert fetch(server.url + path)[0] == 200
    first = counter.total
    for path in PAGES:
        assert fetch(server.url + path)[0] == 200
    assert first > 0 and counter.total == first  # the second round read nothing
    assert fetch(server.url + "/d/nope")[0] == 404
    missing = counter.total
    assert fetch(server.url + "/d/nope")[0] == 404 and counter.total == missing  # nor does a miss twice


# --- downloads ------------------------------------------------------------------------------


@pytest.fixture
def small_store(tmp_path) -> ModelStore:
    src = tmp_path / "src"
    (src / "weights").mkdir(parents=True)
    (src / "weights" / "w.bin").write_bytes(os.urandom(20000))
    (src / "config.json").write_text('{"layers": 3}')
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.upload("m", files=[src / "weights", src / "config.json"])
    return store


def object_path(store: ModelStore, sha256: str) -> Path:
    return Path(store.url.removeprefix("file://")) / "objects" / "sha256" / sha256[:2] / sha256


def test_download_by_index_or_recorded_path_only(small_store, serve):
    server = serve(small_store)
    v = small_store.info("m", 1)
    for i, entry in enumerate(v.files):
        for url in (f"/d/m/v/1/files/{i}", f"/d/m/v/1/file?path={entry.path}"):
            status, headers, body = fetch(server.url + url)
            assert status == 200, url
            assert hashlib.sha256(body).hexdigest() == entry.sha256 == headers["x-sha256"]
            assert headers["content-type"] == "application/octet-stream"
            assert headers["content-disposition"].startswith("attachment;")
    for url in (
        "/d/m/v/1/files/2",
        "/d/m/v/1/file?path=../../../etc/passwd",
        "/d/m/v/1/file?path=/etc/passwd",
        "/d/m/v/1/file?path=weights",
        "/d/m/v/1/file?path=objects/sha256",
        f"/d/m/v/1/file?path={v.files[0].sha256}",
        "/d/m/v/2/files/0",
    ):
        status, _, body = fetch(server.url + url)
        assert status == 404, url
        assert b"root:" not in body


def test_a_corrupted_object_is_refused(small_store, serve):
    server = serve(small_store)
    files = small_store.info("m", 1).files
    index, entry = next((i, f) for i, f in enumerate(files) if f.path == "weights/w.bin")
    assert fetch(server.url + "/d/m/v/1/file?path=weights/w.bin")[0] == 200  # the cache view holds it now

    obj = object_path(small_store, entry.sha256)
    obj.chmod(stat.S_IWUSR | stat.S_IRUSR)
    data = bytearray(obj.read_bytes())
    data[100] ^= 0xFF
    obj.write_bytes(bytes(data))  # the cached view is a hard link to it: damaged as well

    status, headers, body = fetch(server.url + "/d/m/v/1/file?path=weights/w.bin")
    assert status == 502
    assert headers["content-type"].startswith("text/html")
    assert b"weights/w.bin" in body and b"sha256" in body  # says which file failed, and why
    assert bytes(data[:1000]) not in body
    # and nothing of it comes through the other route either, while the version's other files,
    # intact, still download (each file is verified on its own)
    assert fetch(server.url + f"/d/m/v/1/files/{index}")[0] == 502
    intact = next(i for i, f in enumerate(files) if f.sha256 != entry.sha256)
    assert fetch(server.url + f"/d/m/v/1/files/{intact}")[0] == 200


# --- records someone edited -----------------------------------------------------------------


def test_a_tampered_record_is_shown_escaped_or_refused(small_store, serve):
    root = Path(small_store.url.removeprefix("file://"))
    record_path = root / "domains" / "m" / "versions" / f"{1:010d}.json"
    record = json.loads(record_path.read_text())
    record["git"] = {"commit": 12345, "branch": "<script>alert(1)</script>", "dirty": "yes", "remote": "<b>x</b>"}
    record["runtime"] = ["not", "an", "object"]
    record["dependencies"] = {"<i>pkg</i>": "1.0"}
    record["evil"] = {"<svg onload=alert(1)>": "</td></tr></table><script>alert(2)</script>"}
    record_path.chmod(0o644)
    record_path.write_text(json.dumps(record))

    server = serve(small_store)
    status, _, body = fetch(server.url + "/d/m/v/1")
    assert status == 200
    html = body.decode()
    assert "<script" not in html and "<svg onload" not in html and "<i>pkg" not in html and "<b>x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;svg onload=alert(1)&gt;" in html

    record_path.write_text("{not json")
    status, _, body = fetch(server.url + "/d/m/v/1")
    assert status == 502 and b"not valid JSON" in body
    status, _, body = fetch(server.url + "/d/m")
    assert status == 200  # the listing says what is wrong and goes on


def test_parents_link_and_the_model_card_is_shown_escaped(small_store, serve, tmp_path):
    """A version's parents link to their pages; its card's sections are shown as text, and its
    README.md (``modelstore card``) is served as plain text; hostile card text stays text."""
    (tmp_path / "w2.bin").write_bytes(os.urandom(100))
    card = {"description": "Fine-tuned.\n<script>alert(1)</script>", "intended_use": "[x](javascript:alert(1))", "license": "mit"}
    small_store.upload("m", files=[tmp_path / "w2.bin"], parents=["m:1"], card=card)
    server = serve(small_store)
    status, _, body = fetch(server.url + "/d/m/v/2")
    html = body.decode()
    assert status == 200
    assert re.search(r'<td id="parents"><a href="/d/m/v/1">m:1</a></td>', html), html
    assert '<section id="card">' in html and '<a href="/d/m/v/2/card">README.md</a>' in html
    assert "Fine-tuned.\n&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert '<a href="javascript' not in html
    status, headers, body = fetch(server.url + "/d/m/v/2/card")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert body.decode() == small_store.card("m", 2)
    assert "&lt;script&gt;" in body.decode() and "\\[x\\](javascript:alert(1))" in body.decode()
    status, _, body = fetch(server.url + "/d/m/v/1")
    assert status == 200 and "no card text recorded" in body.decode() and 'id="parents"' not in body.decode()


# --- a trust policy ---------------------------------------------------------------------------


def test_under_a_trust_policy_the_ranking_is_by_signed_data(tmp_path, serve):
    """A summary entry edited in the bucket (its metric raised, its checksum recomputed, its record
    untouched) would make version 1 the winner; a view that trusts the signer ranks by what it signed."""
    import re

    from modelstore_core.protocol import keys
    from modelstore_core.protocol.summary import SummaryEntry, parse_segment, segment_document
    from modelstore_core.testing.tamper_contract import make_key_pair, put

    private, public = make_key_pair(tmp_path, "release")
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(1000))
    writer = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache-writer", signer=private)
    for auc in (0.8, 0.95, 0.9):
        writer.upload("m", files=[model], metrics={"auc": auc})
    key = keys.summary_key("m", 1)
    entries = parse_segment(writer.storage.read(key)[0], key, "m", 1)
    forged = SummaryEntry(**{**entries[1].__dict__, "values": {**entries[1].values, "metrics": {"auc": 0.99}}})
    put(writer, key, segment_document("m", 1, {**entries, 1: forged}))

    def ranking(store: ModelStore) -> list[int]:
        status, _, body = fetch(serve(store).url + "/d/m?sort=-metrics.auc")
        assert status == 200
        return [int(n) for n in re.findall(rb'href="/d/m/v/(\d+)"', body)]

    assert ranking(ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache-open"))[0] == 1  # no policy: the summary as stored
    trusting = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache-trusting", trusted_keys=[public])
    assert ranking(trusting) == [2, 3, 1]


def test_the_plot_of_extreme_finite_metrics_is_drawn(tmp_path, serve):
    """Finite metrics at the float's limits (their differences overflow) plot like any others."""
    src = tmp_path / "weights.bin"
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    for value in [1.7e308, 5e-324, -1.7e308, 1e-20, 3e-20]:
        src.write_bytes(os.urandom(100))
        store.upload("extremes", files=[src], metrics={"loss": value})
    server = serve(store)
    status, _, body = fetch(server.url + "/d/extremes/plot?metric=loss")
    assert status == 200
    html = body.decode()
    ys = [float(y) for y in re.findall(r'<circle cx="[0-9.]+" cy="([^"]+)"', html)]
    assert len(ys) == 5 and all(16 <= y <= 280 for y in ys)  # every point inside the plot area
    assert ys[0] < ys[1] < ys[2] and "1.79769e+308" in html


def test_an_inflated_record_is_refused_at_its_size_limit(small_store, serve):
    """A record padded with tags past 16 MiB: its page read, parsed and rendered all of it (30 s
    for 85 MB); now refused after the limit, and the domain's listing says so and goes on."""
    from modelstore_core.protocol import limits

    root = Path(small_store.url.removeprefix("file://"))
    record_path = root / "domains" / "m" / "versions" / f"{1:010d}.json"
    record = json.loads(record_path.read_text())
    record["tags"] = {f"t{i:06d}": "x" * 80 for i in range(limits.RECORD_BYTES // 90 + 1000)}
    record_path.chmod(0o644)
    record_path.write_text(json.dumps(record))
    server = serve(small_store)
    status, _, body = fetch(server.url + "/d/m/v/1")
    assert status == 502 and b"16777216 byte limit for a version record" in body and len(body) < 100_000
    status, _, body = fetch(server.url + "/d/m")
    assert status == 200 and b"byte limit" in body

"""What S3 test servers do with conditional writes, shown with the plugin's own primitives.

The core will prove, on a store's first write, that the server honours ``If-None-Match: *``
(create-if-absent) and ``If-Match: <etag>`` (compare-and-swap) before trusting it; these tests
document the servers that such a probe must refuse:

=============  ================  ================  ===================================================
server         If-None-Match: *  If-Match: <etag>
=============  ================  ================  ===================================================
moto (server)  honoured          honoured          the plugin's reference test server
s3rver 3.7.1   ignored           ignored           both writes always succeed
localbucket    honoured          ignored           a CAS with a stale token overwrites
=============  ================  ================  ===================================================

Each row is an explicit expectation: if a server starts honouring a header, its test fails and the
table (and the core's probe tests) must be updated.
"""

from __future__ import annotations

import uuid

import pytest
from conftest import BUCKET
from modelstore_s3.storage import S3Storage
from s3_compat_servers import LocalBucket, S3rver, Unavailable

COMPAT_BUCKET = "conditional-writes"

#: server -> (honours If-None-Match: *, honours If-Match: <etag>)
EXPECTED = {
    "moto": (True, True),
    "s3rver": (False, False),
    "localbucket": (True, False),
}


@pytest.fixture(scope="module")
def s3rver(tmp_path_factory):
    root = tmp_path_factory.mktemp("s3rver")
    try:
        server = S3rver(root / "data", COMPAT_BUCKET, root / "s3rver.log").start()
    except (Unavailable, RuntimeError) as exc:
        pytest.skip(f"s3rver unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def localbucket(tmp_path_factory):
    root = tmp_path_factory.mktemp("localbucket")
    try:
        server = LocalBucket(root / "data", root / "localbucket.log").start()
    except (Unavailable, RuntimeError) as exc:
        pytest.skip(f"localbucket unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=list(EXPECTED))
def server_storage(request):
    """(server name, an S3Storage on a fresh prefix of that server)."""
    name = request.param
    prefix = uuid.uuid4().hex
    if name == "moto":
        server = request.getfixturevalue("moto_server")
        storage = S3Storage(BUCKET, prefix + "/")
    else:
        server = request.getfixturevalue(name)
        storage = S3Storage(
            COMPAT_BUCKET, prefix + "/", endpoint_url=server.endpoint_with_credentials, region="us-east-1",
            request_checksum_calculation="when_required", max_attempts=1, timeout=10,
        )
        if name == "localbucket":
            try:
                storage.client.create_bucket(Bucket=COMPAT_BUCKET)
            except storage.client.exceptions.BucketAlreadyOwnedByYou:
                pass
    yield name, storage
    storage.close()


def test_plain_round_trip(server_storage):
    """The servers are otherwise usable: a write and a read back."""
    _, storage = server_storage
    assert storage.put_if_absent("k", b"one") is True
    assert storage.read("k")[0] == b"one"


def test_create_if_absent(server_storage):
    name, storage = server_storage
    honoured, _ = EXPECTED[name]
    assert storage.put_if_absent("claim", b"first") is True
    second = storage.put_if_absent("claim", b"second")
    assert second is (not honoured), f"{name}: a second If-None-Match: * write returned {second}"
    assert storage.read("claim")[0] == (b"first" if honoured else b"second")


def test_compare_and_swap_with_a_wrong_token(server_storage):
    name, storage = server_storage
    _, honoured = EXPECTED[name]
    assert storage.put_if_absent("hint", b"v1") is True
    data, token = storage.read("hint")
    assert data == b"v1" and token
    assert storage.compare_and_swap("hint", b"v2", token) is True  # the right token
    stale = storage.compare_and_swap("hint", b"v3", token)  # the token of v1: wrong now
    assert stale is (not honoured), f"{name}: If-Match with a stale ETag returned {stale}"
    assert storage.read("hint")[0] == (b"v2" if honoured else b"v3")

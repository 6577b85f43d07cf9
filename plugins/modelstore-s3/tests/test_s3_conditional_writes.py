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
table must be updated. The last tests show the core's proof at work through ``ModelStore``: a store
on s3rver or localbucket refuses to write (``UnsafeServerError``) unless opened ``single_writer=True``.
"""

from __future__ import annotations

import uuid

import pytest
from conftest import BUCKET
from modelstore_s3.storage import S3Storage
from s3_compat_servers import S3RVER_CREDENTIALS, LocalBucket, S3rver, Unavailable
from s3_servers import MotoServer

from modelstore_core import ModelStore, UnsafeServerError
from modelstore_core.protocol.probe import forget_verdicts

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
        pytest.fail(f"s3rver unavailable: {exc}")  # npm is part of this project's machines: never skipped
    yield server
    server.stop()


@pytest.fixture(scope="module")
def localbucket(tmp_path_factory):
    root = tmp_path_factory.mktemp("localbucket")
    try:
        server = LocalBucket(root / "data", root / "localbucket.log").start()
    except (Unavailable, RuntimeError) as exc:
        pytest.fail(f"localbucket unavailable: {exc}")  # in the test extra: never skipped
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
            COMPAT_BUCKET,
            prefix + "/",
            endpoint_url=server.endpoint_with_credentials,
            region="us-east-1",
            request_checksum_calculation="when_required",
            max_attempts=1,
            timeout=10,
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


# --- the core's proof, through ModelStore --------------------------------------------------------------

#: server -> the features the probe must find missing
MISSING = {"s3rver": ("create-if-absent", "compare-and-swap"), "localbucket": ("compare-and-swap",)}


@pytest.fixture(params=list(MISSING))
def unsafe_store_args(request, tmp_path):
    """(server name, ModelStore arguments for a fresh store on it)."""
    name = request.param
    server = request.getfixturevalue(name)
    options = {
        "endpoint_url": server.endpoint_with_credentials,
        "region": "us-east-1",
        "request_checksum_calculation": "when_required",
        "timeout": 10,
    }
    if name == "localbucket":
        storage = S3Storage(COMPAT_BUCKET, "", **options)
        try:
            storage.client.create_bucket(Bucket=COMPAT_BUCKET)
        except storage.client.exceptions.BucketAlreadyOwnedByYou:
            pass
    forget_verdicts()
    yield name, f"s3://{COMPAT_BUCKET}/{uuid.uuid4().hex}", {**options, "cache_dir": tmp_path / "cache"}
    forget_verdicts()


def test_a_server_ignoring_conditional_writes_is_refused_before_anything_is_written(unsafe_store_args, tmp_path):
    name, url, options = unsafe_store_args
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    store = ModelStore(url, **options)
    with pytest.raises(UnsafeServerError) as err:
        store.upload("d", files=[model])
    assert err.value.missing == MISSING[name] and "single_writer=True" in str(err.value)
    assert store.list_domains() == [] and list(store.storage.list("")) == []  # not even the probe key is left

    single = ModelStore(url, single_writer=True, **options)
    with pytest.warns(RuntimeWarning, match="conditional writes are not honoured"):
        v = single.upload("d", files=[model])
    assert single.load("d", version=v.version)[0].read_bytes() == b"weights"


def test_a_verdict_does_not_outlive_the_server_that_gave_it(tmp_path):
    """moto passes the probe; then s3rver, which ignores conditional writes, answers on the same port.
    A new process must not take moto's verdict for s3rver's: it probes again and refuses to write."""
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    moto = MotoServer(tmp_path / "moto.log")
    s3rver = S3rver(tmp_path / "s3rver-data", COMPAT_BUCKET, tmp_path / "s3rver.log")
    s3rver.port = moto.port
    options = {
        "endpoint_url": f"http://{S3RVER_CREDENTIALS[0]}:{S3RVER_CREDENTIALS[1]}@127.0.0.1:{moto.port}",  # moto takes any key pair
        "region": "us-east-1",
        "request_checksum_calculation": "when_required",
        "timeout": 10,
        "cache_dir": tmp_path / "cache",
    }
    url = f"s3://{COMPAT_BUCKET}/{uuid.uuid4().hex}"
    forget_verdicts()
    with moto:
        storage = S3Storage(COMPAT_BUCKET, "", **{k: v for k, v in options.items() if k != "cache_dir"})
        storage.client.create_bucket(Bucket=COMPAT_BUCKET)
        storage.close()
        assert ModelStore(url, **options).upload("d", files=[model]).version == 1  # the probe passed
    forget_verdicts()  # as a new process would
    with s3rver:
        with pytest.raises(UnsafeServerError) as err:
            ModelStore(url, **options).upload("d", files=[model])
    assert err.value.missing == ("create-if-absent", "compare-and-swap")
    forget_verdicts()

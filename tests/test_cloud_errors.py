"""CloudErrors: one SDK's exceptions as StorageError messages that say what to do and hold no secret.
The "SDK" here is the standard library's sockets, against real sockets on 127.0.0.1 (the cloud
plugins run the same helper against moto, fake-gcs-server and Azurite)."""

from __future__ import annotations

import dataclasses
import socket
import traceback

import pytest

from modelstore_core.errors import StorageError
from modelstore_core.plugin_api import BucketURL, CloudErrors, DeadlineExceeded, KeyNotFoundError, scrub

SECRET = "s3cr3t-token-value"


class Refused(OSError):
    """What a server answering 403 looks like to this toy SDK."""


SOCKETS = CloudErrors(
    service="Toy",
    container="bucket",
    refused_hint="(TOY_TOKEN) and the bucket's grants",
    endpoint_hint="TOY_ENDPOINT, endpoint=",
    from_sdk=lambda exc: isinstance(exc, OSError),
    missing_container=lambda exc: isinstance(exc, FileNotFoundError),
    refused=lambda exc: "403" if isinstance(exc, Refused) else None,
    timed_out=lambda exc: isinstance(exc, TimeoutError),
    unreachable=lambda exc: isinstance(exc, ConnectionRefusedError),
    answer=lambda exc: None,
)


def bound(sdk: CloudErrors = SOCKETS, endpoint: str = "http://127.0.0.1:1"):
    return sdk.bind(location=BucketURL("toy", "models", "team/"), endpoint=endpoint, timeout=0.5, scrub=lambda text: scrub(text, [SECRET]))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_endpoint_is_named_with_the_key():
    port = closed_port()
    errors = bound(endpoint=f"http://127.0.0.1:{port}")
    with pytest.raises(StorageError) as err, errors("read", "versions/d/1.json"):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    where = "toy://models/team/versions/d/1.json"
    assert str(err.value) == f"could not reach Toy at http://127.0.0.1:{port} to read {where} (after retries): ConnectionRefusedError"
    assert isinstance(err.value.__cause__, ConnectionRefusedError)  # chained: this SDK's messages hold no secret


def test_a_server_that_does_not_answer_says_how_to_allow_more_time():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()  # accepts the connection, never answers
        with pytest.raises(StorageError) as err, bound()("list"), socket.create_connection(server.getsockname(), timeout=0.2) as c:
            c.recv(1)
    message = str(err.value)
    assert message.startswith("Toy at http://127.0.0.1:1 did not answer in time to list toy://models/team (timeout 0.5 s")
    assert "(TOY_ENDPOINT, endpoint=)" in message and "--timeout SECONDS" in message
    with pytest.raises(StorageError, match=r"retries included; no time left to retry\)"), bound()("list"):
        raise DeadlineExceeded("no time left to retry")  # the backend's own deadline, whatever its SDK


def test_each_kind_of_failure_gets_its_message():
    errors = bound()
    with pytest.raises(StorageError, match=r"^Toy bucket 'models' does not exist \(endpoint http://127.0.0.1:1\)$"), errors("stat", "k"):
        raise FileNotFoundError("no such bucket")
    refused = r"^Toy refused to write toy://models/team/k \(403\); check the credentials \(TOY_TOKEN\) and the bucket's grants$"
    with pytest.raises(StorageError, match=refused), errors("write", "k"):
        raise Refused("forbidden")


def test_what_is_not_the_sdks_passes_through_and_so_do_storage_errors():
    errors = bound()
    with pytest.raises(ZeroDivisionError), errors("read", "k"):
        1 / 0  # noqa: B018 - a bug, not a storage failure: never disguised as one
    with pytest.raises(KeyNotFoundError, match="^k$"), errors("read", "k"):
        raise KeyNotFoundError("k")  # the primitive's own verdict on a missing key


@pytest.mark.parametrize("chain", [True, False])
def test_a_secret_never_reaches_the_message_and_unchained_errors_carry_nothing_of_the_sdk(chain):
    sdk = dataclasses.replace(SOCKETS, chain=chain)
    with pytest.raises(StorageError) as err, bound(sdk)("read", "k"):
        raise OSError(f"request to http://127.0.0.1:1/models/k?sig={SECRET} failed\nsecond line")
    assert str(err.value) == "Toy could not read toy://models/team/k: OSError: request to http://127.0.0.1:1/models/k?sig=*** failed"
    shown = "".join(traceback.format_exception(err.value))
    assert (SECRET in shown) is chain  # chained, the SDK's own exception (and its message) is shown too
    assert (err.value.__cause__ is None) is not chain

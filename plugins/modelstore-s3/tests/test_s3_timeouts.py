"""A frozen endpoint (accepts TCP connections, never answers) fails within the timeout, not after minutes.

Each check runs in a child process with a hard ``subprocess`` timeout, so a regression fails the test
instead of hanging the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from modelstore_core.testing.faults import HANG_TIMEOUT, FrozenServer

CHILD = r"""
import json, sys, time
import modelstore_s3.storage
from modelstore_core import ModelStore, StorageError

endpoint, options, default = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
if default is not None:
    modelstore_s3.storage.DEFAULTS["timeout"] = default  # the default path, with a default short enough to test
store = ModelStore("s3://bucket/prefix", endpoint_url=endpoint, **options)  # no request yet
start = time.monotonic()  # what the timeout bounds: the request, not building the client on a busy machine
try:
    store.list_domains()
    outcome = "returned"
except StorageError as exc:
    outcome = "StorageError: " + str(exc)
print(json.dumps({"elapsed": time.monotonic() - start, "outcome": outcome}))
"""


def _list_domains(moto_server, endpoint: str, options: dict, default: float | None) -> dict:
    env = {**os.environ, **moto_server.env}
    env.pop("AWS_ENDPOINT_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, endpoint, json.dumps(options), json.dumps(default)],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("options", "default", "timeout"),
    [
        pytest.param({"timeout": 2}, None, 2.0, id="timeout=2"),
        pytest.param({"timeout": 2, "max_attempts": 50}, None, 2.0, id="timeout=2,max_attempts=50"),
        pytest.param({}, 3.0, 3.0, id="default"),
    ],
)
def test_frozen_endpoint_fails_within_the_timeout(moto_server, options, default, timeout):
    with FrozenServer() as frozen:
        result = _list_domains(moto_server, frozen.endpoint, options, default)
        assert frozen.connections >= 1  # it did reach the frozen server
    assert result["outcome"].startswith(f"StorageError: S3 at {frozen.endpoint} did not answer in time to list")
    assert f"timeout {timeout:g} s" in result["outcome"]
    assert "--timeout" in result["outcome"] and "endpoint" in result["outcome"]
    assert timeout * 0.9 <= result["elapsed"] < 3 * timeout, result


def test_cli_timeout_option_bounds_ls(moto_server, tmp_path):
    """The reported case: `modelstore ls` on a frozen endpoint, with --timeout."""
    script = os.path.join(os.path.dirname(sys.executable), "modelstore")
    with FrozenServer() as frozen:
        env = {**os.environ, **moto_server.env, "AWS_ENDPOINT_URL": frozen.endpoint, "MODELSTORE_CACHE_DIR": str(tmp_path)}
        result = subprocess.run(
            [script, "--store", "s3://bucket/prefix", "--timeout", "2", "ls"],
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_TIMEOUT,
        )
    assert result.returncode != 0
    assert "did not answer in time" in result.stderr and "--timeout" in result.stderr, result.stderr
    assert "timeout 2 s" in result.stderr, result.stderr  # the option's bound gave up, not the default's


def test_timeouts_follow_the_option(moto_server, s3_url):
    from modelstore_core import ModelStore

    store = ModelStore(s3_url, timeout=7)
    config = store.storage.client.meta.config
    assert (store.storage.timeout, config.connect_timeout, config.read_timeout) == (7.0, 5.0, 7.0)
    store = ModelStore(s3_url, timeout=2)
    assert (store.storage.client.meta.config.connect_timeout, store.storage.client.meta.config.read_timeout) == (2.0, 2.0)
    store = ModelStore(s3_url)
    assert (store.storage.timeout, store.storage.client.meta.config.read_timeout) == (60.0, 60.0)
    assert store.list_domains() == []  # the deadline hooks leave normal requests alone

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
import modelstore_gcs.storage
from modelstore_core import ModelStore, StorageError

endpoint, options, default = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
if default is not None:
    modelstore_gcs.storage.DEFAULTS["timeout"] = default  # the default path, with a default short enough to test
store = ModelStore("gs://bucket/prefix", endpoint=endpoint, anonymous=True, project="p", **options)  # no request yet
start = time.monotonic()  # what the timeout bounds: the request, not building the client on a busy machine
try:
    store.list_domains()
    outcome = "returned"
except StorageError as exc:
    outcome = "StorageError: " + str(exc)
print(json.dumps({"elapsed": time.monotonic() - start, "outcome": outcome}))
"""


@pytest.mark.parametrize(
    ("options", "default", "timeout"),
    [pytest.param({"timeout": 2}, None, 2.0, id="timeout=2"), pytest.param({}, 3.0, 3.0, id="default")],
)
def test_frozen_endpoint_fails_within_the_timeout(options, default, timeout):
    env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")}
    with FrozenServer() as frozen:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, frozen.endpoint, json.dumps(options), json.dumps(default)],
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_TIMEOUT,
        )
        assert frozen.connections >= 1
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["outcome"].startswith(f"StorageError: GCS at {frozen.endpoint}"), outcome
    assert "did not answer in time to list" in outcome["outcome"] and "--timeout" in outcome["outcome"]
    assert timeout * 0.9 <= outcome["elapsed"] < 3 * timeout, outcome


def test_timeouts_follow_the_option(gcs_server, gs_url):
    from modelstore_core import ModelStore

    storage = ModelStore(gs_url, timeout=7).storage
    assert (storage.retry_deadline, storage.http_timeout) == (7.0, (5.0, 7.0))
    storage = ModelStore(gs_url, timeout=2, retry_deadline=9).storage
    assert (storage.retry_deadline, storage.http_timeout) == (9.0, (2.0, 2.0))
    store = ModelStore(gs_url)
    assert (store.storage.retry_deadline, store.storage.http_timeout) == (60.0, (5.0, 60.0))
    assert store.list_domains() == []

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
from azure_servers import ACCOUNT, KEY

from modelstore_core.testing.faults import HANG_TIMEOUT, FrozenServer

CHILD = r"""
import json, sys, time
import modelstore_azure.storage
from modelstore_core import ModelStore, StorageError

endpoint, options, default = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
if default is not None:
    modelstore_azure.storage.DEFAULTS["timeout"] = default  # the default path, with a default short enough to test
store = ModelStore("azure://container/prefix", endpoint=endpoint, **options)  # no request yet
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
    [
        pytest.param({"timeout": 2, "max_attempts": 50}, None, 2.0, id="timeout=2,max_attempts=50"),
        pytest.param({}, 3.0, 3.0, id="default"),
    ],
)
def test_frozen_endpoint_fails_within_the_timeout(options, default, timeout):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env.update(AZURE_STORAGE_ACCOUNT=ACCOUNT, AZURE_STORAGE_KEY=KEY)
    with FrozenServer() as frozen:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, frozen.endpoint, json.dumps(options), json.dumps(default)],
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_TIMEOUT,
        )
        assert frozen.connections >= 1  # it did reach the frozen server
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["outcome"].startswith(f"StorageError: Azure at {frozen.endpoint}/{ACCOUNT} did not answer in time to list"), outcome
    assert f"timeout {timeout:g} s" in outcome["outcome"] and "--timeout" in outcome["outcome"]
    assert KEY not in outcome["outcome"]
    assert timeout * 0.9 <= outcome["elapsed"] < 3 * timeout, outcome


def test_cli_timeout_option_bounds_ls(azurite, tmp_path):
    """`modelstore ls` on a frozen endpoint, with --timeout."""
    script = os.path.join(os.path.dirname(sys.executable), "modelstore")
    with FrozenServer() as frozen:
        frozen_cs = azurite.connection_string.replace(azurite.account_url, f"{frozen.endpoint}/{ACCOUNT}")
        env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": frozen_cs, "MODELSTORE_CACHE_DIR": str(tmp_path)}
        result = subprocess.run(
            [script, "--store", "azure://container/prefix", "--timeout", "2", "ls"],
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_TIMEOUT,
        )
    assert result.returncode != 0
    assert "did not answer in time" in result.stderr and "--timeout" in result.stderr, result.stderr
    assert "timeout 2 s" in result.stderr, result.stderr  # the option's bound gave up, not the default's
    assert KEY not in result.stderr


def test_timeouts_follow_the_option(az_url):
    from modelstore_core import ModelStore

    storage = ModelStore(az_url, timeout=7).storage
    assert (storage.timeout, storage.connect_timeout, storage.read_timeout) == (7.0, 5.0, 7.0)
    storage = ModelStore(az_url, timeout=2).storage
    assert (storage.connect_timeout, storage.read_timeout) == (2.0, 2.0)
    store = ModelStore(az_url)
    assert (store.storage.timeout, store.storage.read_timeout) == (60.0, 60.0)
    assert store.list_domains() == []  # the deadline policy leaves normal requests alone

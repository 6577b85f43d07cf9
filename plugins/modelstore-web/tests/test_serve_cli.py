"""``modelstore serve`` as a user runs it: a real process, on 127.0.0.1 unless told otherwise, and
a plugin that costs nothing until the command runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from modelstore_web.cli import exposure_warning, is_loopback

from modelstore_core.testing.faults import HANG_TIMEOUT


def modelstore(*args, env=None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "modelstore_core", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def test_serve_listens_on_127_0_0_1_and_serves_the_store(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"weights")
    store = tmp_path / "store"
    upload = modelstore("upload", "churn", tmp_path / "model.bin", "--tag", "team=risk", "--store", store)
    assert upload.wait(HANG_TIMEOUT) == 0, upload.stderr.read()

    proc = modelstore("serve", "--store", store, "--port", "0", env={"MODELSTORE_CACHE_DIR": str(tmp_path / "cache")})
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"Serving file://{store} read-only at http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]
        with urllib.request.urlopen(url + "d/churn", timeout=30) as response:
            html = response.read().decode()
        assert response.status == 200 and "team" in html and "risk" in html
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(HANG_TIMEOUT) == 0
    assert proc.stderr.read() == ""  # no warning on the loopback address


def test_a_public_address_is_warned_about(tmp_path):
    """--host 0.0.0.0 prints the warning before it binds; here the port is taken, so the test never
    listens on a public address, and the bind error is one line too."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        proc = modelstore("serve", "--store", tmp_path / "store", "--host", "0.0.0.0", "--port", port)
        assert proc.wait(HANG_TIMEOUT) == 1
        lines = proc.stderr.read().splitlines()
    finally:
        holder.close()
    assert lines[0].startswith("warning: listening on 0.0.0.0: anyone who can reach this machine can read every model")
    assert lines[1].startswith(f"Error: cannot listen on 0.0.0.0 port {port}: Address already in use; choose another --port")
    assert len(lines) == 2 and proc.stdout.read() == ""


@pytest.mark.parametrize(
    "host, loopback",
    [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("example.com", False)],
)  # fmt: skip
def test_which_hosts_are_warned_about(host, loopback):
    assert is_loopback(host) is loopback
    assert (exposure_warning(host) is None) is loopback


def test_the_plugin_provides_serve_and_loads_no_web_stack_until_it_runs(tmp_path):
    code = """
import json, sys
from modelstore_core.cli.app import cli, plugin_commands
from modelstore_core.plugins import get_plugins
get_plugins()
before = sorted(m for m in ("starlette", "jinja2", "uvicorn", "modelstore_web.app") if m in sys.modules)
commands = plugin_commands(cli)
after = sorted(m for m in ("starlette", "jinja2", "uvicorn", "modelstore_web.app") if m in sys.modules)
print(json.dumps({"before": before, "after": after, "serve": commands["serve"].name}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_TIMEOUT, check=True)
    assert json.loads(out.stdout) == {"before": [], "after": [], "serve": "serve"}

    command = [sys.executable, "-m", "modelstore_core", "plugins", "--json"]
    listed = subprocess.run(command, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    [web] = [p for p in json.loads(listed.stdout)["plugins"] if p["name"] == "web"]
    assert (web["distribution"], web["commands"], web["hooks"]) == ("modelstore-web", ["serve"], ["modelstore_cli_commands"])
    helped = subprocess.run([sys.executable, "-m", "modelstore_core", "--help"], capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert "serve" in helped.stdout and "read-only web view" in helped.stdout

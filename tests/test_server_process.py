"""The kits' test server starter (``modelstore_core.testing.faults.ServerProcess``)."""

from __future__ import annotations

import socket
import sys
import urllib.request

import pytest

from modelstore_core.testing.faults import ServerExited, ServerProcess


def http_server(tmp_path) -> ServerProcess:
    return ServerProcess(lambda port: [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", port], tmp_path / "server.log")


def test_a_port_taken_before_the_server_binds_it_is_a_new_port(tmp_path):
    """Another process takes the free port first (bound, not listening: it refuses connections, as
    a port mid-bind does): the server exits, and ``start`` starts it again on another port."""
    server = http_server(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        server.port = taken.getsockname()[1]
        first = server.port
        with server:
            assert server.port != first
            with urllib.request.urlopen(f"{server.endpoint}/", timeout=30) as answer:  # noqa: S310 - 127.0.0.1
                assert answer.status == 200


def test_a_server_that_exits_every_time_is_an_error_with_its_log(tmp_path):
    server = ServerProcess(lambda port: [sys.executable, "-c", "import sys; print('no config'); sys.exit(3)"], tmp_path / "s.log")
    with pytest.raises(ServerExited, match="no config"):
        server.start()
    assert server.proc.returncode == 3

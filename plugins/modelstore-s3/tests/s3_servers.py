"""Test servers on 127.0.0.1: moto's S3 server (a subprocess) and a fault-injecting HTTP proxy."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"test server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"test server did not listen on 127.0.0.1:{port} within {timeout}s")


class MotoServer:
    """``python -m moto.server`` on a free port, in its own process."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        cmd = [sys.executable, __file__, "-H", "127.0.0.1", "-p", str(self.port)]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, self.log)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def serialized_conditional_writes() -> None:
    """moto checks a conditional write's precondition, then writes, without a lock; S3 does both
    atomically. Serialize the requests that carry ``If-None-Match``/``If-Match`` so that moto's server
    has S3's semantics under concurrent writers (only those requests wait for each other)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lock = threading.Lock()
    dispatch = DomainDispatcherApplication.__call__

    def __call__(self, environ, start_response):
        if environ.get("HTTP_IF_NONE_MATCH") or environ.get("HTTP_IF_MATCH"):
            with lock:
                return dispatch(self, environ, start_response)
        return dispatch(self, environ, start_response)

    DomainDispatcherApplication.__call__ = __call__


if __name__ == "__main__":  # python s3_servers.py -H 127.0.0.1 -p PORT: moto's server, as `python -m moto.server`
    from moto import server

    serialized_conditional_writes()
    server.main(sys.argv[1:])

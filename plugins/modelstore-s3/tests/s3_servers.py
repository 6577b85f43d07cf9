"""Test servers on 127.0.0.1: moto's S3 server (a subprocess) and a fault-injecting HTTP proxy."""

from __future__ import annotations

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


# --- fault injection ---------------------------------------------------------------

S3_ERRORS = {
    500: b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>',
    503: b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>',
}
REASONS = {500: "Internal Server Error", 503: "Service Unavailable"}
ACTIONS = ("500", "503", "drop", "drop-after", "cut")


class FaultProxy:
    """An HTTP/1.1 forwarder on 127.0.0.1 in front of a test server, failing the requests it is told to.

    ``decide(method, target, headers, body)`` names what happens to each request:

    - ``None``: forwarded, answered;
    - ``"500"`` / ``"503"``: answered with that status (an S3 error body), never forwarded;
    - ``"drop"``: the connection is closed before forwarding;
    - ``"drop-after"``: forwarded (it takes effect), then the connection is closed unanswered;
    - ``"cut"``: forwarded, then the connection is closed halfway through the answer's body;
    - ``"hold"``: held until :attr:`release` is set, then dropped (for killing a client mid-request).

    ``log`` records ``(method, target, action)`` for every request.
    """

    def __init__(self, upstream_port: int, decide=None, errors: dict[int, bytes] | None = None):
        self.upstream_port = upstream_port
        self.decide = decide or (lambda method, target, headers, body: None)
        self.errors = errors or S3_ERRORS
        self.log: list[tuple[str, str, str | None]] = []
        self.held = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._closed = False
        self._clients: set[socket.socket] = set()
        self._acceptor: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._sock.listen(64)
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop listening and end every open connection. (``close()`` alone would not wake the
        thread blocked in ``accept()``, which could then accept on a later socket given the same fd.)"""
        self._closed = True
        self.release.set()
        for sock in [self._sock, *self._clients]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def faults(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, _, action in self.log:
            if action:
                counts[action] = counts.get(action, 0) + 1
        return counts

    # --- plumbing ------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            if self._closed:
                client.close()
                return
            with self._lock:
                self._clients.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        rfile = client.makefile("rb")
        try:
            while True:
                head = _read_head(rfile)
                if head is None or self._closed:
                    return
                method, target, _ = head[0].decode("latin-1").split(" ", 2)
                headers = _headers(head)
                if headers.get("expect", "").lower() == "100-continue":
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    head = [line for line in head if not line.lower().startswith(b"expect:")]
                body = _read_body(rfile, headers, method, response_status=None)
                with self._lock:
                    action = self.decide(method, target, headers, body)
                    self.log.append((method, target, action))
                if action in ("500", "503"):
                    status = int(action)
                    payload = self.errors.get(status, b"")
                    client.sendall(
                        f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: application/xml\r\n"
                        f"Content-Length: {len(payload)}\r\n\r\n".encode()
                        + (b"" if method == "HEAD" else payload)
                    )
                    continue
                if action == "drop":
                    return
                if action == "hold":
                    self.held.set()
                    self.release.wait()
                    return
                response_head, response_body, keep_alive = self._forward(head, body, method)
                if action == "drop-after":
                    return
                if action == "cut":
                    client.sendall(response_head + response_body[: len(response_body) // 2])
                    return
                client.sendall(response_head + response_body)
                if not keep_alive:
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._clients.discard(client)
            try:
                rfile.close()
                client.close()
            except OSError:
                pass

    def _forward(self, head: list[bytes], body: bytes, method: str) -> tuple[bytes, bytes, bool]:
        with socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
            upstream.sendall(b"".join(head) + b"\r\n" + body)
            rfile = upstream.makefile("rb")
            while True:
                response = _read_head(rfile)
                if response is None:
                    raise ConnectionError("upstream closed the connection")
                status = int(response[0].split(b" ", 2)[1])
                if status >= 200:
                    break  # skip interim 1xx answers
            headers = _headers(response)
            framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
            no_body = method == "HEAD" or status in (204, 304)
            body = _read_body(rfile, headers, method, response_status=status)
            keep_alive = (framed or no_body) and headers.get("connection", "").lower() != "close"
            return b"".join(response) + b"\r\n", body, keep_alive


def _read_head(rfile) -> list[bytes] | None:
    lines = []
    while True:
        line = rfile.readline(65537)
        if not line:
            return None if not lines else lines
        if line in (b"\r\n", b"\n"):
            if not lines:
                continue
            return lines
        lines.append(line)


def _headers(head: list[bytes]) -> dict[str, str]:
    headers = {}
    for line in head[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def _read_body(rfile, headers: dict[str, str], method: str, response_status: int | None) -> bytes:
    """The raw bytes of a message body, framing included (chunked bodies stay chunked)."""
    if response_status is not None and (method == "HEAD" or response_status in (204, 304)):
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw = []
        while True:
            size_line = rfile.readline()
            raw.append(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    line = rfile.readline()
                    raw.append(line)
                    if line in (b"\r\n", b"\n", b""):
                        return b"".join(raw)
            raw.append(rfile.read(size + 2))
    if "content-length" in headers:
        return rfile.read(int(headers["content-length"]))
    if response_status is None:
        return b""  # a request without a body
    return rfile.read()  # a response delimited by the connection's close


def every_nth(n: int, actions=ACTIONS, only=None):
    """A ``decide`` function failing every ``n``-th matching request, cycling through ``actions``."""
    state = {"seen": 0, "failed": 0}

    def decide(method, target, headers, body):
        if only is not None and not only(method, target, body):
            return None
        state["seen"] += 1
        if state["seen"] % n:
            return None
        action = actions[state["failed"] % len(actions)]
        state["failed"] += 1
        return action

    return decide


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

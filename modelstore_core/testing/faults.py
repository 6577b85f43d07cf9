"""Faults on the wire, for testing a backend's retries against a local server of its service.

:class:`FaultProxy` is a real HTTP/1.1 forwarder on 127.0.0.1 that sits between your backend's
client and a test server (an emulator, a local server of the service) and fails the requests
it is told to: error answers, dropped connections, answers lost after the request took effect,
bodies cut in half, requests held until the client is killed. Point the backend's endpoint
option at :attr:`FaultProxy.endpoint`::

    from modelstore_core.testing.faults import FaultProxy, every_nth

    with FaultProxy(server.port, every_nth(4)) as proxy:   # every 4th request fails
        store = ModelStore(url, endpoint=proxy.endpoint)
        store.upload("d", files=[model])                   # must still succeed, through retries
    assert proxy.faults()                                  # {"500": 2, "drop": 1, ...}

:class:`ServerProcess` runs such a test server in its own process on a free port. With no
``decide`` function the proxy fails nothing and only records every request (``proxy.log``),
which counts what each operation costs on the wire, retries included.
:class:`~modelstore_core.testing.FaultContract` is a ready-made set of such tests.
:class:`FrozenServer` is an endpoint that accepts connections and never answers, for tests of
timeouts.

Standard library only: the proxy knows HTTP, not any service's SDK.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["ACTIONS", "HANG_TIMEOUT", "FaultProxy", "ServerExited", "ServerProcess", "every_nth", "free_port", "wait_for_port"]

#: Seconds after which a test calls a child process or a test server hung. Only a bound on a hang,
#: never a measure: on a busy 2-core machine a Python that imports torch or Keras can take minutes
#: to start, and a test must not fail for it.
HANG_TIMEOUT = 600.0

#: The faults :func:`every_nth` cycles through by default (all but ``"hold"``).
ACTIONS = ("500", "503", "drop", "drop-after", "cut")
REASONS = {413: "Content Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}

#: ``decide(method, target, headers, body)`` -> an action of :class:`FaultProxy`, or None.
Decide = Callable[[str, str, dict, bytes], "str | None"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerExited(RuntimeError):
    """A test server's process ended before its port accepted a connection."""


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = HANG_TIMEOUT) -> None:
    """Wait until something listens on 127.0.0.1:``port``; raise with the tail of ``log`` if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerExited(f"test server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"test server did not listen on 127.0.0.1:{port} within {timeout}s")


class ServerProcess:
    """A test server in its own process, listening on a free port of 127.0.0.1.

    ``command(port)`` returns the command line (each argument goes through ``str``). The server's output goes to the file ``log``
    (a pipe that nobody reads would block the server once it fills). :meth:`start` returns once
    the port accepts connections. Set :attr:`env` to what a client needs to reach the server
    (endpoint, credentials) for tests that start other processes.
    """

    #: seconds to wait for the port after starting the process
    start_timeout = HANG_TIMEOUT

    def __init__(self, command: Callable[[int], Sequence[object]], log: Path):
        self.command = command
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.env: dict[str, str] = {}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    #: servers started, each on a new free port, before :meth:`start` gives up: between
    #: :func:`free_port` and the server's own bind another process (a server of a test session
    #: running beside this one) may take the port, and the server exits
    start_attempts = 3

    def start(self) -> ServerProcess:
        for attempt in range(1, self.start_attempts + 1):
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen(
                    [str(arg) for arg in self.command(self.port)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            try:
                wait_for_port(self.port, self.proc, self.log, self.start_timeout)
                return self
            except ServerExited:
                if attempt == self.start_attempts:
                    raise  # exited every time: not a lost race for the port
                self.port = free_port()
        raise AssertionError("unreachable")  # pragma: no cover - the last attempt returns or raises

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class FaultProxy:
    """An HTTP/1.1 forwarder on 127.0.0.1 in front of a test server, failing the requests it is told to.

    ``decide(method, target, headers, body)`` names what happens to each request:

    - ``None``: forwarded, answered;
    - ``"500"`` / ``"503"`` (or another status, e.g. ``"413"``): answered with that status and
      ``errors[status]`` as the body (``content_type``), never forwarded; give the service's own
      error body so that the client parses it as it would the real thing;
    - ``"drop"``: the connection is closed before forwarding;
    - ``"drop-after"``: forwarded (it takes effect), then the connection is closed unanswered;
    - ``"cut"``: forwarded, then the connection is closed halfway through the answer's body;
    - ``"hold"``: held until :attr:`release` is set, then dropped (for killing a client mid-request);
      :attr:`held` is set when a request is held.

    ``decide`` runs under a lock, one request at a time. ``log`` records ``(method, target, action)``
    for every request. Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        upstream_port: int,
        decide: Decide | None = None,
        errors: Mapping[int, bytes] | None = None,
        content_type: str = "text/plain",
    ):
        self.upstream_port = upstream_port
        self.decide = decide or (lambda method, target, headers, body: None)
        self.errors = dict(errors or {})
        self.content_type = content_type
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
        """How many requests met each action, e.g. ``{"503": 2, "drop": 1}``."""
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
                if action is not None and action.isdigit():  # "500", "503", or any other status
                    status = int(action)
                    payload = self.errors.get(status, b"")
                    client.sendall(
                        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: {self.content_type}\r\n"
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


def every_nth(n: int, actions: Sequence[str] = ACTIONS, only: Callable[[str, str, bytes], bool] | None = None) -> Decide:
    """A ``decide`` function failing every ``n``-th request, cycling through ``actions``.

    ``only(method, target, body)``, if given, picks the requests that count (and may fail);
    the others always pass.
    """
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


class FrozenServer:
    """A frozen endpoint on 127.0.0.1: it accepts TCP connections and never answers (nor closes them).

    Runs in a thread of the test process; :attr:`connections` counts the connections accepted.
    """

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed by stop()
                return
            self.connections += 1
            self.held.append(conn)  # kept open, never read, never answered

    def __enter__(self) -> FrozenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        try:  # wakes the thread blocked in accept(), which close() alone does not: the join waited 5 s
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for conn in self.held:
            conn.close()
        self._thread.join(timeout=5)

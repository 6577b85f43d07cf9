"""Other S3 test servers, on 127.0.0.1, for documenting what they do with conditional writes.

* s3rver (npm): installed on first use with ``npm install --prefix`` into a per-user cache directory
  (``$MODELSTORE_TEST_CACHE``, else ``~/.cache/modelstore-tests``), never into the checkout. Checks
  signatures against its fixed key pair ``S3RVER``/``S3RVER``; path-style addressing.
* localbucket (PyPI, in the ``test`` extra): standard library only; credentials are not checked;
  path-style addressing.

Both log to a file; both are started in their own process by :class:`ServerProcess`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from modelstore_core.testing.faults import ServerProcess

S3RVER_VERSION = "3.7.1"
S3RVER_CREDENTIALS = ("S3RVER", "S3RVER")


def cache_dir() -> Path:
    return Path(os.environ.get("MODELSTORE_TEST_CACHE") or Path.home() / ".cache" / "modelstore-tests")


class Unavailable(RuntimeError):
    """The server cannot be installed or started here; the message names the missing piece."""


def s3rver_script(log: Path) -> Path:
    """s3rver's entry point, installed with npm into the cache directory on first use."""
    prefix = cache_dir() / f"s3rver-{S3RVER_VERSION}"
    script = prefix / "node_modules" / "s3rver" / "bin" / "s3rver.js"
    if script.is_file():
        return script
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise Unavailable(f"s3rver needs {tool} on PATH (Node.js >= 8)")
    prefix.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        result = subprocess.run(
            ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-save", f"s3rver@{S3RVER_VERSION}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=600,
        )
    if result.returncode != 0 or not script.is_file():
        raise Unavailable(f"`npm install s3rver@{S3RVER_VERSION}` failed (exit {result.returncode}); see {log}")
    return script


class S3rver(ServerProcess):
    """``node s3rver.js`` on a free port with a fresh data directory and ``bucket`` created at start."""

    def __init__(self, data: Path, bucket: str, log: Path):
        script = s3rver_script(log.with_name("npm-install.log"))
        data.mkdir(parents=True, exist_ok=True)
        super().__init__(lambda port: ["node", script, "-d", data, "-a", "127.0.0.1", "-p", port, "--configure-bucket", bucket], log)

    @property
    def endpoint_with_credentials(self) -> str:
        return f"http://{S3RVER_CREDENTIALS[0]}:{S3RVER_CREDENTIALS[1]}@127.0.0.1:{self.port}"


class LocalBucket(ServerProcess):
    """``localbucket DATA --host 127.0.0.1 --port PORT``; buckets are created with CreateBucket."""

    def __init__(self, data: Path, log: Path):
        try:
            import localbucket  # noqa: F401
        except ImportError:
            raise Unavailable("localbucket is not installed (pip install -e 'plugins/modelstore-s3[test]')") from None
        super().__init__(lambda port: [sys.executable, "-m", "localbucket", data, "--host", "127.0.0.1", "--port", port], log)

    @property
    def endpoint_with_credentials(self) -> str:
        return f"http://test:test@127.0.0.1:{self.port}"  # any key pair will do

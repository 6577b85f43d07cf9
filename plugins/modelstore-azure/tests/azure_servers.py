"""Azurite, Microsoft's Azure Storage emulator, on 127.0.0.1, and the service's error bodies for the fault proxy.

Azurite comes from npm: it is installed on first use with ``npm install --prefix`` into a per-user
cache directory (``$MODELSTORE_TEST_CACHE``, else ``~/.cache/modelstore-tests``), never into the
checkout, so a fresh machine with node and npm runs the tests. 3.35.0 is the last release that runs
on Node 20 (3.36 needs Node 22). Its blob service runs in memory, in its own process
(:class:`~modelstore_core.testing.faults.ServerProcess`), logging to a file; the proxy itself,
:class:`modelstore_core.testing.faults.FaultProxy`, is the core's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from modelstore_core.testing.faults import ServerProcess

AZURITE_VERSION = "3.35.0"
#: Azurite's well-known development account and key (public, documented by Microsoft).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

AZURE_ERRORS = {
    500: b'<?xml version="1.0" encoding="utf-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>',
    503: b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>injected</Message></Error>',
}


def container_sas(container: str) -> str:
    """A SAS token for ``container`` on Azurite's account, valid for an hour, with what a store needs."""
    from datetime import datetime, timedelta, timezone

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    allowed = ContainerSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True)
    expiry = datetime.now(timezone.utc) + timedelta(hours=1)
    return generate_container_sas(ACCOUNT, container, account_key=KEY, permission=allowed, expiry=expiry)


def cache_dir() -> Path:
    return Path(os.environ.get("MODELSTORE_TEST_CACHE") or Path.home() / ".cache" / "modelstore-tests")


class Unavailable(RuntimeError):
    """Azurite cannot be installed or started here; the message names the missing piece."""


def azurite_blob_script(log: Path) -> Path:
    """Azurite's blob service entry point, installed with npm into the cache directory on first use."""
    prefix = cache_dir() / f"azurite-{AZURITE_VERSION}"
    script = prefix / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    if script.is_file():
        return script
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise Unavailable(f"Azurite needs {tool} on PATH (Node.js >= 18)")
    prefix.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        result = subprocess.run(
            ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-save", f"azurite@{AZURITE_VERSION}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=600,
        )
    if result.returncode != 0 or not script.is_file():
        raise Unavailable(f"`npm install azurite@{AZURITE_VERSION}` failed (exit {result.returncode}); see {log}")
    return script


class Azurite(ServerProcess):
    """Azurite's blob service on a free port, in memory."""

    def __init__(self, log: Path):
        script = azurite_blob_script(log.with_name("npm-install.log"))
        super().__init__(
            lambda port: [
                "node",
                script,
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                port,
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--loose",
            ],
            log,
        )

    @property
    def account_url(self) -> str:
        return f"{self.endpoint}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={self.account_url};"

"""A transport to a folder: ``folder:///path/to/dir`` (``ModelStore.push``/``pull``).

The smallest complete transport: it shows what one moves and what it checks. A pushed version
is the folder's ``version.json`` (the record as stored), ``signatures/<n>.json`` and its files
under ``objects/<sha256>``, content-addressed, so a push writes only files the folder lacks.
A pull copies each object into the scratch directory, hashing it on the way, and hands the core
the names, sizes and digests it found; the core checks them against the record and commits.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from modelstore_core.plugin_api import CHUNK_SIZE, Incoming, IncomingFile, ModelStoreError, Outgoing, Transport

RECORD = "version.json"


class FolderTransport(Transport):
    def __init__(self, ref: str):
        self.url = ref
        self.folder = Path(ref.split("://", 1)[1])

    def push(self, version: Outgoing, progress=None) -> str:
        objects = self.folder / "objects"
        objects.mkdir(parents=True, exist_ok=True)
        for entry in version.record.files:
            target = objects / entry.sha256
            if target.is_file() and target.stat().st_size == entry.size:
                continue  # content-addressed: already there
            tmp = target.with_name(f".{entry.sha256}.{os.getpid()}.tmp")
            with version.files.open(entry.path) as src, open(tmp, "wb") as dst:
                while chunk := src.read(CHUNK_SIZE):  # verified as it is read
                    dst.write(chunk)
            os.replace(tmp, target)
        signatures = self.folder / "signatures"
        shutil.rmtree(signatures, ignore_errors=True)
        signatures.mkdir()
        for i, data in enumerate(version.signatures):
            (signatures / f"{i}.json").write_bytes(data)
        (self.folder / RECORD).write_bytes(version.data)  # last: the folder holds a version once it is there
        return "sha256:" + hashlib.sha256(version.data).hexdigest()

    def pull(self, scratch: Path, progress=None) -> Incoming:
        import json

        try:
            data = (self.folder / RECORD).read_bytes()
            listed = json.loads(data)["files"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelStoreError(f"{self.url} holds no pushed version ({type(exc).__name__})") from None
        files = []
        for i, entry in enumerate(listed):
            # The record is untrusted here: the core checks every name, size and digest against it.
            source = self.folder / "objects" / str(entry.get("sha256", ""))
            if not source.is_file() or source.parent != self.folder / "objects":
                raise ModelStoreError(f"{self.url} lacks the file {str(entry.get('path'))[:100]!r}")
            target = scratch / f"{i}"
            digest = hashlib.sha256()
            with open(source, "rb") as src, open(target, "wb") as dst:
                while chunk := src.read(CHUNK_SIZE):
                    digest.update(chunk)
                    dst.write(chunk)
            files.append(IncomingFile(str(entry.get("path")), target, target.stat().st_size, digest.hexdigest()))
        signatures = sorted((self.folder / "signatures").glob("*.json"))
        return Incoming(self.url, files, record=data, signatures=[p.read_bytes() for p in signatures])

"""Streaming sha256 and verified copies: files are never read whole into memory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from .errors import IntegrityError
from .storage import CHUNK_SIZE


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 (hex) and size of a local file, in one streaming pass."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256") if hasattr(hashlib, "file_digest") else _digest(f)
        return digest.hexdigest(), f.tell()


def _digest(f: BinaryIO):  # Python 3.10
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
        h.update(chunk)
    return h


def copy_hashed(src: BinaryIO, dest: Path) -> str:
    """Stream ``src`` into a new file ``dest`` and return the sha256 of the bytes written."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    with open(dest, "wb") as out:
        readinto = getattr(src, "readinto", None)
        while True:
            if readinto is not None:
                n = readinto(view)
                if not n:
                    break
                chunk = view[:n]
            else:
                chunk = src.read(CHUNK_SIZE)
                if not chunk:
                    break
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def verify_file(path: Path, expected: str, name: str) -> None:
    """Raise :class:`IntegrityError` naming ``name`` unless ``path`` hashes to ``expected``."""
    actual, _ = hash_file(path)
    if actual != expected:
        raise IntegrityError(name, expected, actual)


def check_hash(actual: str, expected: str, name: str, partial: Path | None = None) -> None:
    if actual != expected:
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise IntegrityError(name, expected, actual)


def file_signature(path: Path) -> tuple[int, int, int]:
    """What changes when a file is rewritten: size, mtime and inode."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino

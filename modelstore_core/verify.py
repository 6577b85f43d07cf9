"""Re-hashing stored files against their version records."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from . import layout
from .errors import KeyNotFoundError
from .storage import CHUNK_SIZE, Storage
from .transfer import hash_file


@dataclass
class Problem:
    domain: str
    version: int
    file: str
    problem: str  # "missing" or "corrupted"


@dataclass
class VerifyReport:
    versions: int = 0
    files: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def object_sha256(storage: Storage, sha256: str) -> str | None:
    """The actual sha256 of a stored object, or None if it is missing."""
    key = layout.object_key(sha256)
    local = storage.local_path(key)
    if local is not None:
        return hash_file(local)[0]
    h = hashlib.sha256()
    try:
        with storage.get(key) as f:
            for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
                h.update(chunk)
    except KeyNotFoundError:
        return None
    return h.hexdigest()


def verify_records(storage: Storage, records: list[dict], report: VerifyReport | None = None) -> VerifyReport:
    report = report or VerifyReport()
    checked: dict[str, str | None] = {}  # sha -> actual, each object hashed once
    for record in records:
        report.versions += 1
        for entry in record["files"]:
            sha = entry["sha256"]
            if sha not in checked:
                checked[sha] = object_sha256(storage, sha)
                report.bytes += entry["size"]
            report.files += 1
            actual = checked[sha]
            if actual != sha:
                problem = "missing" if actual is None else "corrupted"
                report.problems.append(Problem(record["domain"], record["version"], entry["path"], problem))
    return report

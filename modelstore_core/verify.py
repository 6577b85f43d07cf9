"""Re-hashing stored files against their version records."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import KeyNotFoundError
from .hashing import hash_file, hash_stream
from .progress import Advance, Progress, ProgressCallback
from .protocol import keys
from .protocol.records import VersionRecord
from .storage import Storage


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


def object_sha256(storage: Storage, sha256: str, progress: Advance | None = None) -> str | None:
    """The actual sha256 of a stored object, or None if it is missing."""
    key = keys.object_key(sha256)
    local = storage.local_path(key)
    if local is not None:
        return hash_file(local, progress)[0]
    try:
        with storage.get(key) as f:
            return hash_stream(f, progress)[0]
    except KeyNotFoundError:
        return None


def verify_records(storage: Storage, records: list[VersionRecord], progress: ProgressCallback | None = None) -> VerifyReport:
    report = VerifyReport()
    sizes = {entry.sha256: entry.size for record in records for entry in record.files}
    counter = Progress(progress, sum(sizes.values()))
    checked: dict[str, str | None] = {}  # sha -> actual, each object hashed once
    for record in records:
        report.versions += 1
        for entry in record.files:
            sha = entry.sha256
            if sha not in checked:
                file = counter.file(entry.size)
                checked[sha] = object_sha256(storage, sha, file)
                file.finish()
                report.bytes += entry.size
            report.files += 1
            actual = checked[sha]
            if actual != sha:
                problem = "missing" if actual is None else "corrupted"
                report.problems.append(Problem(record.domain, record.version, entry.path, problem))
    return report

"""Checking a store against its own records, and repairing what can be repaired.

``verify`` re-hashes every stored object a record names, and reports, without stopping at the
first: files missing or corrupted, records that break the schema, states that point at deleted
versions, and entries under ``domains/`` that are not domains. With ``repair``:

* a corrupted object is deleted, so that uploading the same bytes again stores them afresh (every
  version that names them is whole again; until then they report the file missing);
* a missing object is not repairable here: only uploading the same bytes again (to any domain) or
  putting the object back from a backup restores it;
* a state pointing at a deleted version is removed;
* a summary segment (:mod:`.protocol.summary`) that differs from the records is rebuilt from them
  (``bad-summary``: unreadable, or an entry that disagrees with its record; a summary that only lags
  is no problem, ``find`` reads past it).

With ``signatures``, every signature document of a checked version is checked against the key it
names (``bad-signature`` when either of its signatures does not hold over the current record and
files, or it is unreadable; ``partial-signature`` when it holds but was made before signatures
covered dependencies and environment markers), and, given a trust policy, each version against it
(``untrusted``). The signed pointers of each domain (:mod:`.pointers`) are checked too: given a
trust policy, ``latest`` and each state must be vouched for by a trusted key (``untrusted-pointer``),
without one each signed statement must hold for the key it names (``bad-signature``); and a
statement older than one this machine saw is ``rolled-back``, one naming a version the store does
not hold ``missing-version``.

Corrupt records and stray entries are reported, never changed: only a person can tell what they
should have been (``delete`` the version, or restore the object from a backup).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import CorruptRecordError, KeyNotFoundError
from .hashing import hash_file, hash_stream
from .progress import Advance, Progress, ProgressCallback
from .protocol import commit, keys, read
from .protocol.records import VersionRecord
from .storage import Storage

if TYPE_CHECKING:
    from .cache import SeenPointers
    from .signing import TrustPolicy


@dataclass
class Problem:
    domain: str
    version: int | None
    file: str | None
    #: "missing", "corrupted", "corrupt-record", "dangling-state", "stray", "bad-summary", "bad-signature",
    #: "partial-signature", "untrusted", "untrusted-pointer", "rolled-back" or "missing-version"
    problem: str
    detail: str = ""
    #: what ``repair`` did about it ("" when nothing)
    repaired: str = ""


@dataclass
class VerifyReport:
    versions: int = 0
    files: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: with ``signatures``: "domain/version" -> key ids whose signatures hold (for the key they name)
    signers: dict[str, list[str]] = field(default_factory=dict)

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


def verify_store(
    storage: Storage,
    domain: str | None = None,
    version: int | None = None,
    *,
    repair: bool = False,
    progress: ProgressCallback | None = None,
    signatures: bool = False,
    policy: TrustPolicy | None = None,
    seen: SeenPointers | None = None,
) -> VerifyReport:
    """Verify every version, a domain's, or one version's (see the module docstring); ``seen``: this
    machine's memory of signed pointers, to report rollbacks."""
    report = VerifyReport()
    if domain is None:
        domains, stray = read.domains_and_strays(storage)
        report.problems += [Problem(name, None, None, "stray", "not a domain modelstore writes; its keys are never read") for name in stray]
    else:
        domains = [domain]
    if version is not None:
        pairs = [(domain, version)]
    else:
        pairs = [(d, n) for d in domains for n, _ in read.versions_if_any(storage, d)]
    records, corrupt = read.read_records(storage, pairs)  # versions deleted meanwhile are skipped
    if version is not None and not (records or corrupt):
        raise read.not_found(storage, domain, version)  # a missing version is an error here, not a problem
    report.problems += [Problem(*_where(err.key), None, "corrupt-record", str(err)) for err in corrupt]
    _verify_objects(storage, records, report, repair, progress)
    if signatures:
        _verify_signatures(storage, records, report, policy)
    if version is None:
        for d in domains:
            _verify_states(storage, d, report, repair)
            _verify_summary(storage, d, [r for r in records if r.domain == d], report, repair)
            if signatures:
                _verify_pointers(storage, d, {n for dd, n in pairs if dd == d}, report, policy, seen)
    return report


def _where(key: str) -> tuple[str, int | None]:
    """(domain, version) of a record key."""
    domain = key[len(keys.DOMAINS) :].split("/", 1)[0]
    return domain, keys.version_from_key(key)


def _verify_objects(storage: Storage, records: list[VersionRecord], report: VerifyReport, repair: bool, progress) -> None:
    sizes = {entry.sha256: entry.size for record in records for entry in record.files}
    counter = Progress(progress, sum(sizes.values()))
    checked: dict[str, str | None] = {}  # sha -> actual, each object hashed once
    removed: set[str] = set()
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
            if actual == sha:
                continue
            problem = Problem(record.domain, record.version, entry.path, "missing" if actual is None else "corrupted")
            if actual is None:
                problem.detail = "the store lost it: upload the same file again to restore it"
            else:
                problem.detail = f"sha256 {actual[:12]}… instead of {sha[:12]}…"
                if repair:
                    if sha not in removed:
                        storage.delete(keys.object_key(sha))
                        removed.add(sha)
                    problem.repaired = "deleted the corrupted object: upload the same file again to restore it"
            report.problems.append(problem)


def _verify_states(storage: Storage, domain: str, report: VerifyReport, repair: bool) -> None:
    try:
        states = read.read_states(storage, domain)
    except CorruptRecordError as exc:
        report.problems.append(Problem(domain, None, None, "corrupt-record", f"{exc} (`modelstore state set` replaces it)"))
        return
    for name, entry in sorted(states.items()):
        if storage.stat(keys.version_key(domain, entry.version)) is not None:
            continue
        problem = Problem(domain, entry.version, None, "dangling-state", f"state {name!r} points at a deleted version")
        if repair:
            commit.remove_state_if(storage, domain, name, entry.version)
            problem.repaired = f"removed state {name!r}"
        report.problems.append(problem)


def _verify_summary(storage: Storage, domain: str, records: list[VersionRecord], report: VerifyReport, repair: bool) -> None:
    from .protocol.summary import check_summary

    for version, detail, repaired in check_summary(storage, domain, records, repair=repair):
        report.problems.append(Problem(domain, version, None, "bad-summary", detail, repaired))


def _verify_pointers(storage: Storage, domain: str, present: set[int], report: VerifyReport, policy, seen) -> None:
    from .pointers import check_pointers

    for version, problem, detail in check_pointers(storage, domain, present, policy, seen):
        report.problems.append(Problem(domain, version, None, problem, detail))


def _verify_signatures(storage: Storage, records: list[VersionRecord], report: VerifyReport, policy: TrustPolicy | None) -> None:
    from .errors import UntrustedSignatureError
    from .signing import describe_signatures

    for record in records:
        found = describe_signatures(storage, record, policy)
        report.signers[f"{record.domain}/{record.version}"] = [s.keyid for s in found if s.valid]
        for s in found:
            if not s.valid:
                report.problems.append(Problem(record.domain, record.version, None, "bad-signature", f"key {s.keyid}: {s.problem}"))
            elif s.uncovered:
                detail = (
                    f"key {s.keyid} signed it before signatures covered {s.uncovered}: those are not covered"
                    f" (`modelstore sign {record.domain} {record.version}` adds a signature that covers them)"
                )
                report.problems.append(Problem(record.domain, record.version, None, "partial-signature", detail))
        if policy is not None:
            try:
                policy.check(storage, record)
            except UntrustedSignatureError as exc:
                need = "every trusted key" if policy.require == "all" else "a trusted key"
                signers = ", ".join(sorted(exc.found)) or "nobody"
                detail = f"not signed by {need} (signature documents by: {signers})"
                report.problems.append(Problem(record.domain, record.version, None, "untrusted", detail))

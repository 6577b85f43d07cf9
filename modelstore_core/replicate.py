"""Copying versions between stores (``copy``) and keeping a read-only store in step (``mirror``).

Works between any two backends through the storage primitives alone. A copied version keeps its
number and its record byte for byte (so its signatures, copied beside it, still hold), its
objects (content-addressed: only those the destination lacks move, each verified by sha256 on
the way) and, optionally, its states.

Each version is committed the way an upload is (:mod:`.protocol.commit`): an upload marker
(so ``gc`` leaves the objects alone), the objects, then the claim of its number and the record
(the commit point), its signatures, and the latest hint. A copy killed at any point leaves no
half-visible version, and running it again finishes the job: objects already there are not sent
again, and a claim this copy made (it names the record it is for) is taken up again. A
destination that holds a different record under the number, or a claim by someone else (an
upload, a deleted version), is a conflict: reported for that version, never overwritten.

Each version copied is a ``copied`` event of the destination's change feed (:mod:`.protocol.feed`),
and each state carried over a ``state_set``: one listing of the feed per domain copied into, and a
slot per event.

Request costs: each side's domain listing, then per domain one listing of ``domains/<d>/`` on
each side (versions, claims and signatures in one go) and a read of each side's states. A version
present on both sides costs two record reads (``copy`` compares them) or nothing when the listing
shows records of equal size (``mirror``, :attr:`Plan.trust_listing`). Only versions to copy cost
more: their record, a ``stat`` per object, and the transfers.

Signed pointers (:mod:`.pointers`) go with what they name: a state's signed statement is copied
with the state, and the source's signed head, when the destination holds the version it names
and has no newer one (one more read on each side, only for a source whose listing shows a
``latest.json`` that holds a signed head).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import (
    CorruptRecordError,
    DomainNotFoundError,
    IntegrityError,
    KeyNotFoundError,
    SourceChangedError,
    StateNotFoundError,
    UsageError,
    VersionNotFoundError,
)
from .hashing import check_hash, file_signature
from .names import check_name
from .progress import FileProgress, Progress, ProgressCallback
from .protocol import commit, feed, keys, limits
from .protocol.cas import read_document
from .protocol.limits import read_capped
from .protocol.read import domains_and_strays
from .protocol.records import MAX_HINT_BYTES, LatestDocument, SignatureDocument, SignedPointer, StateEntry, VersionRecord, parse_states
from .storage import ObjectInfo, Storage

if TYPE_CHECKING:
    from .cache import Cache

#: Objects of one version moved at once (remote transfers wait on the network, not the CPU).
PARALLEL_OBJECTS = 4


# --- what to copy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """A domain, one version of it, or the version a state of it names (``None``/``None``: all)."""

    domain: str
    version: int | None = None
    state: str | None = None

    @classmethod
    def parse(cls, text: str) -> Selector:
        """``DOMAIN``, ``DOMAIN:VERSION`` or ``DOMAIN@STATE``."""
        if "@" in text:
            domain, _, state = text.partition("@")
            return cls(check_name(domain, "domain name"), state=check_name(state, "state name"))
        if ":" in text:
            domain, _, number = text.partition(":")
            if not number.isdigit() or int(number) < 1:
                raise UsageError(f"{text!r}: the version after ':' is a number from 1 (DOMAIN:VERSION)")
            return cls(check_name(domain, "domain name"), version=int(number))
        return cls(check_name(text, "domain name"))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.domain}:{self.version}"
        return f"{self.domain}@{self.state}" if self.state is not None else self.domain


@dataclass(frozen=True)
class Conflict:
    """A version that was not copied: the destination holds something else under its number."""

    domain: str
    version: int
    reason: str


@dataclass
class CopyReport:
    """What a copy or mirror did (``versions`` as ``"domain:version"``)."""

    copied: list[str] = field(default_factory=list)
    #: already in the destination with the same record (their missing signatures are added)
    skipped: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    #: ``"domain@state=version"`` set or moved in the destination
    states: list[str] = field(default_factory=list)
    #: versions (``"domain:version"``), domains and states (``"domain@state"``) removed (mirror ``delete``
    #: and ``prune``)
    deleted: list[str] = field(default_factory=list)
    #: versions that ``prune`` left in the destination because a state of its own, one not mirrored,
    #: names them (``"domain:version"``)
    kept: list[str] = field(default_factory=list)
    signatures: int = 0
    objects: int = 0
    bytes_moved: int = 0
    #: source entries that could not be copied (a corrupt record, a signature that is not one)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.conflicts and not self.problems


# --- one side's view of a domain ---------------------------------------------------------------


@dataclass
class DomainListing:
    """What one listing of ``domains/<d>/`` shows: records, claims, signatures and states.json."""

    versions: dict[int, ObjectInfo] = field(default_factory=dict)
    claims: set[int] = field(default_factory=set)
    signatures: dict[int, set[str]] = field(default_factory=dict)
    has_states: bool = False
    #: ``latest.json`` holds a signed head (it is larger than a bare hint can be)
    has_head: bool = False

    @classmethod
    def of(cls, storage: Storage, domain: str) -> DomainListing:
        found = cls()
        claims = keys.claims_prefix(domain)
        for info in storage.list(keys.domain_prefix(domain)):
            if (n := keys.version_from_key(info.key)) is not None and info.key == keys.version_key(domain, n):
                found.versions[n] = info
            elif info.key.startswith(claims):
                name = info.key[len(claims) :]
                if len(name) == keys.VERSION_DIGITS and name.isdigit() and int(name) >= 1:
                    found.claims.add(int(name))
            elif (sig := keys.signature_from_key(info.key)) is not None:
                found.signatures.setdefault(sig[0], set()).add(sig[1])
            elif info.key == keys.states_key(domain):
                found.has_states = True
            elif info.key == keys.latest_key(domain):
                found.has_head = (info.size or 0) > MAX_HINT_BYTES
        return found

    def states(self, storage: Storage, domain: str) -> dict[str, StateEntry]:
        if not self.has_states:
            return {}
        key = keys.states_key(domain)
        return parse_states(read_document(storage, key, limits.STATES_BYTES, "the states of a domain")[0], key)


# --- the copy ----------------------------------------------------------------------------------------


class Copier:
    """One copy (or mirror run) from ``src`` to ``dst``.

    :param before_writing: called once, before the first write to ``dst`` (the conditional-write proof).
    :param trust_listing: a version whose record the destination lists with the source's size is
        taken as the same (no record reads: what keeps a mirror run with nothing new to listings);
        otherwise both records are read and compared byte for byte.
    :param prune: with a ``state_filter`` (a mirror of some states), delete from each domain of the
        destination the versions that no state of the destination names once the mirrored states
        have moved: the versions those states moved off. A version that a state of the
        destination's own (one not mirrored) names is kept, and listed in ``report.kept``.
    """

    def __init__(
        self,
        src: Storage,
        dst: Storage,
        *,
        states: bool = True,
        delete: bool = False,
        prune: bool = False,
        allow_empty_source: bool = False,
        trust_listing: bool = False,
        progress: ProgressCallback | None = None,
        before_writing: Callable[[], None] | None = None,
        cache: Cache | None = None,
    ):
        self.src, self.dst = src, dst
        self.cache = cache  # where objects wait between the stores when the destination has no scratch of its own
        self.copy_states, self.delete, self.prune, self.trust_listing = states, delete, prune, trust_listing
        self.allow_empty_source = allow_empty_source
        self.progress = progress
        self._before_writing = before_writing
        self._writing = False
        self._lock = threading.Lock()  # objects of a version move on several threads
        self.report = CopyReport()

    def writing(self) -> None:
        if not self._writing:
            self._writing = True
            if self._before_writing is not None:
                self._before_writing()

    # --- planning ---

    def run(self, selection: list[Selector] | None = None, state_filter: list[str] | None = None) -> CopyReport:
        """Copy ``selection`` (every domain when ``None``); with ``state_filter``, only the versions
        those states name (and those states).

        Refuses (:class:`UsageError`, before any write) a source that does not exist, and with
        ``delete`` a source with no domains while the destination has some, unless
        ``allow_empty_source``: a typo in the source's path or prefix must not empty the destination.
        ``prune`` without a ``state_filter`` is refused too (it would keep no version but those a
        state names).
        """
        if self.prune and not state_filter:
            raise UsageError("prune deletes the versions the mirrored states moved off: name the states to mirror (states=[...], --state)")
        if not self.src.exists():
            raise UsageError(f"the source store {self.src.url} does not exist (a typo in its path?); nothing was copied or deleted")
        src_domains = domains_and_strays(self.src)[0]
        if selection is None:
            selection = [Selector(d) for d in src_domains]
            whole_store = True
            if self.delete and not src_domains and not self.allow_empty_source and (doomed := domains_and_strays(self.dst)[0]):
                problem = (
                    f"the source store {self.src.url} holds no domains, so mirroring it with delete would delete all"
                    f" {len(doomed)} domains of {self.dst.url}; nothing was deleted. Check the source's URL (a typo in a"
                    " path or prefix looks like this); if it is meant to be empty, pass"
                )
                raise UsageError(f"{problem} allow_empty_source=True", cli=f"{problem} --allow-empty-source")
        else:
            whole_store = False
            missing = sorted({s.domain for s in selection} - set(src_domains))
            if missing:
                raise DomainNotFoundError(missing[0])
        by_domain: dict[str, list[Selector]] = {}
        for s in selection:
            by_domain.setdefault(s.domain, []).append(s)
        plans = [self._plan(domain, chosen, state_filter) for domain, chosen in by_domain.items()]
        total = sum(p.size for p in plans)
        counter = Progress(self.progress, total)
        for plan in plans:
            self._copy_domain(plan, counter)
        if self.delete and whole_store and state_filter is None:
            for domain in sorted(set(domains_and_strays(self.dst)[0]) - set(src_domains)):
                self.writing()
                commit.delete_domain(self.dst, domain)
                self.report.deleted.append(domain)
        return self.report

    def _plan(self, domain: str, chosen: list[Selector], state_filter: list[str] | None) -> _DomainPlan:
        src = DomainListing.of(self.src, domain)
        dst = DomainListing.of(self.dst, domain)
        src_states: dict[str, StateEntry] = {}
        if self.copy_states or any(s.state for s in chosen) or state_filter:
            try:
                src_states = src.states(self.src, domain)
            except CorruptRecordError as exc:  # its versions can still be copied, by number
                self.report.problems.append(f"{domain}: states not copied: {exc}")
        whole = any(s.version is None and s.state is None for s in chosen) and not state_filter
        wanted: set[int] = set(src.versions) if whole else set()
        state_names: set[str] | None = None if whole else set()
        for s in chosen:
            if s.version is not None:
                if s.version not in src.versions:
                    raise VersionNotFoundError(domain, s.version)
                wanted.add(s.version)
            elif s.state is not None:
                if s.state not in src_states:
                    raise StateNotFoundError(domain, s.state)
                wanted.add(src_states[s.state].version)
                state_names.add(s.state)
        if state_filter:
            state_names.update(state_filter)  # also those the source removed (mirror --delete)
            wanted.update(src_states[name].version for name in state_filter if name in src_states)
        if state_names is not None and not whole:
            # A version chosen by number brings the states that name it along.
            state_names |= {name for name, entry in src_states.items() if entry.version in wanted and not state_filter}
        plan = _DomainPlan(domain, src, dst, src_states, state_names, whole)
        for n in sorted(wanted):
            if n not in src.versions:  # a state of the source names a deleted version
                named = ", ".join(sorted(name for name, e in src_states.items() if e.version == n))
                self.report.problems.append(
                    f"{domain}@{named}: names version {n}, which the source deleted; `modelstore verify --repair` on the source removes it"
                )
                continue
            self._classify(plan, n)
        return plan

    def _classify(self, plan: _DomainPlan, n: int) -> None:
        domain = plan.domain
        if n in plan.dst.versions:
            if self.trust_listing and plan.dst.versions[n].size == plan.src.versions[n].size:
                plan.present.append(n)
                return
            data = self._source_record(plan, n)
            if data is None:
                return
            try:
                theirs = read_capped(self.dst, keys.version_key(domain, n), limits.RECORD_BYTES, "a version record")[0]
            except KeyNotFoundError:  # deleted meanwhile: copy it
                plan.to_copy.append(n)
                return
            if theirs == data:
                plan.present.append(n)
            else:
                self.report.conflicts.append(Conflict(domain, n, "the destination holds a different version under this number"))
            return
        if n in plan.dst.claims:
            data = self._source_record(plan, n)
            if data is None:
                return
            if not commit.claimed_for(self.dst, domain, n, data):
                self.report.conflicts.append(
                    Conflict(domain, n, "the number is taken in the destination (an upload in progress there, or a version deleted there)")
                )
                return
        elif self._source_record(plan, n) is None:
            return
        plan.to_copy.append(n)

    def _source_record(self, plan: _DomainPlan, n: int) -> bytes | None:
        """The source's record bytes, validated (a corrupt one is a problem, never copied)."""
        if n in plan.records:
            return plan.records[n]
        key = keys.version_key(plan.domain, n)
        try:
            data = read_capped(self.src, key, limits.RECORD_BYTES, "a version record")[0]
            plan.parsed[n] = VersionRecord.parse(data, key, plan.domain, n)
        except KeyNotFoundError:
            self.report.problems.append(f"{plan.domain}:{n}: deleted from the source while copying")
            return None
        except CorruptRecordError as exc:
            self.report.problems.append(f"{plan.domain}:{n}: {exc}")
            return None
        plan.records[n] = data
        return data

    # --- copying ---

    def _copy_domain(self, plan: _DomainPlan, counter: Progress) -> None:
        domain = plan.domain
        if plan.to_copy:
            self.writing()
            plan.feed_seq = feed.tail(self.dst, feed.domain_seq(self.dst, domain))  # the copies' events come after
        for n in plan.to_copy:
            self._copy_version(plan, n, counter)
        for n in plan.present:
            self.report.skipped.append(f"{domain}:{n}")
            missing = plan.src.signatures.get(n, set()) - plan.dst.signatures.get(n, set())
            if missing:
                self._copy_signatures(domain, n, sorted(missing))
        if plan.copied:
            commit.advance_latest(self.dst, domain, max(plan.copied), evented=plan.evented, seq=plan.feed_seq)
        if self.copy_states:
            self._copy_states(plan)
            self._copy_head(plan)
        if self.prune:
            self._prune(plan)
        if self.delete and plan.whole:
            for n in sorted(set(plan.dst.versions) - set(plan.src.versions)):
                self.writing()
                try:
                    commit.delete_version(self.dst, domain, n)
                except (VersionNotFoundError, DomainNotFoundError):
                    continue
                self.report.deleted.append(f"{domain}:{n}")

    def _copy_version(self, plan: _DomainPlan, n: int, counter: Progress) -> None:
        domain, record, data = plan.domain, plan.parsed[n], plan.records[n]
        self.writing()
        objects = tuple(sorted({f.sha256 for f in record.files}))
        with commit.upload_in_progress(self.dst, domain, objects) as marker:
            commit.checkpoint("copy-marker-written")
            try:
                self._copy_objects(record, counter)

                def restore(missing: list[str]) -> None:  # deleted by a concurrent gc after they were found there
                    self._copy_objects(record, Progress(None, 0), only=set(missing))

                commit.ensure_objects(self.dst, marker, objects, restore)
            except (IntegrityError, SourceChangedError, KeyNotFoundError) as exc:  # a damaged, changing or missing source object
                what = f"object {exc} is missing from the source" if isinstance(exc, KeyNotFoundError) else exc
                self.report.problems.append(f"{domain}:{n}: not copied: {what}; `modelstore verify` on the source says more")
                return
            commit.checkpoint("copy-objects-stored")
            conflict, change = commit.commit_copy(self.dst, domain, n, data, plan.feed_seq, marker.key)
            if conflict is not None:
                self.report.conflicts.append(Conflict(domain, n, conflict))
                return
            if change is not None:
                plan.feed_seq = max(plan.feed_seq, feed.append(self.dst, change))
                plan.evented.add(n)
            commit.checkpoint("copy-evented")
            marker.version = n
            plan.copied.append(n)
            self.report.copied.append(f"{domain}:{n}")
            self._copy_signatures(domain, n, sorted(plan.src.signatures.get(n, ())))

    def _copy_objects(self, record: VersionRecord, counter: Progress, only: set[str] | None = None) -> None:
        first: dict[str, tuple] = {}
        for entry in record.files:
            if only is None or entry.sha256 in only:
                first.setdefault(entry.sha256, (entry, counter.file(entry.size)))
        for entry in record.files:
            if entry.sha256 in first and first[entry.sha256][0] is not entry:
                counter.file(entry.size).finish()  # the same bytes under two names: moved once
        jobs = list(first.values())
        with self._scratch() as scratch:
            if len(jobs) < 2:
                for job in jobs:
                    self._copy_object(*job, scratch)
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(min(PARALLEL_OBJECTS, len(jobs))) as pool:
                    list(pool.map(lambda job: self._copy_object(*job, scratch), jobs))

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        """Where objects wait between the stores: the destination's scratch directory (a local store
        then takes them by a rename), else one in the cache (a killed copy's files are reclaimed:
        :meth:`~.cache.Cache.scratch`), else a system temporary directory."""
        scratch = self.dst.scratch_dir()
        if scratch is None:
            with self.cache.scratch("copy-") if self.cache is not None else tempfile.TemporaryDirectory(prefix="modelstore-copy-") as tmp:
                yield Path(tmp)
            return
        scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            yield scratch
        finally:
            self.dst.drop_scratch(scratch)

    def _copy_object(self, entry, file: FileProgress, scratch: Path) -> None:
        """Send one object the target lacks; it becomes visible there only once its sha256 checked out.

        From a local store the object file is staged as it is (the target's staging reads it once,
        copying and hashing together on a local target); from a remote one it is downloaded into
        the target's scratch space first, hashed as it lands (``Storage.get_file``), and staged
        with that digest.
        """
        key = keys.object_key(entry.sha256)
        existing = self.dst.stat(key)
        if existing is not None and existing.size == entry.size:
            file.finish()
            return
        local = self.src.local_path(key)
        path = local if local is not None else scratch / entry.sha256
        try:
            digest = None
            if local is None:  # hashed as it downloads; a larger object fails its hash below
                digest = self.src.get_file(key, path, progress=file, max_bytes=entry.size)
            before = file_signature(path)
            staged = self.dst.stage_file(path, progress=file, owned=local is None, sha256=digest[0] if digest else None)
            try:
                check_hash(staged.sha256, entry.sha256, entry.path)  # verified before it becomes visible
                staged.place(key, progress=file)
            finally:
                staged.discard()
            if local is not None and file_signature(path) != before:  # the source object was rewritten meanwhile
                self.dst.delete(key)
                raise SourceChangedError(f"the source object of {entry.path} changed while it was copied")
        finally:
            if local is None:
                path.unlink(missing_ok=True)
        file.finish()
        with self._lock:
            self.report.objects += 1
            self.report.bytes_moved += staged.size
        commit.checkpoint("copy-object-stored")

    def _copy_signatures(self, domain: str, n: int, signers: list[str]) -> None:
        for keyid in signers:
            key = keys.signature_key(domain, n, keyid)
            try:
                data = read_capped(self.src, key, limits.SMALL_BYTES, "a signature document")[0]
                doc = SignatureDocument.parse(data, key, domain, n, keyid)
            except KeyNotFoundError:
                continue
            except CorruptRecordError as exc:
                self.report.problems.append(f"{domain}:{n}: signature not copied: {exc}")
                continue
            self.writing()
            if commit.put_signature(self.dst, doc, data, replaces=lambda existing: True):
                self.report.signatures += 1

    def _copy_states(self, plan: _DomainPlan) -> None:
        domain = plan.domain
        in_dst = set(plan.present) | set(plan.copied)
        chosen = plan.src_states if plan.state_names is None else {k: v for k, v in plan.src_states.items() if k in plan.state_names}
        desired = {name: entry for name, entry in chosen.items() if entry.version in in_dst}
        try:
            current = plan.dst.states(self.dst, domain)
        except CorruptRecordError:
            current = {}  # unusable anyway: replaced below (update_states(if_corrupt="replace"))
        removed = set()
        if self.delete:
            removed = {name for name in current if name not in plan.src_states and (plan.state_names is None or name in plan.state_names)}
        changes = {name: e for name, e in desired.items() if name not in current or _differs(current[name], e)}
        if not changes and not removed:
            return
        self.writing()

        def change(states: dict[str, StateEntry]) -> dict[str, StateEntry] | None:
            new = {name: e for name, e in states.items() if name not in removed}
            new.update(changes)
            return new if new.keys() != states.keys() or any(_differs(states[n], e) for n, e in new.items()) else None

        commit.update_states(self.dst, domain, change, if_corrupt="replace")
        self.report.states += [f"{domain}@{name}={e.version}" for name, e in sorted(changes.items())]
        self.report.deleted += [f"{domain}@{name}" for name in sorted(removed)]

    def _copy_head(self, plan: _DomainPlan) -> None:
        """The source's signed head, when the destination holds what it names (see the module docstring)."""
        if not plan.src.has_head:
            return
        signed = LatestDocument.parse(read_document(self.src, keys.latest_key(plan.domain), limits.SMALL_BYTES, "a latest hint")[0]).signed
        try:
            head = SignedPointer.parse(signed, keys.latest_key(plan.domain), "signed.") if signed is not None else None
        except CorruptRecordError:
            return
        if head is None or head.claims().get("version") not in set(plan.present) | set(plan.copied):
            return
        self.writing()
        commit.adopt_head(self.dst, plan.domain, head)

    def _prune(self, plan: _DomainPlan) -> None:
        """Delete the destination's versions of the domain that no state of the destination names
        now (after :meth:`_copy_states`); those a state not being mirrored names are kept."""
        domain = plan.domain
        key = keys.states_key(domain)
        try:
            states = parse_states(read_document(self.dst, key, limits.STATES_BYTES, "the states of a domain")[0], key)
        except CorruptRecordError as exc:  # which versions are in use cannot be told: delete none
            self.report.problems.append(f"{domain}: nothing pruned: {exc}")
            return
        mirrored = set(plan.state_names or ())
        for n in sorted(set(plan.dst.versions) | set(plan.copied)):
            names = sorted(name for name, entry in states.items() if entry.version == n)
            if names:
                if not mirrored & set(names):
                    self.report.kept.append(f"{domain}:{n}")
                continue
            self.writing()
            try:
                commit.delete_version(self.dst, domain, n)
            except (VersionNotFoundError, DomainNotFoundError):
                continue  # deleted meanwhile
            self.report.deleted.append(f"{domain}:{n}")


def _differs(a: StateEntry, b: StateEntry) -> bool:
    return a.version != b.version or a.signed != b.signed


@dataclass
class _DomainPlan:
    domain: str
    src: DomainListing
    dst: DomainListing
    src_states: dict[str, StateEntry]
    #: the states to carry over (``None``: every state of the domain)
    state_names: set[str] | None
    whole: bool
    to_copy: list[int] = field(default_factory=list)
    copied: list[int] = field(default_factory=list)
    present: list[int] = field(default_factory=list)
    records: dict[int, bytes] = field(default_factory=dict)
    parsed: dict[int, VersionRecord] = field(default_factory=dict)
    #: the copies whose ``copied`` events are in the destination's feed, and the last slot seen there
    evented: set[int] = field(default_factory=set)
    feed_seq: int = 0

    @property
    def size(self) -> int:
        return sum(self.parsed[n].size for n in self.to_copy)

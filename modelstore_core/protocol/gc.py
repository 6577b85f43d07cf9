"""Reclaiming what interrupted uploads and deleted versions left behind (``gc``).

An object is garbage when no committed version record references it and no live upload marker
lists it. Liveness is judged by the store alone (:mod:`.liveness`): a run writes its own document
(``gc/<id>.json``, kept fresh by a heartbeat while it runs), whose modification time is the
store's "now"; a marker is live while the store's time since its last heartbeat is under its
lifetime (``max(grace, 5 heartbeats)``). Neither a process id nor any machine's clock is used.

The order of a run:

1. write the run's document (uploads that find it wait, see below), list the objects, the upload
   markers and the records;
2. delete the unreferenced objects no live marker lists; while deleting, list the markers again
   whenever the last listing is more than ``window`` seconds old, and spare what a new marker lists;
3. delete orphan signatures; put in the change feed the events that writers killed after their
   commit left out (:mod:`.feed`: a dead marker is what points at such an upload); delete dead
   markers and the backend's temporary leftovers (older than ``grace`` by the store's clock, never
   those of a live marker's objects); delete the run's document.

A finished upload's marker names the version it committed and stays a grace: its objects are
protected by that version's record (read even if it was committed after the records were listed),
so deleting a version right after its upload lets ``gc`` reclaim its files at once.

Why no committed version can reference a deleted object, even when an upload deduplicates against
an object this run is deleting: an upload writes its marker before it looks for its objects and
checks that they are all there before it commits
(:func:`~modelstore_core.protocol.commit.ensure_objects`). This run deletes an object only within
``window`` seconds of a marker listing that did not show the upload's marker, so within ``window``
of that marker's write; an upload that finds this run's document waits until then before its
check, and one that does not find it either runs after this run's deletes (and sees them) or
before its listings (which then show its marker). A marker stays a grace after its upload ends, so
a run that stalls and resumes still sees the uploads that committed meanwhile. What this rests on:
that this process is not stopped for more than ``window`` seconds between checking the clock and
sending a delete (a stop there is noticed after the delete, and reported among the problems).

A signature document is garbage when its version's record is gone (a delete interrupted between
the two, or a ``sign`` that raced a delete); signatures of committed versions are never touched.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import CorruptRecordError, KeyNotFoundError
from ..storage import Storage
from . import commit, feed, keys, limits
from .limits import read_capped
from .liveness import HOST, Heartbeat, check_grace, lifetime, store_now
from .read import domains_and_strays, read_records, versions_if_any
from .records import GCRunDocument, UploadMarker, dumps, now_utc

#: At most this many seconds between a run's listing of the upload markers and a delete it makes.
MAX_WINDOW = 5.0


@dataclass
class GCReport:
    """What ``gc`` removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    objects: list[str] = field(default_factory=list)
    bytes: int = 0
    markers: list[str] = field(default_factory=list)
    #: markers of uploads that committed, removed a grace after (housekeeping, not leftovers)
    finished: list[str] = field(default_factory=list)
    temporary: list[str] = field(default_factory=list)
    #: signature documents of versions that no longer exist
    signatures: list[str] = field(default_factory=list)
    #: what gc found and left alone: corrupt records (their objects are kept), stray entries, links
    problems: list[str] = field(default_factory=list)
    #: what the stored retention policies deleted first (``ModelStore.gc``; ``None``: not applied)
    retention: Any = None

    @property
    def empty(self) -> bool:
        return not (self.objects or self.markers or self.temporary or self.signatures or (self.retention and self.retention.deleted))


class _Run:
    """This run's document in the store: written first, re-written every heartbeat, deleted last.
    Its modification time is the store's time (:meth:`now`)."""

    def __init__(self, storage: Storage, grace: float, dry_run: bool):
        self.storage = storage
        self.heartbeat = Heartbeat()
        self.window = min(MAX_WINDOW, self.heartbeat.interval)
        self.key = keys.gc_run_key(os.urandom(16).hex())
        self.data = dumps(GCRunDocument(now_utc(), HOST, self.heartbeat.interval, self.window, dry_run).to_json())
        self.grace = grace

    def now(self) -> datetime:
        """The store's time now (the run's document is written again, and its time read back)."""
        self.storage.put(self.key, io.BytesIO(self.data))
        return store_now(self.storage, self.key)

    def __enter__(self) -> _Run:
        self.storage.put(self.key, io.BytesIO(self.data))
        self.heartbeat.add(lambda: self.storage.refresh(self.key, self.data))
        self.heartbeat.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.heartbeat.__exit__()
        self.storage.delete(self.key)


def collect_garbage(storage: Storage, *, grace: float = 3600.0, dry_run: bool = False) -> GCReport:
    grace = check_grace(grace)
    report = GCReport(dry_run=dry_run)
    with _Run(storage, grace, dry_run) as run:
        objects = {info.key.rsplit("/", 1)[-1]: info for info in storage.list(keys.OBJECTS)}
        uploads = Uploads(storage, grace)
        uploads.read(run.now(), report.problems)
        listed_at = time.monotonic()
        domains, stray = domains_and_strays(storage)
        report.problems += [f"domains/{name}/ is not a domain modelstore writes; left alone" for name in stray]
        listed = {(domain, n) for domain in domains for n, _ in versions_if_any(storage, domain)}
        referenced = referenced_objects(storage, listed | uploads.committed, report.problems)

        candidates = set(objects) - referenced - uploads.live if referenced is not None else set()
        commit.checkpoint("gc-listed")
        for sha in sorted(candidates):
            if time.monotonic() - listed_at > run.window:  # uploads that started, or committed, meanwhile
                referenced |= uploads.read_again(run.now(), listed)
                listed_at = time.monotonic()
            if sha in uploads.live or sha in referenced:
                continue
            commit.checkpoint("gc-deleting")
            report.objects.append(keys.object_key(sha))
            report.bytes += objects[sha].size or 0
            if dry_run:
                continue
            storage.delete(keys.object_key(sha))
            if time.monotonic() - listed_at > run.window:  # this process stalled between its listing and the delete
                referenced |= uploads.read_again(run.now(), listed)
                listed_at = time.monotonic()
                if sha in uploads.live or sha in referenced:
                    report.problems.append(
                        f"{keys.object_key(sha)} was deleted after this gc run stalled for more than {run.window:g} s, and an upload"
                        " that started meanwhile stores it: `modelstore verify` names the version if it lacks it; uploading"
                        " the same file again restores it"
                    )
        for key in orphan_signatures(storage, domains, listed):
            report.signatures.append(key)
            if not dry_run:
                storage.delete(key)
        if not dry_run:  # before the markers go: an upload killed after its commit gets its event (:mod:`.feed`)
            for domain in sorted(uploads.unfinished & set(domains)):
                feed.settle_uploads(storage, domain)
            for domain in domains:
                feed.settle_states(storage, domain)
        for key in uploads.dead:
            (report.finished if key in uploads.finished else report.markers).append(key)
            if not dry_run:
                storage.delete(key)
        now = run.now()
        uploads.read_again(now, listed)
        protected = frozenset(keys.object_key(sha) for sha in uploads.live)
        cleaned = storage.cleanup(now.timestamp() - lifetime(grace, 0.0, storage.time_resolution), dry_run=dry_run, protected=protected)
        report.temporary = [c for c in cleaned if not c.startswith("refused: ")]
        report.problems += [c.removeprefix("refused: ") for c in cleaned if c.startswith("refused: ")]
        for key in stale_runs(storage, now, grace):
            report.markers.append(key)
            if not dry_run:
                storage.delete(key)
    return report


class Uploads:
    """What the upload markers say (``now``: the store's time): the objects that live uploads are
    storing, the versions finished uploads committed (whose records protect their objects, even
    one committed after this run listed the records), and the markers past their lifetime.

    A marker that is not valid protects nothing (it cannot say what); it is removed once older than
    ``grace``, like a dead one. A finished marker never changes again: it is read once.
    """

    def __init__(self, storage: Storage, grace: float):
        self.storage, self.grace = storage, grace
        self.live: set[str] = set()
        self.committed: set[tuple[str, int]] = set()
        self.dead: list[str] = []
        self.finished: set[str] = set()
        #: domains of markers whose upload never said it finished (dead or alive)
        self.unfinished: set[str] = set()
        self._known: dict[str, UploadMarker] = {}

    def read(self, now: datetime, problems: list[str]) -> None:
        self.live, self.committed, self.dead = set(), set(), []
        for info in self.storage.list(keys.UPLOADS):
            age = (now - info.modified).total_seconds() if info.modified is not None else float("inf")
            try:
                marker = self._known.get(info.key) or UploadMarker.parse(
                    read_capped(self.storage, info.key, limits.RECORD_BYTES, "an upload marker")[0], info.key
                )
                if marker.version is not None:
                    self._known[info.key] = marker
            except KeyNotFoundError:
                continue  # removed meanwhile
            except CorruptRecordError as exc:
                problems.append(str(exc))
                if age >= self.grace:
                    self.dead.append(info.key)
                continue
            if marker.version is None:
                self.unfinished.add(marker.domain)
            if age >= lifetime(self.grace, marker.heartbeat, self.storage.time_resolution):
                self.dead.append(info.key)
                if marker.version is not None:
                    self.finished.add(info.key)
            elif marker.version is not None:
                self.committed.add((marker.domain, marker.version))
            else:
                self.live.update(marker.objects)

    def read_again(self, now: datetime, listed: set[tuple[str, int]]) -> set[str]:
        """Read the markers again; the objects of the versions committed since ``listed`` was taken."""
        self.read(now, [])
        records, _ = read_records(self.storage, sorted(self.committed - listed))
        return {f.sha256 for record in records for f in record.files}


def stale_runs(storage: Storage, now: datetime, grace: float) -> list[str]:
    """Documents of other ``gc`` runs that stopped beating a grace ago (a run that was killed)."""
    return [
        info.key
        for info in storage.list(keys.GC_RUNS)
        if info.modified is not None and (now - info.modified).total_seconds() >= lifetime(grace, MAX_WINDOW, storage.time_resolution)
    ]


def referenced_objects(storage: Storage, pairs: set[tuple[str, int]], problems: list[str]) -> set[str] | None:
    """sha256 of every file of the committed versions ``pairs``; ``None`` when a record cannot be
    read, since then nobody can tell which objects it needs (gc must not make a damaged version worse)."""
    records, corrupt = read_records(storage, sorted(pairs))
    for error in corrupt:
        problems.append(f"{error} (no object is collected until it is fixed or its version deleted)")
    if corrupt:
        return None
    return {f.sha256 for record in records for f in record.files}


def orphan_signatures(storage: Storage, domains: list[str], listed: set[tuple[str, int]]) -> list[str]:
    """Keys of signature documents whose version record does not exist. A version ``listed``
    earlier needs no check; any other is checked now (it may have been committed since)."""
    orphans = []
    for domain in domains:
        by_version: dict[int, list[str]] = {}
        for info in storage.list(keys.signatures_prefix(domain)):
            found = keys.signature_from_key(info.key)
            if found is not None:
                by_version.setdefault(found[0], []).append(info.key)
        for version, found_keys in sorted(by_version.items()):
            if (domain, version) not in listed and storage.stat(keys.version_key(domain, version)) is None:
                orphans += found_keys
    return orphans

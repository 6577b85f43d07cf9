"""Reclaiming what interrupted uploads and deleted versions left behind.

An object is garbage when no committed version record references it and no live upload
marker lists it. A marker is live while its process runs (same machine) or, for a writer on
another machine, until it is older than ``grace``. Uploads write their marker before they store
or look for an object, and ``gc`` lists objects, then markers, then records, then markers again
just before deleting, so an upload that starts while ``gc`` runs keeps the objects it writes.

A signature document is garbage when its version's record is gone (a delete interrupted between
the two, or a ``sign`` that raced a delete); signatures of committed versions are never touched.
An upload creates its record before its signature, so a signature listed here whose record exists
always stays.

One narrow race remains: an upload that finds an object already stored (deduplication) whose
only version was deleted, in the milliseconds between ``gc``'s last marker listing and its
delete, would commit a version missing that file (``verify`` reports it; re-uploading repairs
it). Closing it needs a lock or a grace period on unreferenced objects; run ``gc`` when nobody
re-uploads deleted models, or not at all during such uploads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from .errors import CorruptRecordError, KeyNotFoundError
from .liveness import process_alive
from .protocol import keys, limits
from .protocol.limits import read_capped
from .protocol.read import domains_and_strays, read_records, versions_if_any
from .protocol.records import UploadMarker
from .storage import Storage


@dataclass
class GCReport:
    """What ``gc`` removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    objects: list[str] = field(default_factory=list)
    bytes: int = 0
    markers: list[str] = field(default_factory=list)
    temporary: list[str] = field(default_factory=list)
    #: signature documents of versions that no longer exist
    signatures: list[str] = field(default_factory=list)
    #: what gc found and left alone: corrupt records (their objects are kept), stray entries, links
    problems: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.objects or self.markers or self.temporary or self.signatures)


def collect_garbage(storage: Storage, *, grace: float = 3600.0, dry_run: bool = False) -> GCReport:
    now = time.time()
    report = GCReport(dry_run=dry_run)
    objects = {info.key.rsplit("/", 1)[-1]: info for info in storage.list(keys.OBJECTS)}
    live, dead = read_markers(storage, now, grace, report.problems)
    domains, stray = domains_and_strays(storage)
    report.problems += [f"domains/{name}/ is not a domain modelstore writes; left alone" for name in stray]
    listed = [(domain, n) for domain in domains for n, _ in versions_if_any(storage, domain)]
    referenced = referenced_objects(storage, listed, report.problems)

    candidates = set(objects) - referenced - live if referenced is not None else set()
    if candidates:
        live_again, _ = read_markers(storage, time.time(), grace, [])  # uploads that started meanwhile
        candidates -= live_again
    for sha in sorted(candidates):
        report.objects.append(keys.object_key(sha))
        report.bytes += objects[sha].size or 0
        if not dry_run:
            storage.delete(keys.object_key(sha))
    for key in orphan_signatures(storage, domains, set(listed)):
        report.signatures.append(key)
        if not dry_run:
            storage.delete(key)
    for key in dead:
        report.markers.append(key)
        if not dry_run:
            storage.delete(key)
    cleaned = storage.cleanup(now - grace, dry_run=dry_run)
    report.temporary = [c for c in cleaned if not c.startswith("refused: ")]
    report.problems += [c.removeprefix("refused: ") for c in cleaned if c.startswith("refused: ")]
    return report


def read_markers(storage: Storage, now: float, grace: float, problems: list[str]) -> tuple[set[str], list[str]]:
    """Objects protected by live upload markers, and the keys of dead markers.

    A marker that is not valid protects nothing (it cannot say what); it is removed once older than
    ``grace``, like a dead one.
    """
    live: set[str] = set()
    dead: list[str] = []
    for info in storage.list(keys.UPLOADS):
        try:
            marker = UploadMarker.parse(read_capped(storage, info.key, limits.RECORD_BYTES, "an upload marker")[0], info.key)
        except KeyNotFoundError:
            continue  # finished meanwhile
        except CorruptRecordError as exc:
            problems.append(str(exc))
            if info.modified is not None and now - info.modified.timestamp() >= grace:
                dead.append(info.key)
            continue
        alive = process_alive(marker.host, marker.pid)
        started = datetime.fromisoformat(marker.started).timestamp()
        if alive or (alive is None and now - started < grace):
            live.update(marker.objects)
        else:
            dead.append(info.key)
    return live, dead


def referenced_objects(storage: Storage, pairs: list[tuple[str, int]], problems: list[str]) -> set[str] | None:
    """sha256 of every file of the committed versions ``pairs``; ``None`` when a record cannot be
    read, since then nobody can tell which objects it needs (gc must not make a damaged version worse)."""
    records, corrupt = read_records(storage, pairs)
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

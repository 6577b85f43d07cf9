"""Reclaiming what interrupted uploads and deleted versions left behind.

An object is garbage when no committed version record references it and no live upload
marker lists it. A marker is live while its process runs (same machine) or, for a writer on
another machine, until it is older than ``grace``. Uploads write their marker before they store
or look for an object, and ``gc`` lists objects, then markers, then records, then markers again
just before deleting, so an upload that starts while ``gc`` runs keeps the objects it writes.

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
from .protocol import keys
from .protocol.read import list_domains, list_versions, read_records
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

    @property
    def empty(self) -> bool:
        return not (self.objects or self.markers or self.temporary)


def collect_garbage(storage: Storage, *, grace: float = 3600.0, dry_run: bool = False) -> GCReport:
    now = time.time()
    report = GCReport(dry_run=dry_run)
    objects = {info.key.rsplit("/", 1)[-1]: info for info in storage.list(keys.OBJECTS)}
    live, dead = read_markers(storage, now, grace)
    referenced = referenced_objects(storage)

    candidates = set(objects) - referenced - live
    if candidates:
        live_again, _ = read_markers(storage, time.time(), grace)  # uploads that started meanwhile
        candidates -= live_again
    for sha in sorted(candidates):
        report.objects.append(keys.object_key(sha))
        report.bytes += objects[sha].size or 0
        if not dry_run:
            storage.delete(keys.object_key(sha))
    for key in dead:
        report.markers.append(key)
        if not dry_run:
            storage.delete(key)
    report.temporary = storage.cleanup(now - grace, dry_run=dry_run)
    return report


def read_markers(storage: Storage, now: float, grace: float) -> tuple[set[str], list[str]]:
    """Objects protected by live upload markers, and the keys of dead markers."""
    live: set[str] = set()
    dead: list[str] = []
    for info in storage.list(keys.UPLOADS):
        try:
            marker = UploadMarker.parse(storage.read(info.key)[0], info.key)
        except (KeyNotFoundError, CorruptRecordError):
            continue  # finished meanwhile, or not ours
        alive = process_alive(marker.host, marker.pid)
        started = datetime.fromisoformat(marker.started).timestamp()
        if alive or (alive is None and now - started < grace):
            live.update(marker.objects)
        else:
            dead.append(info.key)
    return live, dead


def referenced_objects(storage: Storage) -> set[str]:
    """sha256 of every file of every committed version."""
    pairs = [(domain, n) for domain in list_domains(storage) for n, _ in list_versions(storage, domain)]
    return {f.sha256 for record in read_records(storage, pairs) for f in record.files}

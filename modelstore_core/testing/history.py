"""Many versions or domains quickly, for tests and benchmarks of what an operation costs at 1,000 versions.

::

    from modelstore_core.testing.history import build_domains, build_history, commit_copies

    last, files = build_history(store, "d", 1001, tmp_path)      # versions 1 to 1,001

    first = store.upload("e", files=[model]).metadata            # version 1, a real upload
    commit_copies(store, "e", first, range(2, 1001))             # versions 2 to 1,000
    assert store.upload("e", files=[model]).version == 1001      # and on from there

    names = build_domains(store, 10_000, tmp_path)               # d00000 to d09999, a version each
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..protocol import commit, feed
from ..protocol.records import Change
from ..version import Version

#: Versions :func:`commit_copies` commits between two moves of the latest hint.
BATCH = 100


def commit_copies(store, domain: str, record: dict, numbers: Iterable[int], workers: int = 16, events: bool = False) -> None:
    """Commit a copy of the version record ``record`` as each version in ``numbers``.

    Each goes through the core's own commit (:func:`~modelstore_core.protocol.commit.create_record`:
    claim, then create the record), starting its claim at the wanted number, concurrently on
    ``workers`` threads, :data:`BATCH` at a time; after each batch the latest hint moves forward to
    its highest. The copies refer to ``record``'s objects, which must be stored already (upload it
    first). Far quicker than as many uploads: no files, no markers. With ``events``, each has its
    ``uploaded`` event in the change feed (appended after its batch, in version order); without, they
    are taken as versions from before the feed (none).
    """
    numbers = list(numbers)
    draft = {k: v for k, v in record.items() if k not in ("version", "created")}

    def commit_one(n: int) -> Change | None:
        committed, _, change = commit.create_record(store.storage, domain, draft, first=n, events=events)
        if committed.version != n:
            raise RuntimeError(f"version {n} of {domain!r} exists already (committed as {committed.version})")
        return change

    # In batches, the feed's place moving on after each: a claim lists the feed from there (a page).
    for start in range(0, len(numbers), BATCH):
        batch = numbers[start : start + BATCH]
        with ThreadPoolExecutor(workers) as pool:
            changes = list(pool.map(commit_one, batch))
        # The events one at a time, in version order: concurrent appends would race for each slot.
        seqs = [feed.append(store.storage, change) for change in changes if change is not None]
        commit.advance_latest(store.storage, domain, max(batch), evented=set(batch), seq=max(seqs, default=0))


def build_history(store, domain: str, n: int, directory: Path) -> tuple[Version, list[Path]]:
    """Versions 1 to ``n`` of ``domain``, ``n`` >= 2: versions 1 and ``n`` are real uploads of two and
    three new random files (written into ``directory``); those between are copies of version 1's
    record (:func:`commit_copies`). Returns version ``n`` and the five files, version 1's first."""
    files = []
    for i in range(5):
        files.append(directory / f"f{i}.bin")
        files[-1].write_bytes(os.urandom(50_000 + i))
    first = store.upload(domain, files=files[:2]).metadata
    commit_copies(store, domain, first, range(2, n))
    last = store.upload(domain, files=files[2:])
    if last.version != n:
        raise RuntimeError(f"{domain!r} has versions already: the last upload is version {last.version}, not {n}")
    return last, files


def build_domains(store, n: int, directory: Path, workers: int = 16) -> list[str]:
    """``n`` domains of one version each, named ``d00000``, ``d00001``...: the first a real upload
    of a small random file (written into ``directory``), the others copies of its record committed
    as the core commits a version (claim, record, latest hint), concurrently, without events (as
    versions from before the change feed). Returns the names."""
    names = [f"d{i:05d}" for i in range(n)]
    model = directory / "domain-model.bin"
    model.write_bytes(os.urandom(1000))
    first = store.upload(names[0], files=[model]).metadata
    draft = {k: v for k, v in first.items() if k not in ("version", "created")}

    def commit_one(name: str) -> None:
        committed, known, _ = commit.create_record(store.storage, name, {**draft, "domain": name}, events=False)
        commit.advance_latest(store.storage, name, committed.version, known)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(commit_one, names[1:]))
    return names

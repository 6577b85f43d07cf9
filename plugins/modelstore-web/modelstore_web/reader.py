"""What the pages read from the store: each read bounded, and kept for a few seconds.

Every storage request a page makes happens here, in calls whose cost does not grow with the store
beyond the listings (a listing is one request per 1,000 keys):

============================  ===========================================================
page                          storage requests (on a cache miss)
============================  ===========================================================
domains (50 a page)           one listing of ``domains/`` + at most 5 per domain shown (latest
                              hint, listing from it, its record, ``states.json``, and a listing
                              when the domain has no states)
a domain's versions           ``find`` (one domain: one listing and one summary read per 1,000
                              versions, no record) + ``states.json``
a version                     its record + ``states.json``
compare                       ``compare`` (a record per version, at most 10) + ``states.json``
plot                          as a domain's versions, at most 200 points
a file                        its record (cached) + the version's objects not in the verified cache
============================  ===========================================================

``states.json`` costs a listing more when the domain has no states (is the domain there at all?).

Results (and not-found answers) are kept ``ttl`` seconds, so reloading a page or following its
links costs nothing more; new versions, moved states and deletions show up after
at most ``ttl`` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cachetools import TTLCache

from modelstore_core import ModelStore, ModelStoreError, NotFoundError, UsageError, Version

if TYPE_CHECKING:
    from modelstore_core.protocol.summary import SummaryEntry

#: Domains on one page of the domains list.
DOMAINS_PER_PAGE = 50
#: Versions one page lists by default, and at most.
DEFAULT_LIMIT, MAX_LIMIT = 50, 500
#: Versions one comparison shows at most.
MAX_COMPARE = 10
#: Versions one plot draws at most (the newest).
PLOT_POINTS = 200
#: Storage requests in flight at once for one page.
WORKERS = 16

T = TypeVar("T")


@dataclass(frozen=True)
class DomainRow:
    name: str
    latest: int | None = None
    created: datetime | None = None
    flavor: str | None = None
    states: dict[str, int] = field(default_factory=dict)
    problem: str | None = None


@dataclass(frozen=True)
class VersionRow:
    """One version as the versions table shows it: what ``find``'s summary holds, and its states."""

    entry: SummaryEntry
    states: list[str]


@dataclass(frozen=True)
class Listing:
    """A domain's versions as a page shows them, and what ``find`` found wrong on the way."""

    rows: list[VersionRow]
    problems: list[str]
    states: dict[str, int]

    @property
    def metric_names(self) -> list[str]:
        return sorted({name for row in self.rows for name in row.entry.metrics})


class _Failed:
    """A remembered error: a missing domain costs no more requests than a present one."""

    def __init__(self, error: ModelStoreError):
        self.error = error


class StoreReader:
    """The store as the web pages read it.

    :param store: the store to show.
    :param ttl: seconds a result is kept (0: every page reads the store again).
    """

    def __init__(self, store: ModelStore, ttl: float = 5.0):
        self.store = store
        self.ttl = ttl
        self._cache: TTLCache | None = TTLCache(maxsize=1024, ttl=ttl) if ttl > 0 else None
        self._lock = threading.Lock()

    def _cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        if self._cache is None:
            return compute()
        with self._lock:
            found = self._cache.get(key)
        if found is None:
            try:
                found = compute()
            except ModelStoreError as exc:
                found = _Failed(exc)
            with self._lock:
                self._cache[key] = found
        if isinstance(found, _Failed):
            raise found.error
        return found

    # --- domains --------------------------------------------------------------------------

    def domains(self) -> list[str]:
        return self._cached(("domains",), self.store.list_domains)

    def domain_rows(self, names: list[str]) -> list[DomainRow]:
        """The latest version and the states of each of ``names`` (at most 5 requests each, 16 at a time)."""
        return self._cached(("domain-rows", tuple(names)), lambda: _map(self._domain_row, names))

    def _domain_row(self, name: str) -> DomainRow:
        try:
            latest = self.store.latest(name)
            states = self.store.states(name)
            return DomainRow(name, latest.version, latest.created, latest.flavor.name, states)
        except ModelStoreError as exc:  # deleted meanwhile, or its newest record is corrupt
            return DomainRow(name, problem=str(exc))

    # --- versions ---------------------------------------------------------------------------

    def states(self, domain: str) -> dict[str, int]:
        return self._cached(("states", domain), lambda: self.store.states(domain))

    def listing(self, domain: str, where: tuple[str, ...] = (), sort: str | None = None, limit: int = DEFAULT_LIMIT) -> Listing:
        """The versions of ``domain`` that match every ``where`` expression, in ``sort`` order
        (newest first by default), at most ``limit``."""

        def compute() -> Listing:
            problems: list[str] = []
            found = self.store.find(domain, where=list(where), sort=sort, limit=limit, problems=problems)
            states = self.store.states(domain)
            by_version: dict[int, list[str]] = {}
            for name, n in sorted(states.items()):
                by_version.setdefault(n, []).append(name)
            rows = [VersionRow(v.summary, by_version.get(v.version, [])) for v in found if v.summary is not None]
            return Listing(rows, problems, states)

        return self._cached(("listing", domain, where, sort, limit), compute)

    def version(self, domain: str, version: int) -> Version:
        """The version with its record read (one request)."""
        return self._cached(("version", domain, version), lambda: self.store.info(domain, version))

    def compare(self, domain: str, versions: tuple[int, ...], directions: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
        """``store.compare(...).to_dict()``: the table of ``modelstore compare`` (``directions``:
        ``(metric, "higher" | "lower")`` pairs for metrics whose name does not say)."""
        if not 2 <= len(versions) <= MAX_COMPARE:
            raise UsageError(f"compare takes 2 to {MAX_COMPARE} versions, not {len(versions)}")
        key = ("compare", domain, versions, directions)
        return self._cached(key, lambda: self.store.compare(domain, list(versions), directions=dict(directions)).to_dict())

    def series(self, domain: str, metric: str) -> tuple[list[tuple[int, float]], list[str]]:
        """``(version, value)`` of ``metric`` for the newest versions that recorded it, oldest
        first, and every metric name those versions have."""
        listing = self.listing(domain, (), None, PLOT_POINTS)
        points = sorted((row.entry.version, row.entry.metrics[metric]) for row in listing.rows if metric in row.entry.metrics)
        return points, listing.metric_names

    # --- files ------------------------------------------------------------------------------

    def verified_file(self, domain: str, version: int, *, index: int | None = None, path: str | None = None) -> tuple[Any, Path]:
        """One file of a version's record (by its index in the record, or its exact recorded path),
        as a local path in the core's verified cache: the version's files are fetched (from a
        remote store) and checked against their sha256 before this returns, and a file that fails
        raises :class:`~modelstore_core.IntegrityError`. Nothing from the request touches the
        file system: the path is the cache's own view of the record.
        """
        v = self.version(domain, version)
        files = v.files
        if index is not None:
            if not 0 <= index < len(files):
                raise NotFoundError(f"{domain} version {version} has {len(files)} files: no file number {index}")
            entry = files[index]
        else:
            matches = [f for f in files if f.path == path]
            if not matches:
                raise NotFoundError(f"{domain} version {version} has no file {str(path)[:200]!r}")
            entry = matches[0]
        # the same rules as store.download (the trust policy), verified (hashed unless proven since it last was)
        return entry, self.store.file_path(domain, v, path=entry.path)


def _map(function: Callable[[str], T], items: list[str]) -> list[T]:
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        return list(pool.map(function, items))

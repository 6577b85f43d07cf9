"""The read path: domains, versions, the latest one, records and states, over the storage primitives.

Request costs: ``latest`` is one read of the hint plus one listing that starts at the hint (on a
backend that cannot list from a key cheaply, the local one: a few ``stat`` calls from the hint);
``list_versions`` is one listing (a page per 1,000 versions), and the ``limit`` newest are one
listing from just below the latest (or ``limit`` ``stat`` calls); ``states`` is one read. No
operation reads every version record.
"""

from __future__ import annotations

from ..errors import (
    CorruptRecordError,
    DocumentTooLargeError,
    DomainNotFoundError,
    InvalidNameError,
    KeyNotFoundError,
    StateNotFoundError,
    VersionNotFoundError,
)
from ..names import check_name
from ..storage import ObjectInfo, Storage, Token
from . import keys, limits
from .cas import read_document
from .limits import read_capped
from .records import StateEntry, VersionRecord, parse_latest_hint, parse_states

#: Record reads in flight at once when many are needed (remote stores answer them in parallel).
READ_WORKERS = 16


def domain_exists(storage: Storage, domain: str) -> bool:
    """Whether anything is stored under the domain's prefix: its latest hint (one ``stat``, which
    every domain with a version has), else the first key of a listing."""
    if storage.stat(keys.latest_key(domain)) is not None:
        return True
    return next(iter(storage.list(keys.domain_prefix(domain))), None) is not None


def not_found(storage: Storage, domain: str, version: int | None = None) -> Exception:
    """The right error for a missing version: its domain may not exist at all."""
    if not domain_exists(storage, domain):
        return DomainNotFoundError(domain)
    return VersionNotFoundError(domain, version)


def list_domains(storage: Storage) -> list[str]:
    """The domains: ``domains/<name>/`` prefixes whose name is a valid domain name (see :func:`domains_and_strays`)."""
    return domains_and_strays(storage)[0]


def domains_and_strays(storage: Storage) -> tuple[list[str], list[str]]:
    """From one listing: the domains, and the entries under ``domains/`` that are not domains
    (names modelstore never writes: reported, never used)."""
    names = [info.key[len(keys.DOMAINS) : -1] for info in storage.list(keys.DOMAINS, delimiter="/") if info.is_prefix]
    return [n for n in names if _valid_name(n)], [n for n in names if not _valid_name(n)]


def _valid_name(name: str) -> bool:
    try:
        check_name(name)
    except InvalidNameError:
        return False
    return True


def list_versions(storage: Storage, domain: str) -> list[tuple[int, ObjectInfo]]:
    """Every committed version, newest first, from one listing."""
    found = [(n, info) for info in storage.list(keys.versions_prefix(domain)) if (n := keys.version_from_key(info.key))]
    if not found and not domain_exists(storage, domain):
        raise DomainNotFoundError(domain)
    return sorted(found, key=lambda item: item[0], reverse=True)


def every_version(storage: Storage, max_keys: int | None = None) -> dict[str, list[tuple[int, ObjectInfo]]] | None:
    """Every domain and its committed versions (newest first) from one listing of all of
    ``domains/``: a request per page of keys, however many domains. ``None`` when that holds more
    than ``max_keys`` keys (then list domain by domain: a small store costs a page or two instead
    of one listing per domain)."""
    found: dict[str, list[tuple[int, ObjectInfo]]] = {}
    for i, info in enumerate(storage.list(keys.DOMAINS)):
        if max_keys is not None and i >= max_keys:
            return None
        name, slash, rest = info.key[len(keys.DOMAINS) :].partition("/")
        if not slash:
            continue  # an object beside the domains, not a domain
        if name not in found:
            if not _valid_name(name):
                continue
            found[name] = []
        if rest.startswith("versions/") and (n := keys.version_from_key(info.key)):  # as list_versions reads them
            found[name].append((n, info))
    return {name: sorted(versions, key=lambda item: item[0], reverse=True) for name, versions in sorted(found.items())}


def versions_if_any(storage: Storage, domain: str) -> list[tuple[int, ObjectInfo]]:
    """:func:`list_versions`, empty for a domain deleted meanwhile (for walks over a whole store)."""
    try:
        return list_versions(storage, domain)
    except DomainNotFoundError:
        return []


def read_latest_hint(storage: Storage, domain: str) -> tuple[int, bytes | None, Token]:
    """The version ``latest.json`` names (0 if absent or unusable), with the bytes and token read."""
    try:
        data, token = read_document(storage, keys.latest_key(domain), limits.SMALL_BYTES, "a latest hint")
    except DocumentTooLargeError as exc:  # unusable, like any damaged hint: readers list past it, a writer replaces it
        return 0, b"", exc.token
    return parse_latest_hint(data) or 0, data, token


#: Single keys a backend without cheap listings from a key (``Storage.lists_from_a_key``) probes
#: before it falls back to listing the whole domain (a hint far behind, many deleted versions).
MAX_PROBES = 64


def latest(storage: Storage, domain: str) -> tuple[int, ObjectInfo]:
    """The newest committed version: read the hint, then list from it (it may lag, never lead)."""
    hint, _, _ = read_latest_hint(storage, domain)
    if not storage.lists_from_a_key:
        found = _latest_by_probing(storage, domain, hint)
        if found is not None:
            return found
    start = keys.version_key(domain, hint)[: -len(".json")] if hint else None  # sorts just before the hint's key
    newest = None
    for info in storage.list(keys.versions_prefix(domain), start_after=start):
        if (n := keys.version_from_key(info.key)) is not None:
            newest = (n, info)
    if newest is None and hint:
        # The hinted version was deleted and nothing is newer: fall back to a full listing.
        for info in storage.list(keys.versions_prefix(domain)):
            if (n := keys.version_from_key(info.key)) is not None:
                newest = (n, info)
    if newest is None:
        raise not_found(storage, domain)
    return newest


def _latest_by_probing(storage: Storage, domain: str, hint: int) -> tuple[int, ObjectInfo] | None:
    """The newest version from the hint by ``stat`` of single keys, or ``None`` (list instead).

    A version number is claimed (``claims/<n>``) before its record is written, claims are never
    removed while the domain lives, and an uploader claims the lowest free number above the hint
    it read (or above the last claim): so the claims above the hint are consecutive, and every
    version newer than the hint has one of them. The newest version is the highest of those (or
    the hint's own) whose record exists. A missing record (the hint's version deleted, claims
    whose uploads failed) or a long run of claims falls back to a listing.
    """
    if hint < 1:
        return None
    top = hint
    while storage.stat(keys.claim_key(domain, top + 1)) is not None:
        top += 1
        if top - hint > MAX_PROBES:
            return None
    for n in range(top, max(hint - 1, 0), -1):
        info = storage.stat(keys.version_key(domain, n))
        if info is not None:
            return n, info
    return None


def newest_versions(storage: Storage, domain: str, limit: int) -> list[tuple[int, ObjectInfo]]:
    """The ``limit`` newest committed versions, newest first, without listing the whole domain:
    from the latest, a listing that starts just below it (widened while deleted versions leave it
    short), or on a backend without cheap listings from a key, ``stat`` of each number downwards."""
    try:
        top, info = latest(storage, domain)
    except VersionNotFoundError:
        return []
    if not storage.lists_from_a_key:
        found = [(top, info)]
        for n in range(top - 1, max(top - limit - MAX_PROBES, 0), -1):
            if len(found) >= limit:
                return found
            if (info := storage.stat(keys.version_key(domain, n))) is not None:
                found.append((n, info))
        if len(found) >= limit or top - limit - MAX_PROBES <= 0:
            return found
        return list_versions(storage, domain)[:limit]
    window = limit
    while top - window > 0:
        listing = storage.list(keys.versions_prefix(domain), start_after=keys.version_key(domain, top - window))
        found = [(n, info) for info in listing if (n := keys.version_from_key(info.key))]
        if len(found) >= limit:
            return sorted(found, key=lambda item: item[0], reverse=True)[:limit]
        window *= 8
    return list_versions(storage, domain)[:limit]


def read_record(storage: Storage, domain: str, version: int) -> VersionRecord:
    try:
        return _read_record(storage, domain, version)
    except KeyNotFoundError:
        raise not_found(storage, domain, version) from None


def _read_record(storage: Storage, domain: str, version: int) -> VersionRecord:
    key = keys.version_key(domain, version)
    return VersionRecord.parse(read_capped(storage, key, limits.RECORD_BYTES, "a version record")[0], key, domain, version)


def read_records(storage: Storage, pairs: list[tuple[str, int]]) -> tuple[list[VersionRecord], list[CorruptRecordError]]:
    """The records of ``(domain, version)`` pairs, read concurrently, in order, and the errors of
    those that failed validation (reported by the caller, never fatal to the others). Versions
    deleted meanwhile are left out."""

    def read(pair: tuple[str, int]) -> VersionRecord | CorruptRecordError | None:
        try:
            return _read_record(storage, *pair)
        except KeyNotFoundError:
            return None
        except CorruptRecordError as exc:
            return exc

    if len(pairs) < 2:
        found = [read(pair) for pair in pairs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(pairs))) as pool:
            found = list(pool.map(read, pairs))
    return [r for r in found if isinstance(r, VersionRecord)], [r for r in found if isinstance(r, CorruptRecordError)]


def read_states(storage: Storage, domain: str) -> dict[str, StateEntry]:
    key = keys.states_key(domain)
    return parse_states(read_document(storage, key, limits.STATES_BYTES, "the states of a domain")[0], key)


def state_version(storage: Storage, domain: str, state: str) -> int:
    states = read_states(storage, domain)
    if state not in states:
        if not domain_exists(storage, domain):
            raise DomainNotFoundError(domain)
        raise StateNotFoundError(domain, state)
    return states[state].version

"""Reading versions, resolving the latest one, states, and deletion, over the storage primitives.

Request costs (the same on every backend): ``latest`` is one read of the hint plus one listing
that starts at the hint; ``list_versions`` is one listing (a page per 1,000 versions); ``states``
is one read. No operation reads every version record.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timezone
from typing import Any

from . import layout
from .errors import (
    ConflictError,
    DomainNotFoundError,
    KeyNotFoundError,
    StateNotFoundError,
    VersionNotFoundError,
)
from .storage import ObjectInfo, Storage

MAX_CAS_ATTEMPTS = 100


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False).encode()


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")



# --- the latest-version hint ------------------------------------------------------------


def read_latest_hint(storage: Storage, domain: str) -> tuple[int, Any]:
    """The ``latest.json`` hint (0 if absent) and its compare-and-swap token (None if absent)."""
    try:
        data, token = storage.read(layout.latest_key(domain))
    except KeyNotFoundError:
        return 0, None
    try:
        return int(json.loads(data)["version"]), token
    except (ValueError, KeyError, TypeError):
        return 0, token  # unreadable hint: readers fall back to a listing


def advance_latest(storage: Storage, domain: str, version: int, known: tuple[int, Any] | None = None) -> None:
    """Move the hint to ``version`` unless it already points at a newer one. Best effort.

    ``known`` is a ``(hint, token)`` read earlier: tried first, re-read only if it went stale.
    """
    for _ in range(MAX_CAS_ATTEMPTS):
        current, token = known if known is not None else read_latest_hint(storage, domain)
        known = None
        if current >= version:
            return
        if set_latest_hint(storage, domain, version, token):
            return


def set_latest_hint(storage: Storage, domain: str, version: int | None, token: Any) -> bool:
    key = layout.latest_key(domain)
    data = dumps({"version": version or 0})
    if token is None:
        return storage.put_if_absent(key, data)
    return storage.compare_and_swap(key, data, token)



def domain_exists(storage: Storage, domain: str) -> bool:
    return next(iter(storage.list(layout.domain_prefix(domain))), None) is not None


def not_found(storage: Storage, domain: str, version: int | None = None) -> Exception:
    """The right error for a missing version: its domain may not exist at all."""
    if not domain_exists(storage, domain):
        return DomainNotFoundError(domain)
    return VersionNotFoundError(domain, version)


def list_domains(storage: Storage) -> list[str]:
    return [info.key[len(layout.DOMAINS) : -1] for info in storage.list(layout.DOMAINS, delimiter="/") if info.is_prefix]


def list_versions(storage: Storage, domain: str) -> list[tuple[int, ObjectInfo]]:
    """Every committed version, newest first, from one listing."""
    found = [(n, info) for info in storage.list(layout.versions_prefix(domain)) if (n := layout.version_from_key(info.key))]
    if not found and not domain_exists(storage, domain):
        raise DomainNotFoundError(domain)
    return sorted(found, key=lambda item: item[0], reverse=True)


def latest(storage: Storage, domain: str) -> tuple[int, ObjectInfo]:
    """The newest committed version: read the hint, then list from it (it may lag, never lead)."""
    hint, _ = read_latest_hint(storage, domain)
    start = layout.version_key(domain, hint)[: -len(".json")] if hint else None  # sorts just before the hint's key
    newest = None
    for info in storage.list(layout.versions_prefix(domain), start_after=start):
        if (n := layout.version_from_key(info.key)) is not None:
            newest = (n, info)
    if newest is None and hint:
        # The hinted version was deleted and nothing is newer: fall back to a full listing.
        for info in storage.list(layout.versions_prefix(domain)):
            if (n := layout.version_from_key(info.key)) is not None:
                newest = (n, info)
    if newest is None:
        raise not_found(storage, domain)
    return newest


def read_record(storage: Storage, domain: str, version: int) -> dict[str, Any]:
    try:
        data, _ = storage.read(layout.version_key(domain, version))
    except KeyNotFoundError:
        raise not_found(storage, domain, version) from None
    return json.loads(data)


#: Record reads in flight at once when many are needed (remote stores answer them in parallel).
READ_WORKERS = 16


def read_records(storage: Storage, pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """The records of ``(domain, version)`` pairs, read concurrently, in order; versions deleted
    meanwhile are left out."""

    def read(pair: tuple[str, int]) -> dict[str, Any] | None:
        try:
            return json.loads(storage.read(layout.version_key(*pair))[0])
        except KeyNotFoundError:
            return None

    if len(pairs) < 2:
        found = [read(pair) for pair in pairs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(pairs))) as pool:
            found = list(pool.map(read, pairs))
    return [record for record in found if record is not None]


# --- states ------------------------------------------------------------------------


def read_states(storage: Storage, domain: str) -> tuple[dict[str, dict[str, Any]], Any]:
    """``{state: {"version": n, "updated": iso}}`` and the compare-and-swap token (None if no states yet)."""
    try:
        data, token = storage.read(layout.states_key(domain))
    except KeyNotFoundError:
        return {}, None
    return json.loads(data).get("states", {}), token


def update_states(storage: Storage, domain: str, change) -> dict[str, dict[str, Any]]:
    """Apply ``change(states) -> new states or None (no change)`` atomically, retrying lost races."""
    key = layout.states_key(domain)
    for attempt in range(MAX_CAS_ATTEMPTS):
        states, token = read_states(storage, domain)
        new = change(dict(states))
        if new is None:
            return states
        data = dumps({"states": new})
        ok = storage.put_if_absent(key, data) if token is None else storage.compare_and_swap(key, data, token)
        if ok:
            return new
        time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise ConflictError(f"states of {domain!r} kept changing under concurrent writers; try again")


def set_state(storage: Storage, domain: str, version: int, state: str) -> None:
    if storage.stat(layout.version_key(domain, version)) is None:
        raise not_found(storage, domain, version)
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")

    def point(states):
        states[state] = {"version": version, "updated": stamp}
        return states

    update_states(storage, domain, point)
    # A concurrent delete may have removed the version after the check above; undo if so.
    if storage.stat(layout.version_key(domain, version)) is None:
        clear_states(storage, domain, version)
        raise VersionNotFoundError(domain, version)


def remove_state(storage: Storage, domain: str, state: str) -> None:
    def drop(states):
        if state not in states:
            raise StateNotFoundError(domain, state)
        del states[state]
        return states

    update_states(storage, domain, drop)


def clear_states(storage: Storage, domain: str, version: int) -> None:
    """Remove every state that points at ``version``."""

    def drop(states):
        kept = {name: s for name, s in states.items() if s["version"] != version}
        return kept if len(kept) != len(states) else None

    update_states(storage, domain, drop)


def state_version(storage: Storage, domain: str, state: str) -> int:
    states, _ = read_states(storage, domain)
    if state not in states:
        if not domain_exists(storage, domain):
            raise DomainNotFoundError(domain)
        raise StateNotFoundError(domain, state)
    return int(states[state]["version"])


# --- delete --------------------------------------------------------------------------


def delete_version(storage: Storage, domain: str, version: int) -> None:
    """Remove a version from listings. Its number stays claimed (never reused); its files stay
    until ``gc`` finds them unreferenced."""
    key = layout.version_key(domain, version)
    if storage.stat(key) is None:
        raise not_found(storage, domain, version)
    storage.delete(key)
    clear_states(storage, domain, version)
    for _ in range(MAX_CAS_ATTEMPTS):
        hint, token = read_latest_hint(storage, domain)
        if hint != version:
            return
        try:
            newest = latest(storage, domain)[0]
        except (VersionNotFoundError, DomainNotFoundError):
            newest = 0
        if set_latest_hint(storage, domain, newest, token):
            return

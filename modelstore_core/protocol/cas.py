"""Read-modify-write of one small document, safe under concurrent writers."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import ConflictError, KeyNotFoundError
from ..storage import Storage, Token
from .limits import read_capped

T = TypeVar("T")

#: Rounds of read-change-write before a writer gives up with :class:`ConflictError`.
MAX_CAS_ATTEMPTS = 100


def read_document(storage: Storage, key: str, limit: int, what: str) -> tuple[bytes | None, Token]:
    """A document's bytes and compare-and-swap token; ``(None, None)`` when absent.

    :raises DocumentTooLargeError: when it is over ``limit`` bytes (see :mod:`.limits`).
    """
    try:
        return read_capped(storage, key, limit, what)
    except KeyNotFoundError:
        return None, None


def write_document(storage: Storage, key: str, data: bytes, token: Token) -> bool:
    """Create the document (``token`` None) or replace it if unchanged since it was read with ``token``."""
    if token is None:
        return storage.put_if_absent(key, data)
    return storage.compare_and_swap(key, data, token)


def cas_update(
    storage: Storage,
    key: str,
    change: Callable[[T], T | None],
    *,
    parse: Callable[[bytes | None], T],
    encode: Callable[[T], bytes],
    what: str,
    limit: int,
    known: tuple[bytes | None, Token] | None = None,
) -> T:
    """Apply ``change(current) -> new value, or None for no change`` to the document at ``key``
    atomically, re-reading and retrying (with a short random back-off) when another writer got there
    first. ``known`` is a ``(data, token)`` read earlier, tried before reading again.

    Returns the value now stored. ``change`` may raise to abort; it may run several times.
    Raises :class:`ConflictError` naming ``what`` after :data:`MAX_CAS_ATTEMPTS` lost races.
    """
    for attempt in range(MAX_CAS_ATTEMPTS):
        data, token = known if known is not None else read_document(storage, key, limit, what)
        known = None
        current = parse(data)
        new = change(current)
        if new is None:
            return current
        if write_document(storage, key, encode(new), token):
            return new
        time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))
    raise ConflictError(f"{what} kept changing under concurrent writers; try again")

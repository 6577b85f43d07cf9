"""Proving that a server honours conditional writes, before trusting it with a store.

Version numbers, states and the latest hint are only safe with concurrent writers if
create-if-absent and compare-and-swap really are conditional. On an object store they are request
headers (S3's ``If-None-Match: *`` and ``If-Match``), and a server that ignores them answers
exactly as one that honoured them: every writer is told it won. So before the first write, a
backend that depends on them (``Storage.conditional_writes_need_proof``) is tested on a probe key:

1. create-if-absent of a new key succeeds; a second create-if-absent of it must fail and leave the
   first content;
2. compare-and-swap with the token just read succeeds; a second one with that now-stale token
   must fail and leave the second content.

The verdict is kept per server (:meth:`Storage.capability_id`) for the process, and only for the
process: it vouches for the server process that gave it, and another one may answer on the same
endpoint tomorrow (a test server replaced by one that ignores the headers). So each process that
writes pays the seven small requests once per server (a few milliseconds against a local server,
seven round trips against a remote one); nothing is remembered on disk, where a verdict could
outlive its server or be planted.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from ..errors import KeyNotFoundError, UnsafeServerError
from ..storage import Storage
from . import limits

PROBES = "probes/"

_verdicts: dict[str, Verdict] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Verdict:
    #: the features that did not hold: "create-if-absent" and/or "compare-and-swap"
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing


def probe(storage: Storage) -> Verdict:
    """Run the probe on ``storage`` (seven small requests, the probe key deleted last)."""
    key = f"{PROBES}{os.urandom(16).hex()}"
    missing = []
    try:
        created = storage.put_if_absent(key, b"first")
        if not created:
            raise UnsafeServerError(storage.url, ("create-if-absent",), "a new key could not be created")
        again = storage.put_if_absent(key, b"second")
        data, token = storage.read(key, max_bytes=limits.SMALL_BYTES)
        if again or data != b"first":
            missing.append("create-if-absent")
        swapped = storage.compare_and_swap(key, b"third", token)
        stale = storage.compare_and_swap(key, b"fourth", token)
        data, _ = storage.read(key, max_bytes=limits.SMALL_BYTES)
        if not swapped or stale or data != b"third":
            missing.append("compare-and-swap")
    except KeyNotFoundError:
        missing.append("read-after-write")
    finally:
        storage.delete(key)
    return Verdict(tuple(missing))


def ensure_conditional_writes(storage: Storage) -> Verdict:
    """The verdict for ``storage``'s server: this process's, or probed now."""
    if not storage.conditional_writes_need_proof:
        return Verdict(())
    ident = storage.capability_id()
    with _lock:
        if ident not in _verdicts:
            _verdicts[ident] = probe(storage)
        return _verdicts[ident]


def forget_verdicts() -> None:
    """Forget what this process learnt (tests: as a new process would; a server that was fixed while the process runs)."""
    with _lock:
        _verdicts.clear()

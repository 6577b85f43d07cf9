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

The verdict is kept per server (:meth:`Storage.capability_id`) for the process, and a success for
a week in the cache directory, so a store costs the seven probe requests once.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from ..errors import KeyNotFoundError, UnsafeServerError
from ..storage import Storage
from . import limits

PROBES = "probes/"
#: How long a success is trusted from the cache directory before the server is probed again.
REMEMBER_SUCCESS = 7 * 24 * 3600.0

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


def ensure_conditional_writes(storage: Storage, cache_root: Path | None) -> Verdict:
    """The verdict for ``storage``'s server: remembered, or probed now."""
    if not storage.conditional_writes_need_proof:
        return Verdict(())
    ident = storage.capability_id()
    with _lock:
        if ident in _verdicts:
            return _verdicts[ident]
        record = _record_path(cache_root, ident)
        if _remembered(record, ident):
            verdict = Verdict(())
        else:
            verdict = probe(storage)
            if verdict.ok:
                _remember(record, ident)
        _verdicts[ident] = verdict
        return verdict


def forget_verdicts() -> None:
    """Forget what this process learnt (tests; a server that was fixed while the process runs)."""
    with _lock:
        _verdicts.clear()


def _record_path(cache_root: Path | None, ident: str) -> Path | None:
    if cache_root is None:
        return None
    return cache_root / "servers" / f"{sha256(ident.encode()).hexdigest()[:32]}.json"


def _remembered(record: Path | None, ident: str) -> bool:
    if record is None:
        return False
    try:
        doc = json.loads(record.read_text())
        return doc.get("server") == ident and time.time() - float(doc["checked"]) < REMEMBER_SUCCESS
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _remember(record: Path | None, ident: str) -> None:
    if record is None:
        return
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f".{record.name}.{os.urandom(8).hex()}")
        tmp.write_text(json.dumps({"server": ident, "conditional_writes": True, "checked": time.time()}))
        os.replace(tmp, record)
    except OSError:
        pass  # only a cache: probing again next time is the cost

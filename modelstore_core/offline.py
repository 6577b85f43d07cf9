"""Loading without the store: what this machine last saw, from the verified cache.

Every online ``load``/``download`` remembers, per store URL and domain, which version ``latest``
and each state resolved to (``<cache>/resolved/<store id>/<domain>.json``, replaced atomically;
two processes resolving at the same moment may each keep their own answer: either is one the
store gave). The cache view of a loaded version keeps its record in its proof file
(:mod:`.materialize`). Offline (``MODELSTORE_OFFLINE=1`` or ``ModelStore(url, offline=True)``),
``load`` and ``download`` answer from those two alone and send no request at all; the storage is
replaced by :class:`OfflineStorage`, which refuses every primitive, so nothing else can reach the
network by mistake.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from .errors import ModelStoreError
from .storage import Storage

OFFLINE_ENV = "MODELSTORE_OFFLINE"


class OfflineError(ModelStoreError):
    """The store is opened offline and this operation needs it."""


class NotCachedError(OfflineError, LookupError):
    """Offline, a name (latest, a state) or a version this machine has not loaded before."""


class StaleWarning(UserWarning):
    """An offline answer: what this machine last saw, which the store may have changed since."""


def offline_from_env() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def offline_hint(url: str) -> str:
    return f"this store ({url}) is opened offline ({OFFLINE_ENV}=1 or offline=True)"


class OfflineStorage(Storage):
    """Stands in for a store's backend while offline: every primitive raises :class:`OfflineError`."""

    def __init__(self, url: str):
        self.url = url

    def _refuse(self, *args, **kwargs):
        raise OfflineError(
            f"{offline_hint(self.url)}: only load and download of versions this machine has loaded before work;"
            f" unset {OFFLINE_ENV} (or pass offline=False) to reach the store"
        )

    put = put_if_absent = get = read = compare_and_swap = list = delete = stat = _refuse
    put_file = stage_file = get_file = cleanup = _refuse


class SeenNames:
    """Which version ``latest`` and each state of a domain last resolved to, per store, on this machine."""

    def __init__(self, directory: Path):
        self.directory = directory

    def _path(self, domain: str) -> Path:
        return self.directory / f"{domain}.json"

    def read(self, domain: str) -> dict:
        try:
            doc = json.loads(self._path(domain).read_text())
        except (OSError, ValueError, RecursionError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def lookup(self, domain: str, state: str | None) -> tuple[int, str] | None:
        """``(version, when seen)`` for ``latest`` (``state`` None) or ``state``; ``None`` if never seen."""
        doc = self.read(domain)
        entry = doc.get("latest") if state is None else (doc.get("states") or {}).get(state)
        if not isinstance(entry, dict):
            return None
        version, seen = entry.get("version"), entry.get("seen")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1 or not isinstance(seen, str):
            return None
        return version, seen

    def remember(self, domain: str, state: str | None, version: int) -> None:
        """Record an online answer (best effort: a cache that cannot be written costs only offline loads)."""
        doc = self.read(domain)
        entry = {"version": version, "seen": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if state is None:
            doc["latest"] = entry
        else:
            states = doc.get("states") if isinstance(doc.get("states"), dict) else {}
            states[state] = entry
            doc["states"] = states
        from .materialize import write_json

        try:
            write_json(self._path(domain), doc)
        except OSError:
            pass

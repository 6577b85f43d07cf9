"""Loading without the store: what this machine last saw, from the verified cache.

Every online ``load``/``download`` remembers, per store URL and domain, which version ``latest``
and each state resolved to (``<cache>/resolved/<store id>/<domain>.json``, replaced atomically;
two processes resolving at the same moment may each keep their own answer: either is one the
store gave). The cache view of a loaded version keeps its record in its proof file
(:mod:`.cache`). Offline (``MODELSTORE_OFFLINE=1`` or ``ModelStore(url, offline=True)``),
``load`` and ``download`` answer from those two alone and send no request at all; the storage is
replaced by :class:`OfflineStorage`, which refuses every primitive, so nothing else can reach the
network by mistake.
"""

from __future__ import annotations

import os

from .errors import OfflineError
from .storage import Storage

OFFLINE_ENV = "MODELSTORE_OFFLINE"


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

"""Whether an upload (or a ``gc`` run) is still going, judged by what the store records.

A process id or a host name says nothing across containers, PID namespaces and machines, and a
writer's clock can be behind by any amount. So liveness is a heartbeat kept in the store: while an
upload runs, a thread re-writes its marker (``uploads/<id>.json``) every :func:`heartbeat_seconds`,
and the marker's age is the store's own timestamps (``LastModified`` on S3, ``updated`` on GCS,
``Last-Modified`` on Azure, the mtime on a local disk: the server's or file system's clock, the same
for every writer) measured against a document just written to the same store (:func:`store_now`),
never against a local clock.

A marker stays after its upload ends: a finished upload's objects are referenced by its record, a
failed one's are garbage, and either way ``gc`` removes the marker once it is older than its grace.
A marker is live while it is younger than ``max(grace, 5 heartbeats)`` (the heartbeat it records:
an uploader configured with a slower heartbeat than ``gc``'s machine is still judged by its own).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime

from ..errors import UsageError
from ..storage import Storage

# The same name socket.gethostname() returns, without importing socket (startup time). Recorded in
# markers and claims for people reading them; never used to decide anything.
HOST = os.uname().nodename if hasattr(os, "uname") else __import__("socket").gethostname()

#: Seconds between heartbeats, unless ``$MODELSTORE_HEARTBEAT`` says otherwise (tests use a fraction of a second).
DEFAULT_HEARTBEAT = 60.0
#: A marker missed this many heartbeats before it can be judged dead (a beat can be late: a slow
#: request, a busy machine).
MISSED_HEARTBEATS = 5


def heartbeat_seconds() -> float:
    """How often this process refreshes what it keeps alive in a store (``$MODELSTORE_HEARTBEAT``, default 60)."""
    raw = os.environ.get("MODELSTORE_HEARTBEAT")
    if not raw:
        return DEFAULT_HEARTBEAT
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"MODELSTORE_HEARTBEAT={raw[:20]!r}: give the seconds between heartbeats, e.g. 60") from None
    if not 0 < value <= 86_400:
        raise UsageError(f"MODELSTORE_HEARTBEAT={raw[:20]!r}: give a number of seconds between 0 and 86400")
    return value


def minimum_grace() -> float:
    """The shortest grace that can tell a dead writer from a live one: :data:`MISSED_HEARTBEATS` heartbeats."""
    return MISSED_HEARTBEATS * heartbeat_seconds()


def check_grace(grace: float) -> float:
    """``grace`` if a heartbeat can prove anything within it, else :class:`UsageError`."""
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace != grace:
        raise UsageError(f"grace must be a number of seconds, not {grace!r}")
    if grace < minimum_grace():
        raise UsageError(
            f"grace={grace:g}s is shorter than {MISSED_HEARTBEATS} heartbeats ({minimum_grace():g}s): an upload that is"
            f" running could not prove it within it; pass at least {minimum_grace():g} (uploads refresh their marker every"
            f" {heartbeat_seconds():g}s, $MODELSTORE_HEARTBEAT)"
        )
    return float(grace)


def lifetime(grace: float, heartbeat: float, resolution: float = 0.0) -> float:
    """How long after its last heartbeat (as a store reporting times to ``resolution`` seconds shows
    it) a marker recording ``heartbeat`` still counts as live."""
    return max(grace, MISSED_HEARTBEATS * heartbeat) + 2 * resolution  # both times may be cut short


def store_now(storage: Storage, key: str) -> datetime:
    """The store's own time: the modification time it gives ``key``, a document this process just wrote."""
    info = storage.stat(key)
    if info is None or info.modified is None:
        raise UsageError(f"{storage.url}: the store gives no modification time for {key}; gc cannot judge what is live there")
    return info.modified


class Heartbeat:
    """A thread that calls each registered beat every ``interval`` seconds until stopped, at a fixed
    rate (a slow beat does not push the next ones back).

    Used as a context manager around an upload (or a ``gc`` run). A beat that fails is retried on
    the next one: a missed heartbeat or two is what the grace allows for.
    """

    def __init__(self, interval: float | None = None):
        self.interval = heartbeat_seconds() if interval is None else interval
        self._beats: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, beat: Callable[[], None]) -> None:
        with self._lock:
            self._beats.append(beat)

    def _run(self) -> None:
        due = time.monotonic()
        while True:
            due = max(due + self.interval, time.monotonic())
            if self._stop.wait(due - time.monotonic()):
                return
            with self._lock:
                beats = list(self._beats)
            for beat in beats:
                try:
                    beat()
                except Exception:  # noqa: BLE001 - a beat that fails is retried next time
                    pass

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name="modelstore-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

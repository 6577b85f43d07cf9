"""Byte counting for progress bars: ``ModelStore.upload(..., progress=callback)`` and friends.

The user's callback gets ``(done_bytes, total_bytes)``. Inside, each file gets a counter that
the storage primitives advance with byte increments as they move data; a file whose bytes were
never moved (deduplicated, already cached) or a backend that does not report is topped up
when the file is done, so ``done`` always ends at ``total``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

#: ``progress(done_bytes, total_bytes)``, as passed to :class:`~modelstore_core.ModelStore` methods.
ProgressCallback = Callable[[int, int], None]

#: What storage primitives receive: ``advance(n)`` after moving ``n`` more bytes.
Advance = Callable[[int], None]


class Progress:
    """The bytes of one operation, reported to a user callback."""

    def __init__(self, callback: ProgressCallback | None, total: int):
        self.callback, self.total, self.done = callback, total, 0
        self._lock = threading.Lock()  # files of a version move on several threads

    def advance(self, n: int) -> None:
        if n > 0:
            with self._lock:
                self.done += n
                done = self.done
            if self.callback is not None:
                self.callback(done, self.total)

    def file(self, size: int) -> FileProgress:
        return FileProgress(self, size)


class FileProgress:
    """One file's share of a :class:`Progress`: never reports more than the file's size."""

    def __init__(self, parent: Progress, size: int):
        self.parent, self.size, self.reported = parent, size, 0

    def __call__(self, n: int) -> None:
        if n <= 0:
            return  # some transfer libraries report negative amounts when they retry
        n = min(n, self.size - self.reported)
        self.reported += n
        self.parent.advance(n)

    def finish(self) -> None:
        self(self.size - self.reported)

"""Progress bars for uploads, downloads and verification, built on the storage primitives.

The core has no progress callback, so the CLI observes the store's storage for the duration
of one operation: :class:`ObservedStorage` delegates every primitive to the real backend and
reports the bytes of each object as it is stored or read. Streams (``put``/``get``) are
counted as they flow; whole-file transfers (``put_file``/``get_file``, and files read in
place through ``local_path``) are counted when each file is done, so the bar moves file by
file on backends that move files whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from .. import layout
from ..storage import ObjectInfo, Storage, Token

#: Transfers smaller than this finish before a bar would be worth drawing.
PROGRESS_MIN_BYTES = 8 * 1000 * 1000


class _CountingReader:
    def __init__(self, stream: BinaryIO, advance: Callable[[int], None]):
        self._stream, self._advance = stream, advance

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._advance(len(data))
        return data

    def readinto(self, buffer) -> int:
        readinto = getattr(self._stream, "readinto", None)
        if readinto is None:
            data = self._stream.read(len(buffer))
            buffer[: len(data)] = data
            n = len(data)
        else:
            n = readinto(buffer) or 0
        self._advance(n)
        return n

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> _CountingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class ObservedStorage(Storage):
    """A backend that reports the bytes of the objects (``objects/``) it moves; everything else passes through."""

    def __init__(self, inner: Storage, advance: Callable[[int], None]):
        self.inner = inner
        self.url = inner.url
        self._advance = advance

    def _count(self, key: str, n: int) -> None:
        if key.startswith(layout.OBJECTS):
            self._advance(n)

    def put(self, key: str, stream: BinaryIO) -> None:
        if key.startswith(layout.OBJECTS):
            stream = _CountingReader(stream, self._advance)  # type: ignore[assignment]
        self.inner.put(key, stream)

    def put_file(self, key: str, path: Path) -> None:
        self.inner.put_file(key, path)
        self._count(key, os.path.getsize(path))

    def get(self, key: str) -> BinaryIO:
        stream = self.inner.get(key)
        return _CountingReader(stream, self._advance) if key.startswith(layout.OBJECTS) else stream  # type: ignore[return-value]

    def get_file(self, key: str, path: Path) -> None:
        self.inner.get_file(key, path)
        self._count(key, os.path.getsize(path))

    def local_path(self, key: str) -> Path | None:
        path = self.inner.local_path(key)
        if path is not None:
            self._count(key, os.path.getsize(path))  # about to be read in place
        return path

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.inner.put_if_absent(key, data)

    def read(self, key: str) -> tuple[bytes, Token]:
        return self.inner.read(key)

    def compare_and_swap(self, key: str, data: bytes, token: Token) -> bool:
        return self.inner.compare_and_swap(key, data, token)

    def list(self, prefix: str, *, start_after: str | None = None, delimiter: str | None = None) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix, start_after=start_after, delimiter=delimiter)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def stat(self, key: str) -> ObjectInfo | None:
        return self.inner.stat(key)

    def cleanup(self, older_than: float, dry_run: bool = False) -> list[str]:
        return self.inner.cleanup(older_than, dry_run)

    def close(self) -> None:
        self.inner.close()


@contextmanager
def progress(state, store, description: str, total: int | None) -> Iterator[None]:
    """Show a bar (``total`` bytes) or a spinner (``total=None``) on stderr while the block runs.

    Nothing is shown unless stderr is a terminal, and no bar unless ``total`` is large
    enough to notice; a spinner is shown whenever ``total`` is ``None``.
    """
    if not state.progress_allowed or (total is not None and total < PROGRESS_MIN_BYTES):
        yield
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn()]
    if total is not None:
        columns += [TransferSpeedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=state.err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        inner = store.storage
        store.storage = ObservedStorage(inner, lambda n: bar.advance(task, n))
        try:
            yield
        finally:
            store.storage = inner
        if total is not None:
            bar.update(task, completed=total)  # deduplicated files were never transferred

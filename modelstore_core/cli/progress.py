"""Progress bars for uploads, downloads and verification (terminal only, never when piped).

The core reports bytes through the ``progress=`` callback of ``ModelStore.upload``, ``load``,
``download`` and ``verify``; this module turns that into a rich bar on stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..progress import ProgressCallback

#: Transfers smaller than this finish before a bar would be worth drawing.
PROGRESS_MIN_BYTES = 8 * 1000 * 1000


@contextmanager
def progress(cmdline, description: str, total: int | None) -> Iterator[ProgressCallback | None]:
    """Yield a ``progress(done, total)`` callback drawing a bar on stderr, or ``None``.

    Nothing is shown unless stderr is a terminal, and no bar unless ``total`` (bytes, if known
    beforehand) is large enough to notice.
    """
    if not cmdline.progress_allowed or (total is not None and total < PROGRESS_MIN_BYTES):
        yield None
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

    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=cmdline.err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, of: int) -> None:
            bar.update(task, completed=done, total=of)

        yield update

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
#: A rate is shown once a transfer has run this long and moved this much: before that it measures
#: latency, not throughput (a copy of one small record reads "414 bytes/s").
RATE_MIN_SECONDS, RATE_MIN_BYTES = 1.0, 1000 * 1000


@contextmanager
def progress(cmdline, description: str, total: int | None) -> Iterator[ProgressCallback | None]:
    """Yield a ``progress(done, total)`` callback drawing a bar on stderr, or ``None``.

    Nothing is shown unless stderr is a terminal, and no bar unless ``total`` (bytes, if known
    beforehand) is large enough to notice.
    """
    if not cmdline.progress_allowed or (total is not None and total < PROGRESS_MIN_BYTES):
        yield None
        return
    from rich.progress import Progress

    with Progress(*columns(), console=cmdline.err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, of: int) -> None:
            bar.update(task, completed=done, total=of)

        yield update


def columns() -> list:
    """The bar's columns: spinner, description, bar, bytes done of total, rate, time left."""
    from rich.progress import BarColumn, DownloadColumn, SpinnerColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
    from rich.text import Text

    class MeasuredSpeedColumn(TransferSpeedColumn):
        """The transfer rate, blank until there is enough of the transfer to measure."""

        def render(self, task) -> Text:
            if (task.elapsed or 0.0) < RATE_MIN_SECONDS or task.completed < RATE_MIN_BYTES:
                return Text("")
            return super().render(task)

    return [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(), MeasuredSpeedColumn(), TimeRemainingColumn()]

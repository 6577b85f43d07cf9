"""The progress bar's rate: none for a transfer too short to measure (a copy of a small record read
"414 bytes/s"). Driven by a clock of the test's own (rich's ``get_time``), not the wall clock."""

from __future__ import annotations

from rich.progress import Progress, TransferSpeedColumn

from modelstore_core.cli.progress import columns


def rate_text(progress_at: list[float], moves: list[tuple[float, int]]) -> str:
    """What the bar's rate column shows after ``moves`` ((time, bytes done) each), at the last time."""
    [rate] = [c for c in columns() if isinstance(c, TransferSpeedColumn)]
    with Progress(*columns(), get_time=lambda: progress_at[0], disable=True) as bar:
        task = bar.add_task("Copying", total=None)
        for when, done in moves:
            progress_at[0] = when
            bar.update(task, completed=done)
        return rate.render(bar.tasks[0]).plain


def test_no_rate_for_a_transfer_too_short_to_measure():
    assert rate_text([0.0], [(0.2, 207), (1.0, 414)]) == ""  # 414 bytes in a second: latency, not a rate
    assert rate_text([0.0], [(0.1, 3_000_000), (0.2, 6_000_000)]) == ""  # too soon to tell


def test_the_rate_of_a_transfer_long_enough():
    assert rate_text([0.0], [(float(s), s * 10_000_000) for s in range(1, 6)]) == "10.0 MB/s"

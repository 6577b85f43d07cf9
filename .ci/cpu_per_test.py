"""A pytest plugin that writes the CPU seconds of each test's whole process tree: the test process,
the children it waited for, and the processes still running under it (test servers, workers), each
as its share of that test. On a shared 2-core machine ``--durations`` wall times say as much about
the neighbours as about the test; this says what a test costs the run.

    PYTHONPATH=.ci PYTEST_ADDOPTS="-p cpu_per_test" CPU_PER_TEST=/tmp/s3.txt nox -R -s "plugin(modelstore-s3)"

Linux only (it reads ``/proc``). Writes the tests slowest first, then the total, to ``$CPU_PER_TEST``
(default ``cpu-per-test.txt`` in the working directory; where it names a directory, a file per pytest
process in it, for `.ci/nox_jobs.py`'s sessions run at once). Not used by CI.
"""

from __future__ import annotations

import os
import resource

_TICK = os.sysconf("SC_CLK_TCK")
_rows: list[tuple[float, str]] = []
_started: list[float] = []


def _tree_cpu() -> float:
    """CPU seconds of this process, its reaped children and every live descendant."""
    children: dict[int, list[tuple[int, float]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        children.setdefault(int(fields[1]), []).append((int(entry), (int(fields[11]) + int(fields[12])) / _TICK))
    total, pending = 0.0, [os.getpid()]
    while pending:
        for pid, cpu in children.get(pending.pop(), []):
            total += cpu
            pending.append(pid)
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def pytest_runtest_logstart(nodeid, location) -> None:
    _started[:] = [_tree_cpu()]


def pytest_runtest_logfinish(nodeid, location) -> None:
    _rows.append((_tree_cpu() - _started[0], nodeid))


def pytest_sessionfinish(session) -> None:
    path = os.environ.get("CPU_PER_TEST", "cpu-per-test.txt")
    if os.path.isdir(path):  # several sessions at once (.ci/nox_jobs.py): a file for each
        path = os.path.join(path, f"{os.getpid()}.txt")
    with open(path, "w") as out:
        for cpu, nodeid in sorted(_rows, reverse=True):
            out.write(f"{cpu:8.2f} {nodeid}\n")
        out.write(f"{sum(cpu for cpu, _ in _rows):8.2f} total\n")

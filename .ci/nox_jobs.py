"""Run every nox session, several at a time (what `.ci/run`, the README's test command, runs).

nox runs sessions one after another; most of ours wait on a server, an install or an import for
a good part of their time, so running them side by side (one more job than cores by default) shortens the
whole run without changing any session. Each session writes its output to
``.nox/logs/<session>.log``; a failed session's log is printed in full at the end.

    python .ci/nox_jobs.py [-j JOBS] [nox session names...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".nox" / "logs"
#: CPU seconds each session took in a recorded run (``--record``): the costliest start first. CPU
#: seconds, not wall: on a shared machine a session's wall time says as much about its neighbours.
DURATIONS = Path(__file__).resolve().parent / "durations.json"


def sessions() -> list[str]:
    listing = subprocess.run([sys.executable, "-m", "nox", "--list", "--json"], cwd=ROOT, check=True, capture_output=True, text=True)
    return [s["session"] for s in json.loads(listing.stdout)]


def run(session: str) -> tuple[str, int, float, float, Path]:
    """Run one session; return its exit status, wall seconds, CPU seconds and log.

    CPU seconds (user + system) are nox's and those of every process under it that was waited for
    (uv, pytest, the servers and children the tests start): unlike wall time, they hardly change
    with what else runs on the machine."""
    log = LOGS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", session) + ".log")
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "nox", "-s", session], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own usage (RUSAGE_CHILDREN would sum every job's)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return session, proc.returncode, time.monotonic() - started, usage.ru_utime + usage.ru_stime, log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # One more than the cores: a session spends part of its time waiting on a server or an install
    # (measured on 2 cores: 19 sessions in 6 min 44 s two at a time, 5 min 38 s three at a time).
    jobs = (os.cpu_count() or 1) + 1
    parser.add_argument("-j", "--jobs", type=int, default=jobs, help=f"sessions at once (default: cores + 1 = {jobs})")
    parser.add_argument("--record", action="store_true", help=f"write this run's CPU seconds per session to {DURATIONS.name}")
    parser.add_argument("names", nargs="*", help="sessions to run (default: all)")
    args = parser.parse_args()
    LOGS.mkdir(parents=True, exist_ok=True)
    names = args.names or sessions()
    # The costliest sessions first, so that the last job to start is a short one.
    known = _durations()
    slow_first = sorted(names, key=lambda n: -known.get(n, 60.0))
    started = time.monotonic()
    failed: list[tuple[str, Path]] = []
    cpu_total = 0.0
    print(f"{len(names)} sessions, {args.jobs} at a time; load average {_load()}", flush=True)
    print(f"{'':4} {'wall':>6}   {'CPU':>6}   {'load':>5}  session", flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for future in as_completed([pool.submit(run, n) for n in slow_first]):
            session, rc, seconds, cpu, log = future.result()
            known[session] = round(cpu, 1)
            cpu_total += cpu
            load = os.getloadavg()[0]
            print(f"{'ok  ' if rc == 0 else 'FAIL'} {seconds:6.1f} s {cpu:6.1f} s {load:5.1f}  {session}   {_summary(log)}", flush=True)
            if rc != 0:
                failed.append((session, log))
    for session, log in failed:
        print(f"\n===== {session}: {log} =====\n{log.read_text(errors='replace')}", flush=True)
    if args.record:
        DURATIONS.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
    verdict = f"{len(failed)} of {len(names)} sessions failed" if failed else f"all {len(names)} sessions passed"
    wall = time.monotonic() - started
    print(f"\n{verdict} in {wall:.0f} s ({args.jobs} at a time); CPU {cpu_total:.0f} s; load average {_load()}")
    return 1 if failed else 0


def _load() -> str:
    """The machine's load average over 1, 5 and 15 minutes (others' work included)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _summary(log: Path) -> str:
    """pytest's last summary line, e.g. '255 passed in 18.20s'."""
    lines = [ln.strip("= \n") for ln in log.read_text(errors="replace").splitlines() if re.match(r"=+ .*\d+ (passed|failed|error)", ln)]
    return lines[-1] if lines else ""


def _durations() -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(DURATIONS.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


if __name__ == "__main__":
    sys.exit(main())

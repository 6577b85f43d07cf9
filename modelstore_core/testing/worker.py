"""A process that uploads raw files (or runs ``gc``), for tests that need real concurrent, killed
or paused writers, possibly posing as another machine.

``python -m modelstore_core.testing.worker URL DOMAIN FILE [--options JSON] [--crash-at STEP]``
prints the new version number. ``--crash-at`` kills the process with SIGKILL at the named
step of an upload (:func:`modelstore_core.protocol.commit.checkpoint`) (``serialized``, ``marker-written``, ``object-stored``,
``objects-stored``, ``claimed``, ``committed``, ``summarized``, ``latest-updated``); ``--pause-at`` stops there
(alive, its heartbeat running) until ``--resume-file`` exists, or until killed. ``--ready-file``
and ``--start-file`` line writers up: each creates its ready file once started, then waits for the
start file.

``--gc GRACE`` runs ``gc --apply`` instead of an upload (``DOMAIN`` and ``FILE`` are not given);
``--pause-at gc-deleting`` stops it before its first delete. ``--set-state NAME=VERSION`` moves a
state of ``DOMAIN`` instead (no ``FILE``; steps ``states-written``, ``states-evented``).

As another machine or container would look to ``gc``: ``--as-pid N`` records pid N (a process
of another PID namespace, which this machine cannot see), ``--as-host NAME`` another host name,
``--clock-offset SECONDS`` a clock that far ahead (negative: behind).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import datetime, timedelta, timezone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("domain", nargs="?")
    parser.add_argument("files", nargs="*")
    parser.add_argument("--options", default="{}")
    parser.add_argument("--crash-at")
    parser.add_argument("--pause-at", help="at this step, create the file --paused-file and wait for --resume-file (or to be killed)")
    parser.add_argument("--paused-file")
    parser.add_argument("--resume-file")
    parser.add_argument("--start-file", help="wait until this file exists, so writers start together")
    parser.add_argument("--ready-file", help="create this file once started (imports done, store open), before waiting for --start-file")
    parser.add_argument("--gc", type=float, metavar="GRACE", help="run gc --apply with this grace instead of an upload")
    parser.add_argument("--set-state", metavar="NAME=VERSION", help="point state NAME of DOMAIN at VERSION instead of an upload")
    parser.add_argument("--as-pid", type=int)
    parser.add_argument("--as-host")
    parser.add_argument("--clock-offset", type=float, default=0.0)
    args = parser.parse_args(argv)

    from modelstore_core import ModelStore
    from modelstore_core.protocol import commit, gc, liveness

    me = os.getpid()
    if args.as_pid is not None:
        os.getpid = lambda: args.as_pid
    if args.as_host is not None:
        commit.HOST = gc.HOST = liveness.HOST = args.as_host
    if args.clock_offset:
        skewed = lambda: (datetime.now(timezone.utc) + timedelta(seconds=args.clock_offset)).isoformat(timespec="microseconds")  # noqa: E731
        commit.now_utc = gc.now_utc = skewed
    if args.crash_at:

        def crash(step: str) -> None:
            if step == args.crash_at:
                os.kill(me, signal.SIGKILL)

        commit.checkpoint = crash
    if args.pause_at:
        paused = False

        def pause(step: str) -> None:
            nonlocal paused
            if step == args.pause_at and not paused:
                paused = True
                open(args.paused_file, "w").close()
                while not (args.resume_file and os.path.exists(args.resume_file)):
                    time.sleep(0.01)

        commit.checkpoint = pause
    store = ModelStore(args.url, **json.loads(args.options))
    store.list_domains()  # connect and load plugins before the start line
    if args.ready_file:
        open(args.ready_file, "w").close()
    if args.start_file:
        while not os.path.exists(args.start_file):
            time.sleep(0.002)
    if args.gc is not None:
        report = store.gc(grace=args.gc)
        print(json.dumps({"objects": report.objects, "markers": report.markers}), flush=True)
        return 0
    if args.set_state:
        name, _, number = args.set_state.partition("=")
        store.set_state(args.domain, int(number), name)
        print(number, flush=True)
        return 0
    version = store.upload(args.domain, files=args.files)
    print(version.version, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

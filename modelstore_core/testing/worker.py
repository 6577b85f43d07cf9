"""A process that uploads raw files, for tests that need real concurrent or killed writers.

``python -m modelstore_core.testing.worker URL DOMAIN FILE [--options JSON] [--crash-at STEP]``
prints the new version number. ``--crash-at`` kills the process with SIGKILL at the named
step of an upload (:func:`modelstore_core.protocol.commit.checkpoint`) (``serialized``, ``marker-written``, ``object-stored``,
``objects-stored``, ``claimed``, ``committed``, ``summarized``, ``latest-updated``); ``--pause-at`` stops there
(alive) until killed, for tests of what ``gc`` must not touch. ``--ready-file`` and ``--start-file``
line writers up: each creates its ready file once started, then waits for the start file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("domain")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--options", default="{}")
    parser.add_argument("--crash-at")
    parser.add_argument("--pause-at", help="at this step, create the file --paused-file and sleep until killed")
    parser.add_argument("--paused-file")
    parser.add_argument("--start-file", help="wait until this file exists, so writers start together")
    parser.add_argument("--ready-file", help="create this file once started (imports done, store open), before waiting for --start-file")
    args = parser.parse_args(argv)

    from modelstore_core import ModelStore
    from modelstore_core.protocol import commit

    if args.crash_at:
        def crash(step: str) -> None:
            if step == args.crash_at:
                os.kill(os.getpid(), signal.SIGKILL)

        commit.checkpoint = crash
    if args.pause_at:
        def pause(step: str) -> None:
            if step == args.pause_at:
                open(args.paused_file, "w").close()
                while True:
                    time.sleep(1)

        commit.checkpoint = pause
    store = ModelStore(args.url, **json.loads(args.options))
    store.list_domains()  # connect and load plugins before the start line
    if args.ready_file:
        open(args.ready_file, "w").close()
    if args.start_file:
        while not os.path.exists(args.start_file):
            time.sleep(0.002)
    version = store.upload(args.domain, files=args.files)
    print(version.version, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

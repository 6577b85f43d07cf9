"""Conformance tests for the change feed on a backend (:mod:`modelstore_core.protocol.feed`).

Subclass :class:`FeedContract` with the same fixtures as ``StoreContract`` (``store_url``, and
``store_options``/``store_env`` for other processes). The tests run real writer processes:

* every upload, state move, copy, delete and signature-free change of one writer is one event, in order;
* under concurrent writer processes, every committed upload and state move appears exactly once,
  the numbers run 1 to n without a gap, a version's ``uploaded`` event comes before any
  ``state_set`` naming it, and replaying the state events gives the states the store holds;
* a writer killed between its commit and its event (each step from the commit on) leaves no
  event lost and none twice: the next reader, the next writer and ``gc`` put it in;
* a poll costs a few requests plus one per new event, whether the domain holds 30 versions or 300.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from ..protocol import keys
from ..storage import Storage
from ..store import ModelStore
from .history import commit_copies
from .store_contract import StoreFixtures, collect_now, matrix

#: Steps of an upload from its commit to the end, where a killed writer has committed its version.
UPLOAD_STEPS_AFTER_COMMIT = ["committed", "summarized", "evented", "latest-updated"]
#: The same for a state move.
STATE_STEPS_AFTER_COMMIT = ["states-written", "states-evented"]

#: The storage primitives a request counter counts.
PRIMITIVES = ("put", "put_if_absent", "get", "read", "compare_and_swap", "list", "delete", "stat", "put_file", "get_file", "refresh")


def count_requests(storage: Storage) -> list[tuple[str, str]]:
    """Record every call of a storage primitive on ``storage`` from now on, as ``(name, key)``
    (a listing counts once however many pages it takes: the backends' own request tests count pages)."""
    calls: list[tuple[str, str]] = []
    inside = threading.local()  # a primitive built on another (a local read is a get) counts once
    for name in PRIMITIVES:
        original = getattr(storage, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            if getattr(inside, "depth", 0):
                return _original(*args, **kwargs)
            calls.append((_name, str(args[0]) if args else ""))
            inside.depth = 1
            try:
                return _original(*args, **kwargs)
            finally:
                inside.depth = 0

        setattr(storage, name, counted)
    return calls


def check_feed(events, store: ModelStore) -> None:
    """What holds of any feed: numbers 1 to n without a gap, no change twice, every committed
    version's ``uploaded``/``copied`` event once and before any event naming it, and the state
    events replayed giving the states the store holds."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len({e.id for e in events}) == len(events), Counter(e.id for e in events).most_common(3)
    committed: dict[tuple[str, int], int] = {}
    states: dict[str, dict[str, int]] = {}
    for e in events:
        if e.event in ("uploaded", "copied"):
            assert (e.domain, e.version) not in committed, f"{e.domain}:{e.version} committed twice"
            committed[(e.domain, e.version)] = e.seq
        elif e.version is not None:
            assert (e.domain, e.version) in committed, f"event {e.seq} ({e.event}) names {e.domain}:{e.version} before its upload"
        if e.event == "state_set":
            states.setdefault(e.domain, {})[e.state] = e.version
        elif e.event == "state_removed":
            states.setdefault(e.domain, {}).pop(e.state, None)
    for domain in store.list_domains():
        listed = {(domain, v.version) for v in store.list_versions(domain)}
        assert listed <= set(committed), sorted(listed - set(committed))
        assert store.states(domain) == states.get(domain, {})


#: A writer process: uploads a file N times, moving a state to each version (argv: url, options, N, file, start file).
WRITER = (
    "import json, os, sys, time\n"
    "from modelstore_core import ModelStore\n"
    "store = ModelStore(sys.argv[1], **json.loads(sys.argv[2]))\n"
    "n, model, start = int(sys.argv[3]), sys.argv[4], sys.argv[5]\n"
    "store.list_domains()\n"
    "while not os.path.exists(start): time.sleep(0.002)\n"
    "for i in range(n):\n"
    "    v = store.upload('race', files=[model]).version\n"
    "    store.set_state('race', v, f'state{os.getpid() % 3}')\n"
    "    print(v, flush=True)\n"
)


class FeedContract(StoreFixtures):
    """The change feed: exactly once, in order, under concurrent and killed writers."""

    #: concurrent writer processes, and uploads (each followed by a state move) each makes
    writers = 8
    uploads_each = 3

    def start(self, store_url, store_options, store_env, tmp_path, script: str, *args: str) -> subprocess.Popen:
        env = {**os.environ, **store_env, "MODELSTORE_CACHE_DIR": str(tmp_path / "worker-cache")}
        cmd = [sys.executable, "-c", script, store_url, json.dumps(store_options), *args]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # --- one writer ------------------------------------------------------------------------------

    def test_one_writer_s_changes_in_order(self, store: ModelStore, model_file: Path):
        assert list(store.changes()) == [] and store.feed_end() == 0
        store.upload("churn", files=[model_file])
        store.upload("churn", files=[model_file])
        store.set_state("churn", 1, "production")
        store.set_state("churn", 2, "production")
        store.set_state("churn", 2, "staging")
        store.remove_state("churn", "staging")
        store.upload("fraud", files=[model_file])
        store.delete("churn", 2)  # clears production first
        events = list(store.changes())
        assert [(e.event, e.domain, e.version, e.state) for e in events] == [
            ("uploaded", "churn", 1, None),
            ("uploaded", "churn", 2, None),
            ("state_set", "churn", 1, "production"),
            ("state_set", "churn", 2, "production"),
            ("state_set", "churn", 2, "staging"),
            ("state_removed", "churn", 2, "staging"),
            ("uploaded", "fraud", 1, None),
            ("state_removed", "churn", 2, "production"),
            ("deleted", "churn", 2, None),
        ]
        check_feed(events, store)
        assert [e.seq for e in store.changes("churn", since=4)] == [5, 6, 8, 9]
        assert [e.seq for e in store.changes("fraud")] == [7]
        assert store.feed_end() == 9 and list(store.changes(since=9)) == []
        store.delete_domain("fraud")
        assert [(e.event, e.domain, e.version) for e in store.changes(since=9)] == [("deleted", "fraud", None)]

    # --- many writers ----------------------------------------------------------------------------

    WRITER = WRITER

    def test_concurrent_writers_each_change_appears_once_in_order(self, store, store_url, store_options, store_env, tmp_path):
        start = tmp_path / "start"
        procs = []
        for i in range(self.writers):
            model = tmp_path / f"m{i}.bin"
            model.write_bytes(os.urandom(1000))
            procs.append(
                self.start(store_url, store_options, store_env, tmp_path, self.WRITER, str(self.uploads_each), str(model), str(start))
            )
        start.touch()
        outputs = [p.communicate(timeout=600) for p in procs]
        assert [p.returncode for p in procs] == [0] * self.writers, [err[-2000:] for _, err in outputs]
        uploaded = sorted(int(line) for out, _ in outputs for line in out.split())
        assert uploaded == list(range(1, self.writers * self.uploads_each + 1))
        events = list(store.changes())
        check_feed(events, store)
        kinds = Counter(e.event for e in events)
        assert kinds == {"uploaded": len(uploaded), "state_set": len(uploaded)}, kinds
        assert sorted(e.version for e in events if e.event == "uploaded") == uploaded

    # --- killed writers --------------------------------------------------------------------------

    @matrix("step", UPLOAD_STEPS_AFTER_COMMIT)
    def test_an_upload_killed_after_its_commit_loses_no_event(
        self, store, store_url, store_options, store_env, tmp_path, model_file, step, fast_heartbeat
    ):
        store.upload("d", files=[model_file])
        result = self.run_worker(store_url, store_options, store_env, tmp_path, "d", str(model_file), "--crash-at", step, check=False)
        assert result.returncode == -9, result.stderr
        assert [v.version for v in store.list_versions("d")] == [2, 1]  # committed
        events = list(store.changes())  # the reader finds the upload's marker unfinished, and settles the domain
        assert [(e.event, e.version) for e in events] == [("uploaded", 1), ("uploaded", 2)]
        store.upload("d", files=[model_file])
        store.set_state("d", 2, "production")
        events = list(store.changes())
        assert [(e.event, e.version) for e in events] == [("uploaded", 1), ("uploaded", 2), ("uploaded", 3), ("state_set", 2)]
        check_feed(events, store)
        collect_now(store)
        assert [e.seq for e in store.changes()] == [1, 2, 3, 4]

    @matrix("step", UPLOAD_STEPS_AFTER_COMMIT[:2])
    def test_the_next_writer_or_gc_puts_in_a_killed_upload_s_event(
        self, store, store_url, store_options, store_env, tmp_path, model_file, step, fast_heartbeat
    ):
        store.upload("d", files=[model_file])
        result = self.run_worker(store_url, store_options, store_env, tmp_path, "d", str(model_file), "--crash-at", step, check=False)
        assert result.returncode == -9, result.stderr
        store.set_state("d", 2, "production")  # a writer naming the version puts its event in first
        result = self.run_worker(store_url, store_options, store_env, tmp_path, "e", str(model_file), "--crash-at", step, check=False)
        assert result.returncode == -9, result.stderr
        collect_now(store)  # gc, before it removes the dead marker
        events = list(store.storage.list(keys.FEED))
        assert len([info for info in events if keys.seq_from_key(info.key)]) == 4
        events = list(store.changes())
        assert [(e.event, e.domain, e.version) for e in events] == [
            ("uploaded", "d", 1), ("uploaded", "d", 2), ("state_set", "d", 2), ("uploaded", "e", 1),
        ]  # fmt: skip
        check_feed(events, store)

    @matrix("step", STATE_STEPS_AFTER_COMMIT)
    def test_a_state_move_killed_after_its_commit_loses_no_event(
        self, store, store_url, store_options, store_env, tmp_path, model_file, step
    ):
        for _ in range(2):
            store.upload("d", files=[model_file])
        args = ("d", "--set-state", "production=1", "--crash-at", step)
        result = self.run_worker(store_url, store_options, store_env, tmp_path, *args, check=False)
        assert result.returncode == -9, result.stderr
        assert store.states("d") == {"production": 1}  # committed
        assert [(e.event, e.version) for e in store.changes("d")] == [("uploaded", 1), ("uploaded", 2), ("state_set", 1)]
        result = self.run_worker(store_url, store_options, store_env, tmp_path, *args[:2], "staging=2", "--crash-at", step, check=False)
        assert result.returncode == -9, result.stderr
        store.set_state("d", 2, "production")  # the next mover puts the killed one's event in, before its own
        events = list(store.changes())
        assert [(e.event, e.version, e.state) for e in events] == [
            ("uploaded", 1, None), ("uploaded", 2, None), ("state_set", 1, "production"), ("state_set", 2, "staging"),
            ("state_set", 2, "production"),
        ]  # fmt: skip
        check_feed(events, store)

    # --- what a poll costs -----------------------------------------------------------------------

    def test_a_poll_costs_its_new_events_not_the_versions(self, store: ModelStore, model_file: Path):
        costs = {}
        # Ten times the versions, the same cost. Sizes that tell a poll that reads a version, or a
        # listing of the whole feed, from one that does not (the backends' kits list in pages of 5).
        for domain, n in (("small", 6), ("large", 60)):
            first = store.upload(domain, files=[model_file]).metadata
            commit_copies(store, domain, first, range(2, n + 1), events=True)
            store.set_state(domain, n, "production")
            since = store.feed_end() - 3
            calls = count_requests(store.storage)
            polled = list(store.changes(since=since))
            costs[domain] = len(calls)
            assert [e.event for e in polled] == ["uploaded", "uploaded", "state_set"] and polled[
                -1
            ].version == n  # copies commit in any order
            # a listing of uploads/ (and a read of each new marker), one of the feed, a read per new event
            assert len([c for c in calls if c[0] == "read" and c[1].startswith(keys.FEED)]) == 3, calls
            assert len(calls) <= 6, calls
            for name in PRIMITIVES:  # the counter off again
                del store.storage.__dict__[name]
        assert costs["large"] <= costs["small"], costs
        check_feed(list(store.changes()), store)

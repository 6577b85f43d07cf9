"""The change feed and retention at scale, on moto's S3 server on 127.0.0.1 (requests and time) or a local store.

    pip install -e . -e 'plugins/modelstore-s3[test]'
    python bench/lifecycle_bench.py [--backend s3|local] [--versions 10000] [--retain 1000] [--repeat 5]

- ``changes()`` polls at ``--versions`` versions, each with its ``uploaded`` event in the feed (and a
  state move): a poll with nothing new, and with 1, 10 and 100 new events; next to it,
  ``list_versions`` of the same domain (what a poll would cost if it looked at the versions);
  target: a poll costs O(new events), not O(versions);
- what the feed adds to an upload (a listing and a slot: compare ``upload`` with the upload cost of
  the backend's request test);
- ``retain`` of a domain of ``--retain`` versions keeping the last 10 (the others all name one
  10 kB file, which is what gc then reclaims): the dry run (plan and bytes)
  and the deletes; next to it, the same deletes by hand (``delete`` in a loop) in a second domain
  with the same history. Wall time and this process's CPU time (the server's is not in it).

Versions are committed the way the core commits them (claim, record, event;
:func:`modelstore_core.testing.history.commit_copies`), concurrently; only version 1 is a real
upload. Requests: on S3 every attempt, counted through botocore's before-send; on a local store
every storage primitive called (a listing once, however long).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import _common

HERE = Path(__file__).resolve().parent


def counter(backend: str):
    """``measure(store, fn) -> (requests, result)``."""
    if backend == "s3":
        from s3_bench import TESTS

        sys.path.insert(0, str(TESTS))
        from s3_requests import RequestLog

        def measure(store, fn):
            with RequestLog(store.storage).measure() as calls:
                result = fn()
            return len(calls), result

        return measure
    from modelstore_core.testing.feed_contract import PRIMITIVES, count_requests

    def measure(store, fn):
        calls = count_requests(store.storage)
        try:
            result = fn()
        finally:
            for name in PRIMITIVES:
                store.storage.__dict__.pop(name, None)
        return len(calls), result

    return measure


def history(store, domain: str, n: int, work: Path, events: bool) -> float:
    """Versions 1..n of ``domain`` (version 1 uploaded); returns the seconds it took."""
    from modelstore_core.testing.history import commit_copies

    model = work / f"{domain}.bin"
    model.write_bytes(os.urandom(10_000))
    start = time.perf_counter()
    first = store.upload(domain, files=[model]).metadata
    commit_copies(store, domain, first, range(2, n + 1), events=events)
    return time.perf_counter() - start


def run(args: argparse.Namespace, url: str, work: Path) -> None:
    from modelstore_core import ModelStore

    measure = counter(args.backend)
    store = ModelStore(url, cache_dir=work / "cache")
    n = args.versions
    built = history(store, "d", n, work, events=True)
    store.set_state("d", n, "production")
    print(f"{n} versions committed with their events in {built:.1f} s; feed ends at {store.feed_end()}")

    print(f"\n| operation at {n:,} versions | requests | median wall | median client CPU |")
    print("|---|---:|---:|---:|")
    reader = ModelStore(url, cache_dir=work / "reader-cache")
    end = reader.feed_end()
    list(reader.changes(since=end))  # the reader has seen the finished uploads' markers
    for new in (0, 1, 10, 100):
        since = end - new
        requests, found = measure(reader, lambda since=since: list(reader.changes(since=since)))
        assert len(found) == new, (new, len(found))
        wall, cpu = median_times(lambda since=since: list(reader.changes(since=since)), args.repeat)
        print(f"| `changes(since=end - {new})`: {new} new events | {requests} | {wall * 1000:.1f} ms | {cpu * 1000:.1f} ms |")
    requests, _ = measure(reader, lambda: reader.list_versions("d"))
    wall, cpu = median_times(lambda: reader.list_versions("d"), args.repeat)
    what = "baseline: `list_versions` (what a poll that looked at the versions costs)"
    print(f"| {what} | {requests} | {wall * 1000:.1f} ms | {cpu * 1000:.1f} ms |")
    requests, _ = measure(reader, lambda: reader.feed_end())
    print(f"| `feed_end()` (where `watch` starts) | {requests} | | |")

    model = work / "one.bin"
    model.write_bytes(os.urandom(10_000))
    requests, _ = measure(store, lambda: store.upload("d", files=[model]))
    again, _ = measure(store, lambda: store.upload("d", files=[model]))
    print(f"| `upload` of one new small file (its object already stored) | {requests} ({again}) | | |")
    requests, _ = measure(store, lambda: store.set_state("d", n, "staging"))
    print(f"| `set_state` | {requests} | | |")

    r = args.retain
    start = time.perf_counter()
    for domain in ("r", "b"):
        history(store, domain, r - 10, work, events=True)  # versions 1 to r-10 name one 10 kB file
        for i in range(10):  # the 10 kept: real uploads of files of their own
            (work / f"{domain}{i}.bin").write_bytes(os.urandom(10_000))
            store.upload(domain, files=[work / f"{domain}{i}.bin"])
    print(f"\ntwo domains of {r} versions (r and b, the same history) committed in {time.perf_counter() - start:.1f} s")
    print(f"\n| {r:,} versions, keep the last 10 | requests | wall | client CPU |")
    print("|---|---:|---:|---:|")
    (requests, plan), wall, cpu = timed(lambda: measure(store, lambda: store.retain("r", keep_last=10)))
    print(f"| `retain` dry run: {len(plan.deleted)} to delete, {plan.bytes:,} bytes for gc | {requests} | {wall:.2f} s | {cpu:.2f} s |")
    (requests, done), wall, cpu = timed(lambda: measure(store, lambda: store.retain("r", keep_last=10, dry_run=False)))
    per = requests / max(1, len(done.deleted))
    what = f"`retain(..., dry_run=False)`: {len(done.deleted)} deleted"
    print(f"| {what} | {requests} ({per:.1f} per version) | {wall:.2f} s | {cpu:.2f} s |")
    assert len(store.list_versions("r")) == 10
    victims = [v.version for v in store.list_versions("b")][10:]  # what a user deletes by hand: the same versions
    (requests, _), wall, cpu = timed(lambda: measure(store, lambda: [store.delete("b", n) for n in victims]))
    per = requests / max(1, len(victims))
    what = f"baseline: the same {len(victims)} versions deleted by hand (`delete` in a loop)"
    print(f"| {what} | {requests} ({per:.1f} per version) | {wall:.2f} s | {cpu:.2f} s |")
    assert len(store.list_versions("b")) == 10


def median_times(fn, repeat: int) -> tuple[float, float]:
    """The median wall and CPU seconds (this process's) of ``repeat`` calls of ``fn``."""
    runs = [timed(fn)[1:] for _ in range(repeat)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def timed(fn):
    """``(fn(), wall seconds, this process's CPU seconds)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("s3", "local"), default="s3")
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--retain", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"lifecycle_bench: {args.backend}, {time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="lifecycle-bench-") as tmp:
        work = Path(tmp)
        if args.backend == "local":
            run(args, str(work / "store"), work)
            return
        from s3_bench import prepare, server

        with server(work) as running:
            prepare(running.endpoint)
            run(args, f"s3://{_common.BUCKET}/{uuid.uuid4().hex}", work)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()

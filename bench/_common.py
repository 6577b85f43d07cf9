"""What the object-store benchmarks (s3_bench.py, gcs_bench.py) share: the command line, timed
operations each in a fresh process with its own peak RSS, the 400 MB transfer table and the
request-count table at 1,000 versions.

Standard library only at import time: a child process imports the store or the raw SDK inside
the timed region, so its import time and memory are part of what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

BUCKET = "bench"

#: ``raw(op, url, path)``: the raw SDK's "raw-upload" of ``path`` or "raw-download" to ``path``,
#: to key ``<url's prefix>/raw.bin`` of the bench bucket; run in the child, inside the timed region.
Raw = Callable[[str, str, str], None]
#: ``count(store, fn)``: runs ``fn(store)`` and returns (requests, artifact GETs, requests by kind).
Count = Callable[[object, Callable], tuple[int, int, str]]


# --- children: one timed operation per process ---------------------------------------------


def child(op: str, url: str, path: str, work: str, raw: Raw) -> None:
    start = time.perf_counter()
    if op in ("raw-upload", "raw-download"):
        raw(op, url, path)
    else:
        from modelstore_core import ModelStore

        store = ModelStore(url, cache_dir=Path(work) / f"cache-{uuid.uuid4().hex}")
        if op == "store-upload":
            store.upload("big", files=[path])
        else:
            [loaded] = store.load("big")
            assert loaded.stat().st_size == os.path.getsize(path)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "max_rss_mb": peak_rss_kb() / 1024}))


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``repeat`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_kb() -> int:
    """VmHWM, this process's own peak resident set (ru_maxrss can carry the parent's peak across exec)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_child(script: str, op: str, url: str, path: Path, work: Path) -> dict:
    out = subprocess.run([sys.executable, script, "--child", op, url, str(path), str(work)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- parent -------------------------------------------------------------------------------------


def write_random(path: Path, mb: int) -> None:
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))


def transfer_rows(
    script: str,
    base_url: str,
    big: Path,
    work: Path,
    repeat: int,
    *,
    server_name: str,
    raw_name: str,
    raw_calls: tuple[str, str],
    target: str = "",
) -> None:
    results: dict[str, list[dict]] = {}
    out = work / "download.bin"
    for i in range(repeat):  # interleaved, so drift in the server hits both sides alike
        url = f"{base_url}-{i}"  # a fresh store each time: a re-upload would be deduplicated
        results.setdefault("raw-upload", []).append(run_child(script, "raw-upload", url, big, work))
        results.setdefault("store-upload", []).append(run_child(script, "store-upload", url, big, work))
        results.setdefault("raw-download", []).append(run_child(script, "raw-download", url, out, work))
        results.setdefault("store-download", []).append(run_child(script, "store-load", url, big, work))
        out.unlink(missing_ok=True)

    def best(name: str) -> dict:
        runs = results[name]
        return {"seconds": min(r["seconds"] for r in runs), "max_rss_mb": statistics.median(r["max_rss_mb"] for r in runs)}

    rows = (
        ("store-upload", "raw-upload", f"upload (store.upload vs {raw_calls[0]})"),
        ("store-download", "raw-download", f"download (store.load vs {raw_calls[1]})"),
    )
    width, raw_width = max(len(label) for _, _, label in rows) + 1, len(raw_name) + 3
    mb = big.stat().st_size / (1 << 20)
    print(f"\n{mb:.0f} MB artifact, {server_name} on 127.0.0.1, best of {repeat}, each run a fresh process")
    print(f"{'':<{width}}{'store':>10}{raw_name:>{raw_width}}{'ratio':>9}{'store RSS':>12}{'raw RSS':>10}")
    for store_op, raw_op, label in rows:
        s, r = best(store_op), best(raw_op)
        print(
            f"{label:<{width}}{s['seconds']:>9.2f}s{r['seconds']:>{raw_width - 1}.2f}s{s['seconds'] / r['seconds']:>8.2f}x"
            f"{s['max_rss_mb']:>10.0f}MB{r['max_rss_mb']:>8.0f}MB"
        )
    if target:
        print(target)


def request_rows(url: str, work: Path, n: int, how: str, count: Count) -> None:
    from modelstore_core import ModelStore
    from modelstore_core.testing.history import build_history

    store = ModelStore(url, cache_dir=work / "seed-cache")
    last, _ = build_history(store, "d", n, work)  # versions 1 and n uploaded, those between committed copies

    def counted(fn) -> tuple[int, int, str]:
        s = ModelStore(url, cache_dir=work / "count-cache")
        try:
            return count(s, fn)
        finally:
            s.close()

    model = work / "small.bin"
    model.write_bytes(os.urandom(10_000))
    rows = [
        ("list_versions", f"<= {-(-n // 1000) + 2}", lambda s: s.list_versions("d")),
        ("latest", "<= 2", lambda s: s.latest("d")),
        (f"load latest ({len(last.files)} files, fresh cache)", f"<= {3 + len(last.files)}", lambda s: s.load("d")),
        ("load latest again (same cache)", "0 artifact GETs", lambda s: s.load("d")),
        ("upload 1 new small file", "", lambda s: s.upload("u", files=[model])),
        ("upload the same file again", "", lambda s: s.upload("u", files=[model])),
    ]
    print(f"\nHTTP requests at {n} versions ({how})")
    print(f"{'operation':<40}{'requests':>9}{'artifact GETs':>15}   {'target':<18}calls")
    for name, target, fn in rows:
        total, gets, kinds = counted(fn)
        print(f"{name:<40}{total:>9}{gets:>15}   {target:<18}{kinds}")
    store.close()


def tally(kinds) -> str:
    """``"a 2, b 1"`` for the kinds ``["b", "a", "a"]``."""
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


# --- the whole run ----------------------------------------------------------------------------


def main(
    doc: str, *, name: str, scheme: str, server: Callable, prepare: Callable[[str], None], raw: Raw, count: Count, how: str, **transfer
) -> int:
    """A benchmark's entry point. ``server(work)`` is the test server, a
    :class:`modelstore_core.testing.faults.ServerProcess`; once it runs, ``prepare(endpoint)`` points
    this process's environment (the children inherit it) at it and creates the bucket :data:`BUCKET`.
    ``transfer`` goes to :func:`transfer_rows`."""
    script = os.path.abspath(sys.modules["__main__"].__file__)
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6], raw=raw)
        return 0
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-mb", type=int, default=400)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix=f"{name}-bench-") as tmp:
        work = Path(tmp)
        with server(work) as running:
            prepare(running.endpoint)
            if args.big_mb:
                big = work / "big.bin"
                write_random(big, args.big_mb)
                transfer_rows(script, f"{scheme}://{BUCKET}/transfer", big, work, args.repeat, **transfer)
                big.unlink()
            if args.versions:
                request_rows(f"{scheme}://{BUCKET}/versions", work, args.versions, how, count)
    return 0

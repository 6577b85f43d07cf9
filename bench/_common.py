"""What the object-store benchmarks (s3_bench.py, gcs_bench.py, azure_bench.py) share: the command
line, timed operations each in a fresh process with its own peak RSS, the 400 MB transfer table
(with verified GB/s next to this machine's sha256 GB/s), the request-count table at 1,000
versions, and the listing tables (``list_versions`` at 300 versions and ``ls`` of 10,000 domains,
each next to the raw SDK's listing).

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
#: ``raw_list(prefix)``: a plain SDK client (default settings) made now, and a function listing every
#: key under the bucket-relative ``prefix`` with the SDK's own paging: returns (requests, keys).
RawList = Callable[[str], Callable[[], tuple[int, int]]]


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
    print(json.dumps({"seconds": seconds, "cpu_seconds": time.process_time(), "max_rss_mb": peak_rss_kb() / 1024}))


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
    size = big.stat().st_size
    load, raw_load = best("store-download")["seconds"], best("raw-download")["seconds"]
    print(
        f"verified load {size / load / 1e9:.3f} GB/s (download and sha256 check, fresh cache), raw download "
        f"{size / raw_load / 1e9:.3f} GB/s; sha256 on this machine {sha256_rate() / 1e9:.2f} GB/s (hashlib, one core); "
        f"CPU s store/raw load: {statistics.median(r['cpu_seconds'] for r in results['store-download']):.2f}"
        f"/{statistics.median(r['cpu_seconds'] for r in results['raw-download']):.2f}"
    )


def sha256_rate(size: int = 256 << 20) -> float:
    """Bytes per second that hashlib's sha256 digests here (best of 3, from memory)."""
    import hashlib

    data = os.urandom(size)
    return size / min(median_time(lambda: hashlib.sha256(data).digest(), 1) for _ in range(3))


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


def listing_rows(
    script: str,
    url: str,
    work: Path,
    versions: int,
    domains: int,
    repeat: int,
    *,
    raw_list: RawList,
    count: Count,
    environment: Callable[[str], dict],
    upstream_port: int,
    raw_name: str,
) -> None:
    """Issue 24 item 5: ``list_versions`` at ``versions`` versions next to the raw SDK's listing of the
    same prefix (in this process, warm clients, interleaved, medians of ``repeat``), and ``modelstore
    ls`` of ``domains`` domains next to the raw SDK's listing of ``domains/`` (each a fresh process,
    requests counted on the wire by a forwarding proxy)."""
    from modelstore_core import ModelStore
    from modelstore_core.testing.faults import FaultProxy
    from modelstore_core.testing.history import build_domains, build_history

    root = url.split("/", 3)[3] + "/"
    if versions:
        with ModelStore(url, cache_dir=work / "listing-seed") as seed:
            build_history(seed, "d", versions, work)
        lister = ModelStore(url, cache_dir=work / "listing-cache")
        raw = raw_list(root + "domains/d/versions/")
        ours = lambda: lister.list_versions("d")  # noqa: E731
        assert len(ours()) == versions and raw()[1] == versions  # warm: clients made, connections open
        times: dict[str, list[tuple[float, float]]] = {"ours": [], "raw": []}
        for _ in range(repeat):
            for name, fn in (("ours", ours), ("raw", raw)):
                wall, cpu = time.perf_counter(), time.process_time()
                fn()
                times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
        requests, _, kinds = count(lister, lambda s: s.list_versions("d"))
        raw_requests = raw()[0]
        lister.close()
        med = {name: (statistics.median(w for w, _ in t) * 1e3, statistics.median(c for _, c in t) * 1e3) for name, t in times.items()}
        print(
            f"\nlist_versions at {versions} versions vs {raw_name}'s listing of the same prefix (warm clients, interleaved, "
            f"median of {repeat}; load {os.getloadavg()[0]:.1f})"
        )
        print(f"{'':<34}{'wall ms':>9}{'CPU ms':>9}{'requests':>10}")
        print(f"{'store.list_versions':<34}{med['ours'][0]:>9.1f}{med['ours'][1]:>9.1f}{requests:>10}   ({kinds})")
        print(f"{raw_name + ' listing':<34}{med['raw'][0]:>9.1f}{med['raw'][1]:>9.1f}{raw_requests:>10}")
        print(f"ratio {med['ours'][0] / med['raw'][0]:.2f}x wall, {med['ours'][1] / med['raw'][1]:.2f}x CPU; target <= 1.5x")
    if domains:
        ls_url = url + "-domains"
        with ModelStore(ls_url, cache_dir=work / "domains-seed") as seed:
            start = time.perf_counter()
            names = build_domains(seed, domains, work)
            built = time.perf_counter() - start
        ls_root = ls_url.split("/", 3)[3] + "/"
        with FaultProxy(upstream_port) as proxy:
            env = {**os.environ, **environment(proxy.endpoint)}
            runs = {}
            for name, cmd in (
                ("ls", [sys.executable, "-m", "modelstore_core", "ls", "--json", "--store", ls_url]),
                ("raw", [sys.executable, script, "--raw-list", ls_root + "domains/"]),
            ):
                before, cpu = len(proxy.log), resource.getrusage(resource.RUSAGE_CHILDREN)
                wall = time.perf_counter()
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                runs[name] = (
                    time.perf_counter() - wall,
                    after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
                    len(proxy.log) - before,
                    out,
                )
        rows = json.loads(runs["ls"][3])
        assert [r["domain"] for r in rows] == names and all(r["versions"] == 1 for r in rows), rows[:3]
        keys = json.loads(runs["raw"][3])["keys"]
        print(
            f"\nmodelstore ls of {domains} domains ({keys} keys under domains/, built in {built:.0f} s) vs {raw_name}'s listing "
            f"of domains/, each a fresh process, requests counted by a proxy; load {os.getloadavg()[0]:.1f}"
        )
        print(f"{'':<34}{'wall s':>9}{'CPU s':>9}{'requests':>10}")
        for name, label in (("ls", "modelstore ls --json"), ("raw", f"{raw_name} listing")):
            wall, cpu, requests, _ = runs[name]
            print(f"{label:<34}{wall:>9.2f}{cpu:>9.2f}{requests:>10}")
        print(
            f"before (main at 2026-12-06): 1 listing of the domains, then a listing and a record read per domain: "
            f">= {1 + 2 * domains} requests"
        )


def raw_list_child(raw_list: RawList, prefix: str) -> None:
    """``--raw-list PREFIX``: the raw SDK's listing of ``PREFIX`` in this fresh process."""
    requests, keys = raw_list(prefix)()
    print(json.dumps({"requests": requests, "keys": keys}))


def tally(kinds) -> str:
    """``"a 2, b 1"`` for the kinds ``["b", "a", "a"]``."""
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


# --- the whole run ----------------------------------------------------------------------------


def main(
    doc: str,
    *,
    name: str,
    scheme: str,
    server: Callable,
    environment: Callable[[str], dict],
    create_bucket: Callable[[], None],
    raw: Raw,
    raw_list: RawList,
    count: Count,
    how: str,
    **transfer,
) -> int:
    """A benchmark's entry point. ``server(work)`` is the test server, a
    :class:`modelstore_core.testing.faults.ServerProcess`; once it runs, ``environment(endpoint)``
    is what points an SDK at it (set in this process's environment, which the children inherit)
    and ``create_bucket()`` creates :data:`BUCKET`. ``transfer`` goes to :func:`transfer_rows`."""
    script = os.path.abspath(sys.modules["__main__"].__file__)
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6], raw=raw)
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--raw-list":
        raw_list_child(raw_list, sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-mb", type=int, default=400)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--listing-versions", type=int, default=300, help="list_versions vs the raw listing at this many versions")
    parser.add_argument("--domains", type=int, default=10_000, help="modelstore ls of this many domains (0: skip)")
    parser.add_argument("--listing-repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"{name} bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {os.getloadavg()}")

    with tempfile.TemporaryDirectory(prefix=f"{name}-bench-") as tmp:
        work = Path(tmp)
        with server(work) as running:
            os.environ.update(environment(running.endpoint))
            create_bucket()
            if args.big_mb:
                big = work / "big.bin"
                write_random(big, args.big_mb)
                transfer_rows(script, f"{scheme}://{BUCKET}/transfer", big, work, args.repeat, **transfer)
                big.unlink()
            if args.versions:
                request_rows(f"{scheme}://{BUCKET}/versions", work, args.versions, how, count)
            if args.listing_versions or args.domains:
                listing_rows(
                    script,
                    f"{scheme}://{BUCKET}/listing",
                    work,
                    args.listing_versions,
                    args.domains,
                    args.listing_repeat,
                    raw_list=raw_list,
                    count=count,
                    environment=environment,
                    upstream_port=running.port,
                    raw_name=transfer.get("raw_name", "raw SDK"),
                )
    return 0

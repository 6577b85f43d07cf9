"""Scale: many versions in one domain, many domains, one very large file; each figure printed next to
a baseline measured in the same run (issue 12, item 6).

    pip install -e . -e 'plugins/modelstore-s3[test]'
    python bench/scale_bench.py [--versions 100000] [--domains 10000] [--big-gb 20]
                                [--s3-versions 10000] [--s3-domains 2000] [--quick] [--no-s3]

- Local store, ``--versions`` versions in one domain: ``latest``, ``list_versions``, ``info``, an
  upload, ``modelstore ls DOMAIN -n 20`` and the full ``modelstore ls DOMAIN``, each also timed on a
  domain of one version in the same store; baselines: ``os.scandir`` / ``os.listdir`` of the same
  versions directory, plus reading the same record files by hand.
- Local store, ``--domains`` domains of one version each: ``list_domains`` and ``modelstore ls``
  (baseline: ``os.scandir`` of the domains directory, and the same listings and reads by hand).
- moto's S3 server on 127.0.0.1: the same operations at ``--s3-versions`` / ``--s3-domains`` (moto is
  far slower to fill than a directory), every HTTP request counted through botocore's before-send;
  each count is also taken on a domain of one version, split into a constant part and a part that
  follows the stated growth law, and extrapolated by that law to ``--versions`` / ``--domains``.
  Baseline: raw boto3 ``list_objects_v2`` paging of the same prefix (and ``get_object`` of the same
  records).
- A ``--big-gb`` file (sparse source, so only the store's copy takes disk): ``store.upload`` and
  ``store.load`` (fresh cache) each in a fresh process, peak RSS from that process's own VmHWM;
  target < 200 MB. Baselines: ``cp --sparse=never`` + one sha256 pass (upload), one sha256 pass of
  the stored object (load). Skipped, with a message, when the disk has less than 2 x size + 2 GB free.

The many versions are committed through the core's own commit path (claim, then create the
record), concurrently (:func:`modelstore_core.testing.history.commit_copies`), from a store opened
with ``fsync=False`` (building is not what is measured); every measured operation uses a default
store. Timings are medians; the load average is printed beside each section, since other processes
may share the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import _common
from _common import median_time

from modelstore_core import ModelStore
from modelstore_core.testing.history import build_history, commit_copies

BIG_DOMAIN, ONE_DOMAIN = "d", "one"
LS_LIMIT = 20


# --- helpers ---------------------------------------------------------------------------------


def once(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min), {os.cpu_count()} cpus"


def header(title: str) -> None:
    print(f"\n{title}   [{load_note()}]")


def cli_ls(store, *args: str) -> str:
    """``modelstore ls ARGS`` in this process (click's runner, piped output), on ``store`` itself so
    that its requests can be counted."""
    from click.testing import CliRunner

    from modelstore_core.cli import cli, context

    original = context.CommandLine.store
    context.CommandLine.store = lambda self: store
    try:
        result = CliRunner().invoke(cli, ["ls", *args], catch_exceptions=False)
    finally:
        context.CommandLine.store = original
    if result.exit_code != 0:
        raise RuntimeError(f"modelstore ls {' '.join(args)} failed: {result.output}")
    return result.output


def write_small(path: Path) -> Path:
    path.write_bytes(os.urandom(10_000))  # new content each time: never a deduplicated upload
    return path


def build_domains(store, first: dict, names: list[str]) -> None:
    """Version 1 of each domain in ``names``: a committed copy of ``first`` (its objects are stored)."""
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda name: commit_copies(store, name, {**first, "domain": name}, [1], workers=1), names))


def glue(work: Path) -> None:
    """The hand-written equivalent of a small upload: copy the file and write a record, both fsync'd."""
    dest = work / "glue" / os.urandom(8).hex()
    dest.mkdir(parents=True)
    shutil.copyfile(write_small(work / "glue.bin"), dest / "model.bin")
    with open(dest / "meta.json", "w") as f:
        json.dump({"version": 1}, f)
        f.flush()
        os.fsync(f.fileno())


def domain_names(count: int) -> list[str]:
    return [f"dom{i:06d}" for i in range(count)]


# --- local store ------------------------------------------------------------------------------


def local_row(name: str, law: str, small: float | None, big: float | None, baseline_name: str, baseline: float) -> None:
    s = fmt(small) if small is not None else "-"
    b = fmt(big) if big is not None else "-"
    print(f"{name:<34}{law:<26}{s:>11}{b:>11}   {baseline_name:<44}{fmt(baseline):>10}")


def local_versions(work: Path, n: int, repeat: int) -> None:
    root = work / "versions-store"
    builder = ModelStore(root, cache_dir=work / "cache", fsync=False)
    seconds, _ = once(lambda: build_history(builder, BIG_DOMAIN, n, work))
    builder.upload(ONE_DOMAIN, files=[write_small(work / "one.bin")])
    header(f"Local store, one domain of {n:,} versions (built in {seconds:.1f} s, {n / seconds:,.0f} versions/s, 16 threads, fsync off)")
    store = ModelStore(root, cache_dir=work / "cache")
    vdir = root / "domains" / BIG_DOMAIN / "versions"
    newest = sorted(os.listdir(vdir))[-1]
    assert store.latest(BIG_DOMAIN).version == n and len(store.list_versions(BIG_DOMAIN)) == n

    def scandir() -> int:
        with os.scandir(vdir) as it:
            return sum(1 for _ in it)

    def read_json(name: str) -> dict:
        with open(vdir / name, "rb") as f:
            return json.loads(f.read())

    def newest_by_hand() -> dict:
        return read_json(max(os.listdir(vdir)))

    def ls_by_hand(limit: int | None) -> list[dict]:
        names = sorted(os.listdir(vdir), reverse=True)[:limit]
        return [read_json(name) for name in names]

    print(f"{'operation':<34}{'grows with n':<26}{'1 version':>11}{f'{n:,} v.':>11}   {'baseline, same run, at n':<44}{'':>10}")
    t_scan = median_time(scandir, repeat)
    t_listdir = median_time(lambda: sorted(os.listdir(vdir)), repeat)
    for name, law, fn, base_name, base in (
        ("latest()", "O(1): stats from the hint", lambda d: store.latest(d), "os.scandir of the versions dir", t_scan),
        ("list_versions()", "O(n)", lambda d: store.list_versions(d), "sorted(os.listdir(versions dir))", t_listdir),
        (
            "info() (latest + its record)",
            "O(1)",
            lambda d: store.info(d),
            "os.listdir + max + read that JSON",
            median_time(newest_by_hand, repeat),
        ),
        (
            f"modelstore ls DOMAIN -n {LS_LIMIT}",
            "O(1): 20 stats + 20 reads",
            lambda d: cli_ls(store, d, "-n", str(LS_LIMIT)),
            f"sorted(os.listdir) + read {LS_LIMIT} JSON",
            median_time(lambda: ls_by_hand(LS_LIMIT), repeat),
        ),
    ):
        local_row(name, law, median_time(partial(fn, ONE_DOMAIN), repeat), median_time(partial(fn, BIG_DOMAIN), repeat), base_name, base)

    small = work / "small.bin"
    t_one = median_time(lambda: store.upload(ONE_DOMAIN, files=[write_small(small)]), repeat)
    t_big = median_time(lambda: store.upload(BIG_DOMAIN, files=[write_small(small)]), repeat)

    local_row("upload 10 kB (fsync'd)", "O(1)", t_one, t_big, "copy + fsync'd JSON record", median_time(lambda: glue(work), repeat))

    full_s, out = once(lambda: cli_ls(store, BIG_DOMAIN))
    rows = out.count("\n")
    base_s, _ = once(lambda: ls_by_hand(None))
    local_row(
        "modelstore ls DOMAIN (every one)", "O(n) reads, 16 threads", None, full_s, f"read all {rows:,} JSON by hand, 1 thread", base_s
    )
    assert rows == n + repeat, rows
    print(f"  ({rows:,} rows: `ls DOMAIN` without -n reads every version record of the domain)")
    print(f"  newest record {newest}; versions dir holds {scandir():,} entries")


def local_domains(work: Path, count: int, repeat: int) -> None:
    root = work / "domains-store"
    builder = ModelStore(root, cache_dir=work / "cache", fsync=False)
    names = domain_names(count)
    start = time.perf_counter()
    first = builder.upload(names[0], files=[write_small(work / "first.bin")]).metadata
    build_domains(builder, first, names[1:])
    seconds = time.perf_counter() - start
    header(f"Local store, {count:,} domains of one version each (built in {seconds:.1f} s, {count / seconds:,.0f} domains/s, fsync off)")
    store = ModelStore(root, cache_dir=work / "cache")
    ddir = root / "domains"
    assert len(store.list_domains()) == count

    def scandir() -> list[str]:
        with os.scandir(ddir) as it:
            return sorted(e.name for e in it if e.is_dir())

    def ls_by_hand() -> list[tuple[str, int, dict]]:  # what `modelstore ls` prints: count, latest, its time
        rows = []
        for name in scandir():
            versions = sorted(os.listdir(ddir / name / "versions"))
            with open(ddir / name / "versions" / versions[-1], "rb") as f:
                rows.append((name, len(versions), json.loads(f.read())["created"]))
        return rows

    print(f"{'operation':<34}{'grows with d domains':<26}{'':>11}{f'{count:,} d.':>11}   {'baseline, same run':<44}")
    local_row(
        "list_domains()",
        "O(d) dirs, each looked into",
        None,
        median_time(store.list_domains, repeat),
        "os.scandir of domains/ (names, sorted)",
        median_time(scandir, repeat),
    )
    seconds, out = once(lambda: cli_ls(store))
    assert out.count("\n") == count
    local_row(
        "modelstore ls (every domain)",
        "O(d) listings + d reads",
        None,
        seconds,
        "by hand: listdir + newest JSON per domain",
        once(ls_by_hand)[0],
    )
    small = work / "small.bin"
    local_row(
        "latest() of one domain",
        "O(1)",
        None,
        median_time(lambda: store.latest(names[-1]), repeat),
        "os.scandir of its versions dir",
        median_time(lambda: list(os.scandir(ddir / names[-1] / "versions")), repeat),
    )
    local_row(
        "upload to a new domain",
        "O(1)",
        None,
        median_time(lambda: store.upload(f"new{os.urandom(4).hex()}", files=[write_small(small)]), repeat),
        "copy + fsync'd JSON record",
        median_time(lambda: glue(work), repeat),
    )


# --- S3 (moto) --------------------------------------------------------------------------------


class Counter:
    """Requests of ``store``'s own S3 client, through botocore's before-send (retries included)."""

    def __init__(self, store):
        import s3_bench

        if str(s3_bench.TESTS) not in sys.path:
            sys.path.insert(0, str(s3_bench.TESTS))
        from s3_requests import RequestLog

        self.log = RequestLog(store.storage)

    def __call__(self, fn: Callable[[], object]) -> tuple[int, float, str]:
        with self.log.measure() as calls:
            seconds, _ = once(fn)
        return len(calls), seconds, _common.tally(op for op, _, _ in calls)


def pages(n: int) -> int:
    return max(1, math.ceil(n / 1000))


def s3_row(
    name: str,
    law: str,
    grows: Callable[[int], int],
    at_one: int,
    measured: int,
    n: int,
    target_n: int,
    seconds: float,
    kinds: str,
    baseline: str,
) -> None:
    """``grows(n)``: the part of the count that the law says depends on n; the rest is constant."""
    constant = measured - grows(n)
    fits = "fits" if at_one - grows(1) == constant else f"off: {at_one - grows(1)} + law at 1"
    extrapolated = constant + grows(target_n)
    print(f"{name:<34}{law:<26}{at_one:>6}{measured:>10,}{extrapolated:>12,}  {fits:<6}{fmt(seconds):>10}   {baseline:<34}  {kinds}")


def s3_section(work: Path, n: int, d: int, target_n: int, target_d: int) -> None:
    import boto3
    import s3_bench

    with s3_bench.server(work) as running:
        s3_bench.prepare(running.endpoint)
        raw = boto3.client("s3")
        for bucket in ("versions", "domains"):
            raw.create_bucket(Bucket=bucket)
        small = work / "s3-small.bin"

        # -- one domain of n versions
        builder = ModelStore("s3://versions/store", cache_dir=work / "s3-cache")
        seconds, _ = once(lambda: build_history(builder, BIG_DOMAIN, n, work))
        builder.upload(ONE_DOMAIN, files=[write_small(small)])
        builder.close()
        header(
            f"moto S3 server, one domain of {n:,} versions (built in {seconds:.1f} s, {n / seconds:,.0f} versions/s, "
            f"16 threads); requests counted, extrapolated to {target_n:,} by the law"
        )
        store = ModelStore("s3://versions/store", cache_dir=work / "s3-cache-2")
        count = Counter(store)
        prefix = f"store/domains/{BIG_DOMAIN}/versions/"

        def raw_list(bucket: str, prefix: str, **kw) -> tuple[int, float]:
            def go():
                return sum(1 for _ in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **kw))

            seconds, npages = once(go)
            return npages, seconds

        npages, t_list = raw_list("versions", prefix)
        listing = raw.get_paginator("list_objects_v2").paginate(Bucket="versions", Prefix=prefix)
        keys = [o["Key"] for page in listing for o in page["Contents"]]
        newest = sorted(keys, reverse=True)
        t_get20, _ = once(lambda: [raw.get_object(Bucket="versions", Key=k)["Body"].read() for k in newest[:LS_LIMIT]])
        t_start, _ = once(lambda: raw.list_objects_v2(Bucket="versions", Prefix=prefix, StartAfter=newest[1]))
        print(
            f"raw boto3 baseline: list_objects_v2 paging of the versions prefix: {npages} pages, {fmt(t_list)}; "
            f"one page from StartAfter: {fmt(t_start)}; {LS_LIMIT} get_object: {fmt(t_get20)}"
        )
        print(
            f"{'operation':<34}{'requests grow':<26}{'at 1':>6}{f'at {n:,}':>10}{f'at {target_n:,}':>12}  {'law':<6}{'moto time':>10}   "
            f"{'baseline (raw boto3, same run)':<34}  calls at n"
        )
        for name, law, grows, fn, baseline in (
            ("latest()", "O(1): 2", lambda k: 0, lambda dom: store.latest(dom), f"1 page from StartAfter {fmt(t_start)}"),
            ("list_versions()", "O(n/1000) pages", pages, lambda dom: store.list_versions(dom), f"{npages} pages {fmt(t_list)}"),
            ("info()", "O(1): 3", lambda k: 0, lambda dom: store.info(dom), "1 page + 1 get"),
            (
                f"modelstore ls DOMAIN -n {LS_LIMIT}",
                f"O(1): 1 page + {LS_LIMIT}",
                lambda k: min(k, LS_LIMIT),
                lambda dom: cli_ls(store, dom, "-n", str(LS_LIMIT)),
                f"1 page from StartAfter + {LS_LIMIT} gets {fmt(t_start + t_get20)}",
            ),
            (
                "modelstore ls DOMAIN (every one)",
                "O(n/1000) + n reads",
                lambda k: pages(k) + k,
                lambda dom: cli_ls(store, dom),
                "see below",
            ),
            ("upload 10 kB", "O(1)", lambda k: 0, lambda dom: store.upload(dom, files=[write_small(small)]), ""),
        ):
            at_one, _, _ = count(partial(fn, ONE_DOMAIN))
            measured, seconds, kinds = count(partial(fn, BIG_DOMAIN))
            s3_row(name, law, grows, at_one, measured, n, target_n, seconds, kinds, baseline)
        t_all, _ = once(lambda: [raw.get_object(Bucket="versions", Key=k)["Body"].read() for k in keys])
        print(f"  baseline of the full ls: {npages} pages + {len(keys):,} get_object, one thread: {fmt(t_list + t_all)}")
        store.close()

        # -- d domains of one version
        builder = ModelStore("s3://domains/store", cache_dir=work / "s3-cache")
        names = domain_names(d)
        start = time.perf_counter()
        first = builder.upload(names[0], files=[write_small(small)]).metadata
        build_domains(builder, first, names[1:])
        seconds = time.perf_counter() - start
        builder.close()
        header(
            f"moto S3 server, {d:,} domains of one version each (built in {seconds:.1f} s, {d / seconds:,.0f} domains/s); "
            f"extrapolated to {target_d:,}"
        )
        # The same calls on a store of one domain give the constant part of each count.
        one = ModelStore("s3://domains/one", cache_dir=work / "s3-cache-3")
        one.upload(ONE_DOMAIN, files=[write_small(small)])
        store = ModelStore("s3://domains/store", cache_dir=work / "s3-cache-2")
        count, count_one = Counter(store), Counter(one)
        npages, t_list = raw_list("domains", "store/domains/", Delimiter="/")

        def ls_by_hand() -> int:  # what `modelstore ls` needs per domain: its versions, the newest record
            requests = 0
            for page in raw.get_paginator("list_objects_v2").paginate(Bucket="domains", Prefix="store/domains/", Delimiter="/"):
                requests += 1
                for p in page.get("CommonPrefixes", ()):
                    listed = raw.list_objects_v2(Bucket="domains", Prefix=p["Prefix"] + "versions/")["Contents"]
                    raw.get_object(Bucket="domains", Key=listed[-1]["Key"])["Body"].read()
                    requests += 2
            return requests

        t_by_hand, by_hand = once(ls_by_hand)
        print(
            f"raw boto3 baseline: list_objects_v2 paging of domains/ with Delimiter='/': {npages} pages, {fmt(t_list)}; "
            f"by hand, per domain one listing and one get (what `ls` shows), one thread: {by_hand:,} requests, {fmt(t_by_hand)}"
        )
        print(
            f"{'operation':<34}{'requests grow':<26}{'at 1':>6}{f'at {d:,}':>10}{f'at {target_d:,}':>12}  {'law':<6}{'moto time':>10}   "
            f"{'baseline (raw boto3, same run)':<34}  calls at d"
        )
        for name, law, grows, fn, baseline in (
            ("list_domains()", "O(d/1000) pages", pages, lambda s: s.list_domains(), f"{npages} pages {fmt(t_list)}"),
            (
                "modelstore ls (every domain)",
                "O(d/1000) + 2 per domain",
                lambda k: pages(k) + 2 * k,
                lambda s: cli_ls(s),
                f"by hand {by_hand:,} requests {fmt(t_by_hand)}",
            ),
        ):
            at_one, _, _ = count_one(partial(fn, one))
            measured, seconds, kinds = count(partial(fn, store))
            s3_row(name, law, grows, at_one, measured, d, target_d, seconds, kinds, baseline)
        for name, fn in (
            ("latest() of one domain", lambda s: s.latest(names[-1] if s is store else ONE_DOMAIN)),
            ("upload to a new domain", lambda s: s.upload(f"new{os.urandom(4).hex()}", files=[write_small(small)])),
        ):
            at_one, _, _ = count_one(partial(fn, one))
            measured, seconds, kinds = count(partial(fn, store))
            s3_row(name, "O(1)", lambda k: 0, at_one, measured, d, target_d, seconds, kinds, "")
        store.close()
        one.close()


# --- a very large file ------------------------------------------------------------------------


def big_file(work: Path, gb: float) -> None:
    size = int(gb * (1 << 30))
    free = shutil.disk_usage(work).free
    need = 2 * size + (2 << 30)  # the store's copy and cp's, at once
    if free < need:
        print(
            f"\nSKIPPED: the {gb:g} GB file needs {need / (1 << 30):.1f} GiB free on {work}, "
            f"only {free / (1 << 30):.1f} GiB there (--big-gb smaller, or BENCH_DIR elsewhere)"
        )
        return
    header(f"A {gb:g} GiB file (sparse source), local store in {work}, each run a fresh process")
    big = work / "big.bin"
    with open(big, "wb") as f:
        os.truncate(f.fileno(), size)
    script = os.path.abspath(__file__)
    store_dir = work / "big-store"
    try:
        copy = work / "big.copy"

        def cp() -> None:
            subprocess.run(["cp", "--sparse=never", str(big), str(copy)], check=True)
            copy.unlink()

        def sha256_pass() -> None:
            with open(big, "rb") as f:
                hashlib.file_digest(f, "sha256")

        # The baseline before and after the upload (best of the two): the first writes of a
        # virtual disk's fresh blocks can be slower than later ones.
        t_cp, t_hash = once(cp)[0], once(sha256_pass)[0]
        up = _common.run_child(script, "store-upload", str(store_dir), big, work)
        t_cp, t_hash = min(t_cp, once(cp)[0]), min(t_hash, once(sha256_pass)[0])
        t_base_up = t_cp + t_hash
        print(
            f"  baseline parts, best of two (before and after the upload): cp --sparse=never {fmt(t_cp)}, "
            f"sha256 pass of the sparse source {fmt(t_hash)}"
        )
        [obj] = [p for p in (store_dir / "objects").rglob("*") if p.is_file()]
        assert obj.stat().st_size == size

        def baseline_load() -> None:
            with open(obj, "rb") as f:
                hashlib.file_digest(f, "sha256")

        t_base_load, _ = once(baseline_load)
        load = _common.run_child(script, "store-load", str(store_dir), big, work)
        for name, r, base_name, base in (
            ("upload (store.upload)", up, "cp --sparse=never + sha256 pass", t_base_up),
            ("load (store.load, fresh cache)", load, "sha256 pass of the stored object", t_base_load),
        ):
            ok = "ok" if r["max_rss_mb"] < 200 else "MISSED"
            print(
                f"{name:<34}{fmt(r['seconds']):>10}   {base_name:<34}{fmt(base):>10}   ratio {r['seconds'] / base:5.2f}x"
                f"   peak RSS {r['max_rss_mb']:6.1f} MB (target < 200 MB: {ok})"
            )
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
        for p in work.glob("cache-*"):
            shutil.rmtree(p, ignore_errors=True)
        big.unlink(missing_ok=True)
        (work / "big.copy").unlink(missing_ok=True)


def roomiest_dir() -> str:
    candidates = [os.environ.get("BENCH_DIR"), tempfile.gettempdir(), os.getcwd()]
    return max((c for c in candidates if c and os.path.isdir(c)), key=lambda c: shutil.disk_usage(c).free)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _common.child(*sys.argv[2:6], raw=None)
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=100_000, help="versions of one domain, local store")
    parser.add_argument("--domains", type=int, default=10_000, help="domains, local store")
    parser.add_argument("--big-gb", type=float, default=20, help="size of the large file in GiB (0: skip)")
    parser.add_argument("--s3-versions", type=int, default=10_000, help="versions of one domain on moto (0: skip S3)")
    parser.add_argument("--s3-domains", type=int, default=2_000, help="domains on moto")
    parser.add_argument("--repeat", type=int, default=5, help="runs per median")
    parser.add_argument("--quick", action="store_true", help="5,000 versions, 500 domains, 1 GiB file, 1,000 / 200 on moto")
    parser.add_argument("--no-s3", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.versions, args.domains, args.big_gb, args.s3_versions, args.s3_domains = 5_000, 500, 1, 1_000, 200
    total = time.perf_counter()
    home = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="modelstore-scale-", dir=roomiest_dir()) as tmp:
        work = Path(tmp)
        os.environ["MODELSTORE_CACHE_DIR"] = str(work / "cache")
        os.chdir(work)  # outside any git repository: uploads record no git metadata
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, work dir {work}, "
            f"{shutil.disk_usage(work).free / (1 << 30):.0f} GiB free, {load_note()}"
        )
        if args.versions:
            local_versions(work, args.versions, args.repeat)
        if args.domains:
            local_domains(work, args.domains, args.repeat)
        if args.s3_versions and not args.no_s3:
            s3_section(work, args.s3_versions, args.s3_domains, args.versions or 100_000, args.domains or 10_000)
        if args.big_gb:
            big_file(work, args.big_gb)
        os.chdir(home)
    print(f"\ntotal {time.perf_counter() - total:.0f} s   [{load_note()}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

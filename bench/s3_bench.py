"""S3 backend benchmark against moto's S3 server on 127.0.0.1, each figure next to raw boto3 in the same run.

    pip install -e . -e 'plugins/modelstore-s3[test]'
    python bench/s3_bench.py [--big-mb 400] [--versions 1000] [--repeat 1]

- upload and download of a ``--big-mb`` artifact through the store vs boto3's ``upload_file`` /
  ``download_file`` with the same (default) TransferConfig; target <= 1.2x (modelstore 0.0.82:
  7.7x and 4.5x). Each run is a fresh process, so its peak RSS (VmHWM) is its own.
- HTTP requests (every attempt) at ``--versions`` versions: list_versions, latest, load of the
  latest (fresh cache), the same load again from the same cache, and an upload of one small file.

The ``--versions`` version records are written the way the core commits a version (claim, then
record with create-if-absent; the latest hint moved at the end), concurrently: only versions 1 and
N are real uploads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

BUCKET = "bench"


# --- children: one timed operation per process ---------------------------------------------


def child(op: str, url: str, path: str, work: str) -> None:
    start = time.perf_counter()
    if op in ("raw-upload", "raw-download"):
        import boto3
        from boto3.s3.transfer import TransferConfig

        client = boto3.client("s3")
        key = url.split("/", 3)[3] + "/raw.bin"
        if op == "raw-upload":
            client.upload_file(path, BUCKET, key, Config=TransferConfig())
        else:
            client.download_file(BUCKET, key, path, Config=TransferConfig())
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


def peak_rss_kb() -> int:
    """VmHWM, this process's own peak resident set (ru_maxrss can carry the parent's peak across exec)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_child(op: str, url: str, path: Path, work: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", op, url, str(path), str(work)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- parent -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(work / "moto.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("moto server did not start")


def write_random(path: Path, mb: int) -> None:
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))


def transfer_rows(base_url: str, big: Path, work: Path, repeat: int) -> None:
    results: dict[str, list[dict]] = {}
    out = work / "download.bin"
    for i in range(repeat):  # interleaved, so drift in the server hits both sides alike
        url = f"{base_url}-{i}"  # a fresh store each time: a re-upload would be deduplicated
        results.setdefault("raw-upload", []).append(run_child("raw-upload", url, big, work))
        results.setdefault("store-upload", []).append(run_child("store-upload", url, big, work))
        results.setdefault("raw-download", []).append(run_child("raw-download", url, out, work))
        results.setdefault("store-download", []).append(run_child("store-load", url, big, work))
        out.unlink(missing_ok=True)

    def best(name: str) -> dict:
        runs = results[name]
        return {"seconds": min(r["seconds"] for r in runs), "max_rss_mb": statistics.median(r["max_rss_mb"] for r in runs)}

    mb = big.stat().st_size / (1 << 20)
    print(f"\n{mb:.0f} MB artifact, moto server on 127.0.0.1, best of {repeat}, each run a fresh process")
    print(f"{'':<34}{'store':>10}{'raw boto3':>12}{'ratio':>9}{'store RSS':>12}{'raw RSS':>10}")
    for store_op, raw_op, label in (("store-upload", "raw-upload", "upload (store.upload vs upload_file)"),
                                    ("store-download", "raw-download", "download (store.load vs download_file)")):
        s, r = best(store_op), best(raw_op)
        print(f"{label:<34}{s['seconds']:>9.2f}s{r['seconds']:>11.2f}s{s['seconds'] / r['seconds']:>8.2f}x"
              f"{s['max_rss_mb']:>10.0f}MB{r['max_rss_mb']:>8.0f}MB")
    print("target <= 1.2x (modelstore 0.0.82: 7.7x upload, 4.5x download)")


def request_rows(url: str, work: Path, n: int) -> None:
    from modelstore_core import ModelStore, layout, versions

    files = []
    for i in range(5):
        files.append(work / f"f{i}.bin")
        files[-1].write_bytes(os.urandom(50_000 + i))
    store = ModelStore(url, cache_dir=work / "seed-cache")
    first = store.upload("d", files=files[:2]).metadata

    def commit(v: int) -> None:
        record = {**first, "version": v, "created": datetime.now(timezone.utc).isoformat()}
        store.storage.put_if_absent(layout.claim_key("d", v), versions.dumps({"claimed": record["created"]}))
        store.storage.put_if_absent(layout.version_key("d", v), versions.dumps(record))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(commit, range(2, n)))
    versions.advance_latest(store.storage, "d", n - 1)
    last = store.upload("d", files=files[2:])
    assert last.version == n

    def counted(make_store, fn) -> tuple[int, int, str]:
        s = make_store()
        calls: list[tuple[str, str]] = []
        s.storage.client.meta.events.register(
            "before-send.s3", lambda request, event_name, **kw: calls.append((event_name.rsplit(".", 1)[-1], request.url))
        )
        fn(s)
        s.close()
        object_gets = sum(1 for op, u in calls if op == "GetObject" and "/objects/sha256/" in u)
        ops: dict[str, int] = {}
        for op, _ in calls:
            ops[op] = ops.get(op, 0) + 1
        return len(calls), object_gets, ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))

    cache = work / "count-cache"
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
    print(f"\nHTTP requests at {n} versions (every attempt counted through botocore's before-send)")
    print(f"{'operation':<40}{'requests':>9}{'artifact GETs':>15}   {'target':<18}calls")
    for name, target, fn in rows:
        total, gets, ops = counted(lambda: ModelStore(url, cache_dir=cache), fn)
        print(f"{name:<40}{total:>9}{gets:>15}   {target:<18}{ops}")
    store.close()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-mb", type=int, default=400)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="s3-bench-") as tmp:
        work = Path(tmp)
        moto, endpoint = start_moto(work)
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=endpoint, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        os.environ.pop("AWS_PROFILE", None)
        try:
            import boto3

            boto3.client("s3").create_bucket(Bucket=BUCKET)
            if args.big_mb:
                big = work / "big.bin"
                write_random(big, args.big_mb)
                transfer_rows(f"s3://{BUCKET}/transfer", big, work, args.repeat)
                big.unlink()
            if args.versions:
                request_rows(f"s3://{BUCKET}/versions", work, args.versions)
        finally:
            moto.kill()
            moto.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

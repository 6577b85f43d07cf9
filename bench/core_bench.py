"""Core benchmarks, each printed next to a baseline measured in the same run.

    python bench/core_bench.py [--big-mb 400] [--versions 1000]

Targets (issue 2): tiny upload in a git repo <= 20 ms median; fresh-interpreter import +
ModelStore + list_domains <= 150 ms; 400 MB upload <= 1.1x (cp + one sha256 pass), re-upload
writes no artifact bytes; peak RSS < +100 MB during that upload; latest/list_versions at 1,000 versions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import median_time

from modelstore_core import ModelStore


def row(name: str, value: float, baseline_name: str, baseline: float, unit: str = "ms", target: str = "") -> None:
    scale = 1000 if unit == "ms" else 1
    ratio = value / baseline if baseline else float("inf")
    print(f"{name:<44} {value * scale:9.1f} {unit}   {baseline_name:<34} {baseline * scale:9.1f} {unit}   ratio {ratio:5.2f}x  {target}")


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def tiny_upload(work: Path) -> None:
    repo = work / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=env, capture_output=True)
    model = repo / "model.onnx"
    model.write_bytes(os.urandom(2048))
    os.chdir(repo)
    store = ModelStore(work / "tiny-store", cache_dir=work / "cache")
    store.upload("warmup", files=[model])
    counter = iter(range(10**9))

    def upload():
        model.write_bytes(os.urandom(2048))  # new content each time: no deduplication shortcut
        store.upload("tiny", files=[model])

    def glue():  # the hand-written glue: copy the file, write a JSON record, both durable
        n = next(counter)
        dest = work / "glue" / f"{n}"
        dest.mkdir(parents=True)
        shutil.copyfile(model, dest / "model.onnx")
        with open(dest / "meta.json", "w") as f:
            json.dump({"version": n}, f)
            f.flush()
            os.fsync(f.fileno())

    t = median_time(upload, 60)
    b = median_time(glue, 60)
    assert store.upload("tiny", files=[model]).metadata["git"]["commit"]
    row("tiny upload in a git repo (median of 60)", t, "copy + fsync'd JSON record", b, target="target <= 20 ms")
    os.chdir(work)


def startup(work: Path) -> None:
    store_dir = work / "startup-store"
    code = f"import modelstore_core; modelstore_core.ModelStore({str(store_dir)!r}).list_domains()"

    def run(c):
        return lambda: subprocess.run([sys.executable, "-c", c], check=True)

    t = median_time(run(code), 11)
    b = median_time(run("pass"), 11)
    row("fresh python: import + ModelStore + list_domains", t, "fresh python: pass", b, target="target <= 150 ms")


def big_upload(work: Path, mb: int) -> None:
    big = work / "big.bin"
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(mb):
            f.write(hashlib.sha256(block + i.to_bytes(4, "big")).digest() * (1 << 15))
    subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache for both sides

    def baseline():
        subprocess.run(["cp", str(big), str(work / "big.copy")], check=True)
        with open(big, "rb") as f:
            hashlib.file_digest(f, "sha256")
        os.remove(work / "big.copy")

    def upload(fsync: bool):
        root = work / "fresh-store"
        shutil.rmtree(root, ignore_errors=True)
        store = ModelStore(root, cache_dir=work / "cache", fsync=fsync)
        start = time.perf_counter()
        store.upload("big", files=[big])
        return time.perf_counter() - start

    baseline()
    times_b, times_u, times_nosync = [], [], []
    for _ in range(3):  # interleaved, so both see the same machine state
        times_b.append(median_time(baseline, 1))
        times_u.append(upload(True))
        times_nosync.append(upload(False))
    b = statistics.median(times_b)
    row(f"upload {mb} MB file (fresh store, median of 3)", statistics.median(times_u), "cp + sha256 pass", b, "s", "target <= 1.10x")
    row("  same, ModelStore(..., fsync=False)", statistics.median(times_nosync), "cp + sha256 pass", b, "s")

    root = work / "big-store"
    store = ModelStore(root, cache_dir=work / "cache")
    store.upload("big", files=[big])
    before = dir_bytes(root / "objects")
    start = time.perf_counter()
    store.upload("big", files=[big])
    again = time.perf_counter() - start
    written = dir_bytes(root / "objects") - before
    print(f"{'re-upload of the same file':<44} {again:9.2f} s    artifact bytes written: {written} (target 0)")

    # VmHWM (peak resident set) of this process alone: ru_maxrss can carry a parent's peak across exec.
    code = f"""
def hwm():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
from modelstore_core import ModelStore
store = ModelStore({str(work / "rss-store")!r}, cache_dir={str(work / "cache")!r})
store.list_domains()
base = hwm()
store.upload("big", files=[{str(big)!r}])
print(base, hwm())
"""
    base, peak = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    print(
        f"{'peak RSS during the upload':<44} {peak / 1024:9.1f} MB   interpreter + core before it: {base / 1024:.1f} MB"
        f"   growth {(peak - base) / 1024:.1f} MB (target < 100 MB)"
    )


def many_versions(work: Path, n: int) -> None:
    root = work / "many-store"
    store = ModelStore(root, cache_dir=work / "cache")
    model = work / "m.bin"
    start = time.perf_counter()
    for i in range(n):
        model.write_bytes(i.to_bytes(4, "big"))
        store.upload("many", files=[model])
    per_upload = (time.perf_counter() - start) / n
    print(f"{f'{n} uploads to one domain':<44} {per_upload * 1000:9.1f} ms each")
    versions_dir = root / "domains" / "many" / "versions"
    b = median_time(lambda: sorted(os.listdir(versions_dir)), 21)
    row(f"latest() at {n} versions", median_time(lambda: store.latest("many"), 21), "os.listdir of the versions dir", b)
    row(f"list_versions() at {n} versions", median_time(lambda: store.list_versions("many"), 21), "os.listdir of the versions dir", b)
    assert store.latest("many").version == n and len(store.list_versions("many")) == n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mb", type=int, default=400)
    parser.add_argument("--versions", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelstore-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        work = Path(tmp)
        os.environ["MODELSTORE_CACHE_DIR"] = str(work / "cache")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, work dir {work}")
        tiny_upload(work)
        startup(work)
        big_upload(work, args.big_mb)
        many_versions(work, args.versions)


if __name__ == "__main__":
    main()

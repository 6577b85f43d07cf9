"""Benchmark: modelstore-torch against plain torch.save / torch.load on a ~400 MB model.

    python bench/torch_bench.py [--mb 400] [--repeat 3] [--dir DIR] [--no-rss]

Needs modelstore-core and modelstore-torch installed (``pip install -e . -e plugins/modelstore-torch[torch]``).
Prints, for the same model in the same run:

- peak RSS of an upload and of a load (into an existing instance), each in its own fresh
  subprocess, against the weights' size, beside torch.save's and torch.load's: the whole peak,
  and the peak above the imports (python + torch, the same with or without modelstore), which is
  what the weights cost (target <= 1.2x: the model itself is 1.0x);
- times: ``torch.save(state_dict)`` followed by ``os.fsync`` (durable, as an upload is) vs
  ``store.upload`` (target <= 1.0x), ``torch.load + load_state_dict`` vs
  ``store.load(model=fresh_instance)`` with the cache the upload used (target <= 1.0x: the upload
  proved its objects there, issue 24) and again once loaded (target <= 0.25x);
  ``safetensors.torch.save_file``/``load_file`` as a second baseline where safetensors is installed;
  wall-clock medians and bests, and the median CPU seconds of this process (all threads), each
  operation started once ``os.sync`` wrote out what the others left; a load into a new cache (which
  hashes) is the breakdown's two load steps;
- the disk space a load from the local store adds to the cache (target 0: hard links);
- a breakdown of the store's upload and load into their steps, each step timed on its own.

Every upload goes to a new local store (a re-upload of the same bytes is deduplicated and
skips the copy) with a new cache directory, which the first load then uses. Files were just
written, so reads come from the page cache for both sides. The load average is printed at the
start and the end (the machine may be shared: compare ratios, not seconds).

Peak RSS is the process's resident high-water mark (``VmHWM``; ``ru_maxrss`` is printed too
but on Linux a child inherits its parent's ``ru_maxrss`` across ``exec``, which is why the
children run before this process builds its own model). It includes the interpreter, torch
(~200 MiB) and the model itself.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

WIDTH = 4096
FIRST_LOAD = "store.load (first, cache of the upload)"


class Big(torch.nn.Module):
    """A stack of square float32 Linear layers: ``layers`` x (WIDTH^2 + WIDTH) parameters."""

    def __init__(self, layers: int):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(WIDTH, WIDTH) for _ in range(layers))

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


def layers_for(mb: int) -> int:
    return max(1, round(mb * 1e6 / ((WIDTH * WIDTH + WIDTH) * 4)))


def weights_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def peaks() -> dict[str, float]:
    """Peak resident memory in MiB: VmHWM (this process's own) and ru_maxrss."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
    hwm = None
    try:
        with open("/proc/self/status") as f:
            hwm = next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:")), None)
    except OSError:
        pass
    return {"peak": hwm if hwm is not None else maxrss, "ru_maxrss": maxrss}


#: CPU seconds (this process, every thread) of the last :func:`timed` call.
LAST_CPU = [0.0]


def timed(fn) -> float:
    """Wall seconds of ``fn()``; its CPU seconds go to ``LAST_CPU``. Dirty pages and deletions left by
    what ran before are written out first (``os.sync``, not timed), so no operation pays for another's."""
    os.sync()
    cpu, t = time.process_time(), time.perf_counter()
    fn()
    LAST_CPU[0] = time.process_time() - cpu
    return time.perf_counter() - t


def save_and_fsync(state: dict, path: Path) -> None:
    """``torch.save``, then ``fsync``: the file durable, as a store's objects are."""
    torch.save(state, path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- one operation per fresh process, for peak RSS -------------------------------------------


def child(args) -> None:
    from modelstore_core import ModelStore

    torch.manual_seed(0)
    imports = peaks()["peak"]
    model = Big(args.layers)
    built = peaks()["peak"]
    root = Path(args.dir)
    if args.child == "upload":
        ModelStore(root / "rss-store", cache_dir=root / "rss-cache-up").upload("bench", model=model)
    elif args.child == "load":
        ModelStore(root / "rss-store", cache_dir=root / "rss-cache-load").load("bench", model=model)
    elif args.child == "torch.save":
        torch.save(model.state_dict(), root / "rss-state.pt")
    elif args.child == "torch.load+load_sd":
        model.load_state_dict(torch.load(root / "rss-state.pt"))
    print(json.dumps({"imports": imports, "built": built, **peaks(), "weights": weights_bytes(model) / 2**20}))


def rss_table(args, root: Path) -> None:
    print("peak RSS, each operation in a fresh subprocess (MiB; includes python, torch and the model)")
    print(f"{'operation':20} {'imports':>8} {'+model':>8} {'peak':>8} {'ru_maxrss':>10} {'peak/weights':>13} {'above imports':>14}")
    for op in ("torch.save", "upload", "load", "torch.load+load_sd"):
        cmd = [sys.executable, __file__, "--child", op, "--layers", str(args.layers), "--dir", str(root)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        ratio, above = r["peak"] / r["weights"], (r["peak"] - r["imports"]) / r["weights"]
        print(f"{op:20} {r['imports']:8.0f} {r['built']:8.0f} {r['peak']:8.0f} {r['ru_maxrss']:10.0f} {ratio:12.2f}x {above:13.2f}x")
    print(
        f"(weights {r['weights']:.0f} MiB; target for upload and load: <= 1.2x the weights, in memory the weights take:"
        " the peak above the imports, i.e. the model itself plus what the operation adds; python and torch are the"
        " same fixed ~230 MiB with or without modelstore)\n"
    )
    for name in ("rss-store", "rss-cache-up", "rss-cache-load"):
        shutil.rmtree(root / name, ignore_errors=True)
    (root / "rss-state.pt").unlink(missing_ok=True)


# --- timings ------------------------------------------------------------------------------------


class Timings:
    def __init__(self, args, root: Path):
        self.args, self.root = args, root
        self.rows: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        torch.manual_seed(0)
        self.model = Big(args.layers)
        self.x = torch.randn(4, WIDTH)
        self.expected = self.model(self.x)

    def record(self, name: str, seconds: float) -> None:
        self.rows.setdefault(name, []).append(seconds)
        self.cpu.setdefault(name, []).append(LAST_CPU[0])

    def baseline(self, i: int) -> None:
        path = self.root / f"state-{i}.pt"
        self.record("torch.save(state_dict)", timed(lambda: torch.save(self.model.state_dict(), path)))
        path.unlink()
        self.record("torch.save + fsync", timed(lambda: save_and_fsync(self.model.state_dict(), path)))
        box = {}
        self.record("torch.load", timed(lambda: box.setdefault("sd", torch.load(path))))
        fresh = Big(self.args.layers)
        load_cpu = LAST_CPU[0]
        seconds = self.rows["torch.load"][-1] + timed(lambda: fresh.load_state_dict(box["sd"]))
        LAST_CPU[0] += load_cpu
        self.record("torch.load + load_state_dict", seconds)
        path.unlink()
        try:
            from safetensors.torch import load_file, save_file
        except ImportError:
            return
        path = self.root / f"state-{i}.safetensors"
        state = {k: v.contiguous() for k, v in self.model.state_dict().items()}
        self.record("safetensors save_file", timed(lambda: save_file(state, path)))
        fresh = Big(self.args.layers)
        self.record("safetensors load_file + load_state_dict", timed(lambda: fresh.load_state_dict(load_file(path))))
        path.unlink()

    def store(self, i: int) -> None:
        from modelstore_core import ModelStore

        store_dir, cache_dir = self.root / f"store-{i}", self.root / f"cache-{i}"
        self.record("store.upload", timed(lambda: ModelStore(store_dir, cache_dir=cache_dir).upload("bench", model=self.model)))
        nosync = self.root / f"store-nosync-{i}"  # torch.save does not fsync either
        self.record("store.upload (fsync=False)", timed(lambda: ModelStore(nosync, fsync=False).upload("bench", model=self.model)))
        shutil.rmtree(nosync)
        fresh = Big(self.args.layers)
        self.record(FIRST_LOAD, timed(lambda: ModelStore(store_dir, cache_dir=cache_dir).load("bench", model=fresh)))
        torch.testing.assert_close(fresh(self.x), self.expected)
        self.record("cache bytes added by the loads", new_bytes(cache_dir))
        fresh = Big(self.args.layers)
        self.record("store.load (cached)", timed(lambda: ModelStore(store_dir, cache_dir=cache_dir).load("bench", model=fresh)))
        torch.testing.assert_close(fresh(self.x), self.expected)
        self.breakdown(i, store_dir)
        shutil.rmtree(store_dir)
        shutil.rmtree(cache_dir)

    def breakdown(self, i: int, store_dir: Path) -> None:
        """The same work step by step, through the functions upload and load call."""
        import modelstore_torch

        from modelstore_core import ModelStore
        from modelstore_core.cache import Cache
        from modelstore_core.hashing import hash_file

        store = ModelStore(store_dir)
        part = self.root / f"part-{i}"
        part.mkdir()
        box = {}
        self.record(
            "  upload: plugin writes (and hashes) the weights",
            timed(lambda: box.setdefault("flavor", modelstore_torch.plugin.serialize(self.model, part, {}))),
        )
        written = sorted(part.iterdir())
        print(f"    ({len(written)} files: {', '.join(p.name for p in written)})", file=sys.stderr)
        self.record("  (sha256 of those files, one after another)", timed(lambda: [hash_file(p) for p in written]))
        shutil.rmtree(part)

        record = store.info("bench").record
        cache = Cache(self.root / f"cache2-{i}")
        box["view"] = None
        self.record("  load: core links the files into the cache", timed(lambda: box.update(view=cache.view(store.storage, record))))
        fresh = Big(self.args.layers)
        view = box["view"]
        self.record(
            "  load: plugin reads (and verifies) into the instance",
            timed(lambda: modelstore_torch.plugin.deserialize(record.flavor, [f.path for f in record.model_files], {"model": fresh}, view)),
        )
        torch.testing.assert_close(fresh(self.x), self.expected)
        shutil.rmtree(self.root / f"cache2-{i}")

    def report(self, size: int) -> None:
        med = {k: statistics.median(v) for k, v in self.rows.items()}
        best = {k: min(v) for k, v in self.rows.items()}
        cpu = {k: statistics.median(v) for k, v in self.cpu.items()}
        print(f"times of {self.args.repeat} runs: median and best; CPU: median seconds of this process's threads (process_time)")
        print(f"{'operation':52} {'median s':>8} {'best s':>7} {'MB/s':>6} {'CPU s':>6}")
        for name, seconds in med.items():
            if name.startswith("cache bytes"):
                continue
            print(f"{name:52} {seconds:8.3f} {best[name]:7.3f} {size / 1e6 / seconds:6.0f} {cpu[name]:6.3f}")
        print()
        print(f"{'ratio':52} {'median':>6} {'best':>6} {'CPU':>6}")

        def ratio(label: str, name: str, baseline: str, target: str = "") -> None:
            figures = (med[name] / med[baseline], best[name] / best[baseline], cpu[name] / cpu[baseline])
            print(f"{label:52} {'x '.join(f'{x:5.2f}' for x in figures)}x  {target}")

        ratio("upload / (torch.save + fsync)", "store.upload", "torch.save + fsync", "(target <= 1.0x)")
        ratio("upload / torch.save", "store.upload", "torch.save(state_dict)")
        ratio("upload (fsync=False) / torch.save", "store.upload (fsync=False)", "torch.save(state_dict)")
        ratio("load, first after the upload / torch.load+load_sd", FIRST_LOAD, "torch.load + load_state_dict", "(target <= 1.0x)")
        ratio("load, cached / torch.load+load_sd", "store.load (cached)", "torch.load + load_state_dict", "(target <= 0.25x)")
        new_cache = self.fresh_cache_load() / med["torch.load + load_state_dict"]
        print(f"load, a new cache (hashes) / torch.load+load_sd     {new_cache:5.2f}x  (median; the breakdown's two load steps)")
        if "safetensors save_file" in med:
            ratio("upload / safetensors save_file", "store.upload", "safetensors save_file")
            ratio("load, first / safetensors load_file+sd", FIRST_LOAD, "safetensors load_file + load_state_dict")
        print(f"disk space the local loads added to the cache       {med['cache bytes added by the loads'] / 1e6:8.1f} MB  (target 0)")

    def fresh_cache_load(self) -> float:
        """Seconds of a load into a cache that has never seen the store: the two load steps of the breakdown."""
        steps = ("  load: core links the files into the cache", "  load: plugin reads (and verifies) into the instance")
        return sum(statistics.median(self.rows[step]) for step in steps)


def new_bytes(directory: Path) -> float:
    """Disk space of the files under ``directory`` that are not hard links to something else."""
    total = 0
    for path in directory.rglob("*"):
        st = path.lstat()
        if path.is_file() and st.st_nlink == 1:
            total += st.st_blocks * 512
    return float(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=400, help="approximate size of the weights in MB (default 400)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timing; the median is shown (default 3)")
    parser.add_argument("--dir", help="working directory (default: a new temporary directory, removed afterwards)")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak RSS table (four subprocesses)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--layers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    args.layers = layers_for(args.mb)
    root = Path(args.dir or tempfile.mkdtemp(prefix="modelstore-torch-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        size = args.layers * (WIDTH * WIDTH + WIDTH) * 4
        print(f"model: {args.layers} x Linear({WIDTH}, {WIDTH}) float32, weights {size / 1e6:.0f} MB ({size / 2**20:.0f} MiB)")
        print(f"torch {torch.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, local store in {root}")
        print(f"load average at the start: {load_average()}\n")
        if not args.no_rss:
            rss_table(args, root)  # first: children inherit this process's ru_maxrss
        timings = Timings(args, root)
        for i in range(args.repeat):
            timings.baseline(i)
            timings.store(i)
        timings.report(size)
        print(f"load average at the end: {load_average()}")
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

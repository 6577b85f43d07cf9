"""Benchmark: modelstore-torch against plain torch.save / torch.load on a ~400 MB model.

    python bench/torch_bench.py [--mb 400] [--repeat 3] [--dir DIR]

Needs modelstore-core and modelstore-torch installed (``pip install -e . -e plugins/modelstore-torch[torch]``).
Prints, for the same model in the same run:

- times: ``torch.save(state_dict)`` vs ``store.upload``, ``torch.load`` (and ``+ load_state_dict``)
  vs ``store.load(model=fresh_instance)`` from a fresh cache, with the ratios (target <= 1.5x);
- a breakdown of the store's upload and load into their steps (plugin serialize, sha256, copy
  into the store, fsync, copy into the cache, plugin deserialize), measured separately;
- peak RSS (``ru_maxrss``) of an upload and of a load, each in its own subprocess, against the
  weights' size (target < 2x), with torch.save/torch.load's for comparison.

Every upload goes to a new store (a re-upload of the same bytes would be deduplicated and
skip the copy) and every timed load to a new cache directory.
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


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def drop(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --- one-shot children for peak RSS --------------------------------------------------------


def child(args) -> None:
    """Run one operation in this (fresh) process and print its peak RSS as JSON."""
    from modelstore_core import ModelStore

    torch.manual_seed(0)
    before = peak_mib()  # interpreter + torch + modelstore imported
    model = Big(args.layers)
    built = peak_mib()
    root = Path(args.dir)
    if args.child == "upload":
        ModelStore(root / "rss-store", cache_dir=root / "rss-cache-up").upload("bench", model=model)
    elif args.child == "load":
        ModelStore(root / "rss-store", cache_dir=root / "rss-cache-load").load("bench", model=model)
    elif args.child == "torch-save":
        torch.save(model.state_dict(), root / "rss-state.pt")
    elif args.child == "torch-load":
        model.load_state_dict(torch.load(root / "rss-state.pt"))
    print(json.dumps({"imports": before, "built": built, "peak": peak_mib(), "weights": weights_bytes(model) / 2**20}))


def run_child(args, op: str) -> dict:
    cmd = [sys.executable, __file__, "--child", op, "--layers", str(args.layers), "--dir", args.dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- the benchmark -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=400, help="approximate size of the weights in MB (default 400)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timing; the median is shown (default 3)")
    parser.add_argument("--dir", help="working directory (default: a new temporary directory, removed afterwards)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--layers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    args.layers = layers_for(args.mb)
    own_dir = args.dir is None
    args.dir = args.dir or tempfile.mkdtemp(prefix="modelstore-torch-bench-")
    try:
        bench(args, Path(args.dir))
    finally:
        if own_dir:
            drop(Path(args.dir))


def bench(args, root: Path) -> None:
    from modelstore_core import ModelStore
    from modelstore_core.default_plugins.local_storage import LocalStorage
    from modelstore_core.materialize import Cache
    from modelstore_core.transfer import hash_file

    import modelstore_torch

    torch.manual_seed(0)
    model = Big(args.layers)
    size = weights_bytes(model)
    mib = size / 2**20
    x = torch.randn(4, WIDTH)
    expected = model(x)
    print(f"model: {args.layers} x Linear({WIDTH}, {WIDTH}) float32, weights {size / 1e6:.0f} MB ({mib:.0f} MiB)")
    print(f"torch {torch.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, dir {root}")
    print(f"median of {args.repeat} runs each; the page cache is warm (files just written)\n")

    rows: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        rows.setdefault(name, []).append(seconds)

    state_file = root / "state.pt"
    for i in range(args.repeat):
        # baseline
        record("torch.save(state_dict)", timed(lambda: torch.save(model.state_dict(), state_file))[0])
        dt, sd = timed(lambda: torch.load(state_file))
        record("torch.load", dt)
        fresh = Big(args.layers)
        record("torch.load + load_state_dict", dt + timed(lambda: fresh.load_state_dict(sd))[0])
        del sd, fresh

        # modelstore: a new store per upload (no dedup), a new cache per load
        store_dir, cache_dir = root / f"store-{i}", root / f"cache-{i}"
        store = ModelStore(store_dir, cache_dir=cache_dir)
        record("store.upload", timed(lambda: store.upload("bench", model=model))[0])
        fresh = Big(args.layers)
        dt, loaded = timed(lambda: ModelStore(store_dir, cache_dir=cache_dir).load("bench", model=fresh))
        record("store.load (fresh cache)", dt)
        torch.testing.assert_close(loaded(x), expected)
        fresh = Big(args.layers)
        record("store.load (cached)", timed(lambda: ModelStore(store_dir, cache_dir=cache_dir).load("bench", model=fresh))[0])
        del loaded, fresh

        # breakdown of the same work, step by step
        part = root / f"part-{i}"
        part.mkdir()
        record("  plugin serialize (write safetensors)", timed(lambda: modelstore_torch.modelstore_serialize(model=model, directory=part, options={}))[0])
        f = part / modelstore_torch.WEIGHTS
        record("  core sha256 of the file", timed(lambda: hash_file(f))[0])
        raw = root / f"raw-{i}"
        raw.mkdir()
        record("  core copy into store (copyfile)", timed(lambda: shutil.copyfile(f, raw / "obj"))[0])

        def fsync():
            fd = os.open(raw / "obj", os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

        record("  core fsync of the stored copy", timed(fsync)[0])
        storage = LocalStorage(store_dir)
        record_ = store.info("bench").metadata
        cache2 = Cache(root / f"cache2-{i}")
        record("  core materialize (copy + sha256 into cache)", timed(lambda: cache2.materialize(storage, record_))[0])
        directory = cache2.version_dir(storage, "bench", record_["version"])
        record("  core re-verify of the cached copy", timed(lambda: hash_file(directory / modelstore_torch.WEIGHTS))[0])
        fresh = Big(args.layers)
        flavor = record_["flavor"]
        record(
            "  plugin deserialize (read + load_state_dict)",
            timed(lambda: modelstore_torch.modelstore_deserialize(flavor=flavor, directory=directory, files=[modelstore_torch.WEIGHTS], options={"model": fresh}))[0],
        )
        del fresh
        for p in (store_dir, cache_dir, part, raw, root / f"cache2-{i}"):
            drop(p)

    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"{'operation':52} {'seconds':>8} {'MB/s':>8}")
    for name, seconds in med.items():
        print(f"{name:52} {seconds:8.3f} {size / 1e6 / seconds:8.0f}")

    up = med["store.upload"] / med["torch.save(state_dict)"]
    load = med["store.load (fresh cache)"] / med["torch.load"]
    load_sd = med["store.load (fresh cache)"] / med["torch.load + load_state_dict"]
    cached = med["store.load (cached)"] / med["torch.load + load_state_dict"]
    print()
    print(f"upload / torch.save                          {up:5.2f}x   (target <= 1.5x)")
    print(f"load (fresh cache) / torch.load              {load:5.2f}x   (target <= 1.5x)")
    print(f"load (fresh cache) / torch.load + load_sd    {load_sd:5.2f}x")
    print(f"load (cached) / torch.load + load_sd         {cached:5.2f}x")

    print("\npeak RSS, each in a fresh subprocess (ru_maxrss; includes the interpreter, torch and the model itself)")
    print(f"{'operation':24} {'imports':>9} {'+model':>9} {'peak':>9} {'peak/weights':>13}")
    for op in ("torch-save", "upload", "load", "torch-load"):
        r = run_child(args, op)
        print(f"{op:24} {r['imports']:7.0f}Mi {r['built']:7.0f}Mi {r['peak']:7.0f}Mi {r['peak'] / r['weights']:12.2f}x   (weights {r['weights']:.0f} MiB; target < 2x)")
    for p in ("rss-store", "rss-cache-up", "rss-cache-load", "rss-state.pt", "state.pt"):
        drop(root / p) if (root / p).is_dir() else (root / p).unlink(missing_ok=True)


if __name__ == "__main__":
    main()

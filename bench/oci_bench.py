"""Push and pull of a big model through an OCI registry (Debian's docker-registry on 127.0.0.1),
next to skopeo moving the same bytes in the same run.

    apt-get install docker-registry skopeo
    pip install -e . -e plugins/modelstore-oci
    python bench/oci_bench.py [--mb 400] [--repeat 3]

Each figure is the median wall time of ``--repeat`` runs of a command in its own process
(imports and process start included, as a user would run it):

- **push**: ``modelstore push big oci://… --plain-http`` of a version of one ``--mb`` file from a
  local store into an empty registry, with a cold per-user cache (every byte read to verify it
  and to compute its layer's digest, then read again to upload it) and with a warm one (layer
  digests remembered); next to ``skopeo copy oci:LAYOUT docker://…`` of the same artifact (the
  layout knows every digest) into an empty registry;
- **pull**: ``modelstore pull oci://… --plain-http`` into an empty local store (each layer's digest
  and each file's sha256 checked, the version committed) next to ``skopeo copy docker://… oci:DIR``;
- **re-push**: the same push again: what it sends (counted by a proxy in front of the registry).

Every registry starts empty (its own storage directory), so no run profits from another's blobs.
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

from modelstore_core.testing.faults import FaultProxy, ServerProcess


def registry(directory: Path) -> ServerProcess:
    directory.mkdir(parents=True)

    def command(port: int) -> list:
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(directory / "data")}},
            "http": {"addr": f"127.0.0.1:{port}", "secret": "bench"},
        }
        (directory / "config.yml").write_text(json.dumps(config))
        return ["docker-registry", "serve", directory / "config.yml"]

    return ServerProcess(command, directory / "registry.log").start()


#: CPU seconds (user + system) of each timed command, by the name its wall time is kept under
CPU: dict[str, list[float]] = {}


def timed(command: list, env: dict | None = None, name: str = "") -> float:
    """Run ``command`` in its own process; its wall time (and, under ``name`` in :data:`CPU`, its CPU time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([str(c) for c in command], check=True, capture_output=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(name, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def modelstore(*args) -> list:
    return [sys.executable, "-m", "modelstore_core", *args]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for program in ("docker-registry", "skopeo"):
        if shutil.which(program) is None:
            print(f"needs {program}: apt-get install {program}", file=sys.stderr)
            return 2
    print(f"load average at start: {load()} ({os.cpu_count()} cores); {args.mb} MB model, medians of {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="oci-bench-") as tmp:
        return run(Path(tmp), args.mb, args.repeat)


def run(work: Path, mb: int, repeat: int) -> int:
    big = work / "model.safetensors"
    with open(big, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))
    store = work / "store"
    subprocess.run(modelstore("upload", "big", big, "--store", store), check=True, capture_output=True)
    big.unlink()
    times: dict[str, list[float]] = {name: [] for name in ("push cold", "push warm", "skopeo push", "pull", "skopeo pull")}
    layout = work / "layout"
    servers = []
    try:
        for i in range(repeat):
            # push, cold cache: an empty registry, an empty per-user cache
            ours = registry(work / f"ours-{i}")
            servers.append(ours)
            ref = f"oci://127.0.0.1:{ours.port}/bench/big:1"
            cache = work / f"cache-{i}"
            times["push cold"].append(
                timed(modelstore("push", "big", ref, "--plain-http", "--store", store), {"MODELSTORE_CACHE_DIR": str(cache)}, "push cold")
            )
            # push, warm cache (layer digests remembered, files proven): another empty registry
            warm = registry(work / f"warm-{i}")
            servers.append(warm)
            warm_ref = f"oci://127.0.0.1:{warm.port}/bench/big:1"
            times["push warm"].append(
                timed(
                    modelstore("push", "big", warm_ref, "--plain-http", "--store", store), {"MODELSTORE_CACHE_DIR": str(cache)}, "push warm"
                )
            )
            warm.stop()
            if not layout.exists():  # the same artifact as an OCI layout, for skopeo
                source = f"docker://127.0.0.1:{ours.port}/bench/big:1"
                subprocess.run(["skopeo", "copy", "--src-tls-verify=false", source, f"oci:{layout}:1"], check=True, capture_output=True)
            theirs = registry(work / f"skopeo-{i}")
            servers.append(theirs)
            times["skopeo push"].append(
                timed(
                    ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://127.0.0.1:{theirs.port}/bench/big:1"],
                    name="skopeo push",
                )
            )
            theirs.stop()
            # pull, from the registry ours pushed to: into an empty store, and by skopeo into an empty layout
            pulled, copied = work / f"pulled-{i}", work / f"skopeo-pulled-{i}"
            pull_cache = {"MODELSTORE_CACHE_DIR": str(work / f"cache-pull-{i}")}
            times["pull"].append(timed(modelstore("pull", ref, "--plain-http", "--store", pulled), pull_cache, "pull"))
            source = f"docker://127.0.0.1:{ours.port}/bench/big:1"
            times["skopeo pull"].append(timed(["skopeo", "copy", "--src-tls-verify=false", source, f"oci:{copied}:1"], name="skopeo pull"))
            shutil.rmtree(pulled)
            shutil.rmtree(copied)
            if i < repeat - 1:
                ours.stop()
        # re-push: what goes over the wire
        sent: list[tuple[str, str, int]] = []
        with FaultProxy(ours.port, lambda method, target, headers, body: sent.append((method, target, len(body)))) as proxy:
            start = time.perf_counter()
            subprocess.run(
                modelstore("push", "big", f"oci://127.0.0.1:{proxy.port}/bench/big:1", "--plain-http", "--store", store),
                check=True,
                capture_output=True,
                env={**os.environ, "MODELSTORE_CACHE_DIR": str(work / f"cache-{repeat - 1}")},
            )
            again = time.perf_counter() - start
    finally:
        for server in servers:
            server.stop()
    median = {name: statistics.median(values) for name, values in times.items()}
    cpu = {name: statistics.median(values) for name, values in CPU.items()}
    rate = mb * 1.048576
    print(f"{'':<20}{'modelstore':>12}{'skopeo':>10}{'ratio':>8}   {'CPU s (user+sys): modelstore / skopeo':>40}")
    rows = (
        ("push cold", "skopeo push", "push (cold cache)"),
        ("push warm", "skopeo push", "push (warm cache)"),
        ("pull", "skopeo pull", "pull"),
    )
    for ours_name, theirs_name, label in rows:
        a, b = median[ours_name], median[theirs_name]
        speeds = f"({rate / a:.0f} MB/s vs {rate / b:.0f} MB/s)"
        print(f"{label:<20}{a:>10.2f} s{b:>8.2f} s{a / b:>7.2f}×   {cpu[ours_name]:>6.2f} / {cpu[theirs_name]:.2f}   {speeds}")
    uploads = [s for s in sent if s[0] in ("POST", "PATCH") or (s[0] == "PUT" and "/blobs/" in s[1])]
    put = ", ".join(f"{m} {t.split('/v2/', 1)[-1]}" for m, t, _ in sent if m == "PUT")
    heads = sum(1 for s in sent if s[0] == "HEAD")
    print(
        f"re-push: {again:.2f} s, {len(sent)} requests ({heads} HEAD), {len(uploads)} blob uploads,"
        f" {sum(s[2] for s in sent)} bytes sent in request bodies ({put})"
    )
    print(f"load average at end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: fine-tunes cost what changed (issue 24 item 6): bytes stored and uploaded for a chain
of partial fine-tunes of a ~400 MB model, small tensor-aligned shards against today's layout.

    pip install -e . -e plugins/modelstore-torch -e 'plugins/modelstore-transformers[transformers]' \\
        -e 'plugins/modelstore-s3[test]' torch==2.13.0
    python bench/dedup_bench.py [--layers 9] [--shard-mb 16] [--plugins torch,transformers] [--stores local,s3]

The model: a GPT-2 (``n_embd`` 768, ``--layers`` blocks; 9 blocks: 103M parameters, 413 MB of
float32 weights, the LM head tied to the embeddings). Version 1 is the model; versions 2 to 6
are five fine-tunes, each of the version before (recorded as tag ``parent``), each changing a few
tensors (:data:`FINE_TUNES`: whole blocks, and LoRA updates of rank 8 merged into attention and MLP
weights). Each version is uploaded through modelstore-torch (its state dict) and
modelstore-transformers (the model), in two layouts, each into its own store:

- ``today``: the layout before issue 24.6: modelstore-torch's 256 MiB shards (two for this
  model), transformers' own default (one file up to 50 GB);
- ``small``: shards of at most ``--shard-mb`` MiB (the plugins' new default: 16), cut by tensor
  names and sizes, never values.

Printed per version and layout: the bytes of tensors the fine-tune changed; the bytes of the
version's model files; the bytes uploaded (new objects, ``Version.bytes_written``; on S3 checked
against the growth of the bucket's listing); the bytes stored in all (every object of the store);
on S3, the bytes a load of the version downloads into a cache that holds the version before (the
cache is content-addressed too). Then, per plugin: the chain's totals and their ratio small /
today; the upload time of the whole chain and the fresh-cache load time of the last version from
the local store, small / today (wall seconds and this process's CPU seconds: upload and load run
in this process; moto's own CPU is not counted). Each store is new; moto's S3 server runs on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", HF_HUB_DISABLE_PROGRESS_BARS="1")  # before transformers loads

import torch  # noqa: E402
import transformers  # noqa: E402

MB = 1e6
TODAY = {"torch": 256 * 1024 * 1024, "transformers": 50 * 10**9}  # modelstore-torch's former default, transformers' own


# --- the model and its fine-tunes ------------------------------------------------------------------


def build(layers: int) -> transformers.GPT2LMHeadModel:
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=layers, n_embd=768, n_head=12)
    return transformers.GPT2LMHeadModel(config).eval()


def _blocks(model, which) -> list[torch.Tensor]:
    last = model.config.n_layer - 1
    return [p for name, p in model.named_parameters() if any(name.startswith(f"transformer.h.{last - i}.") for i in which)]


def _named(model, blocks, suffixes) -> list[torch.Tensor]:
    return [model.get_parameter(f"transformer.h.{b}.{s}") for b in blocks for s in suffixes]


def _perturb(tensors, generator) -> None:
    for t in tensors:
        t.add_(torch.randn(t.shape, generator=generator) * 1e-3)


def _lora(weights, generator, rank: int = 8) -> None:
    """W += B @ A, the merge of a LoRA adapter of rank ``rank``: every value of W changes."""
    for w in weights:
        a, b = torch.randn(rank, w.shape[1], generator=generator), torch.randn(w.shape[0], rank, generator=generator)
        w.add_((b @ a) * 1e-4)


def _last_blocks(n):
    return lambda m, g: (_perturb(ts := _blocks(m, range(n)), g), ts)[1]


def _lora_last(m, g):
    last = m.config.n_layer
    ts = _named(m, range(max(0, last - 4), last), ["attn.c_attn.weight"])
    _lora(ts, g)
    return ts


def _norm_and_mlp(m, g):
    ts = [m.transformer.ln_f.weight, m.transformer.ln_f.bias, *_named(m, [m.config.n_layer - 1], ["mlp.c_fc.weight", "mlp.c_proj.weight"])]
    _perturb(ts, g)
    return ts


def _lora_first(m, g):
    ts = _named(m, range(min(3, m.config.n_layer)), ["attn.c_proj.weight", "mlp.c_fc.weight"])
    _lora(ts, g)
    return ts


#: (what it changes, fine_tune(model, generator) -> the tensors it changed), applied in turn
FINE_TUNES = [
    ("the last block", _last_blocks(1)),
    ("LoRA r=8 merged into attn.c_attn of the last 4 blocks", _lora_last),
    ("the final layer norm and the last block's MLP", _norm_and_mlp),
    ("LoRA r=8 merged into attn.c_proj and mlp.c_fc of the first 3 blocks", _lora_first),
    ("the last two blocks", _last_blocks(2)),
]


# --- stores -------------------------------------------------------------------------------------


def stored_bytes(store) -> int:
    from modelstore_core.protocol import keys

    return sum(info.size for info in store.storage.list(keys.OBJECTS))


def cache_bytes(cache: Path) -> int:
    return sum(p.stat().st_size for p in (cache / "objects").rglob("*") if p.is_file()) if (cache / "objects").exists() else 0


class Lane:
    """One plugin, one layout, one store: its versions' figures."""

    def __init__(self, plugin: str, layout: str, where: str, shard_size: int, store, cache: Path):
        self.plugin, self.layout, self.where, self.shard_size = plugin, layout, where, shard_size
        self.store, self.cache = store, cache
        self.rows: list[dict] = []
        self.upload_wall = self.upload_cpu = 0.0

    def upload(self, model, version: int, changed: int) -> None:
        what = model.state_dict() if self.plugin == "torch" else model
        before = stored_bytes(self.store)
        wall, cpu = time.perf_counter(), time.process_time()
        v = self.store.upload("gpt", model=what, shard_size=self.shard_size, tags={"parent": str(version - 1)} if version > 1 else None)
        self.upload_wall += time.perf_counter() - wall
        self.upload_cpu += time.process_time() - cpu
        stored = stored_bytes(self.store)
        assert v.version == version and stored - before == v.bytes_written, (stored - before, v.bytes_written)
        row = {
            "version": version,
            "changed": changed,
            "files": len([f for f in v.files if f.path.endswith(".safetensors")]),
            "model": sum(f.size for f in v.files),
            "uploaded": v.bytes_written,
            "stored": stored,
        }
        if self.where == "s3":  # what a load downloads, the version before in the cache
            grown = cache_bytes(self.cache)
            self.store.load("gpt", version=version)
            row["downloaded"] = cache_bytes(self.cache) - grown
        self.rows.append(row)


def timed_load(store_url: str, cache: Path, version: int) -> tuple[float, float, object]:
    from modelstore_core import ModelStore

    wall, cpu = time.perf_counter(), time.process_time()
    loaded = ModelStore(store_url, cache_dir=cache).load("gpt", version=version)
    return time.perf_counter() - wall, time.process_time() - cpu, loaded


def moto(work: Path):
    """moto's S3 server on 127.0.0.1, a bucket, and the environment the store's client reads."""
    from modelstore_core.testing.faults import ServerProcess

    server = ServerProcess(lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", port], work / "moto.log")
    server.start()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=server.endpoint, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )  # fmt: skip
    os.environ.pop("AWS_PROFILE", None)
    import boto3

    boto3.client("s3").create_bucket(Bucket="bench")
    return server


# --- report -------------------------------------------------------------------------------------


def table(lanes: list[Lane]) -> None:
    print(
        f"{'plugin':13} {'store':5} {'layout':6} {'v':>2} {'changed MB':>10} {'files':>5} {'model MB':>9}"
        f" {'uploaded MB':>11} {'stored MB':>10} {'load downloads MB':>17}"
    )
    for lane in lanes:
        for r in lane.rows:
            down = f"{r['downloaded'] / MB:17.1f}" if "downloaded" in r else f"{'':17}"
            print(
                f"{lane.plugin:13} {lane.where:5} {lane.layout:6} {r['version']:2d} {r['changed'] / MB:10.1f} {r['files']:5d}"
                f" {r['model'] / MB:9.1f} {r['uploaded'] / MB:11.1f} {r['stored'] / MB:10.1f} {down}"
            )


def summary(lanes: list[Lane], loads: dict) -> None:
    print("\nthe chain of 5 fine-tunes (versions 2 to 6), small shards against today's layout, same run:", flush=True)
    for plugin in dict.fromkeys(lane.plugin for lane in lanes):
        for where in dict.fromkeys(lane.where for lane in lanes):
            pair = {lane.layout: lane for lane in lanes if lane.plugin == plugin and lane.where == where}
            if len(pair) != 2:
                continue
            small, today = pair["small"], pair["today"]
            changed = sum(r["changed"] for r in small.rows[1:])
            up_s, up_t = (sum(r["uploaded"] for r in lane.rows[1:]) for lane in (small, today))
            print(
                f"  {plugin} / {where}: tensors changed {changed / MB:.0f} MB; uploaded {up_s / MB:.0f} MB small vs {up_t / MB:.0f} MB"
                f" today ({up_s / up_t:.2f}x; {up_s / changed:.2f}x what changed); stored after 6 versions"
                f" {small.rows[-1]['stored'] / MB:.0f} MB vs {today.rows[-1]['stored'] / MB:.0f} MB"
                f" ({small.rows[-1]['stored'] / today.rows[-1]['stored']:.2f}x; one copy: {small.rows[0]['model'] / MB:.0f} MB)"
            )
            if "downloaded" in small.rows[-1]:
                down_s, down_t = (sum(r["downloaded"] for r in lane.rows[1:]) for lane in (small, today))
                print(
                    f"    loads of versions 2-6, each after the one before: downloaded {down_s / MB:.0f} MB vs {down_t / MB:.0f} MB"
                    f" ({down_s / down_t:.2f}x)"
                )
            if where == "local":
                print(
                    f"    upload of the 6 versions: {small.upload_wall:.2f} s vs {today.upload_wall:.2f} s wall"
                    f" ({small.upload_wall / today.upload_wall:.2f}x), {small.upload_cpu:.2f} s vs {today.upload_cpu:.2f} s CPU"
                    f" ({small.upload_cpu / today.upload_cpu:.2f}x)"
                )
                (ws, cs), (wt, ct) = loads[(plugin, "small")], loads[(plugin, "today")]
                print(
                    f"    fresh-cache load of version 6 (median): {ws:.2f} s vs {wt:.2f} s wall ({ws / wt:.2f}x),"
                    f" {cs:.2f} s vs {ct:.2f} s CPU ({cs / ct:.2f}x)"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=9, help="GPT-2 blocks (9: 413 MB)")
    parser.add_argument("--shard-mb", type=int, default=16, help="MiB per shard in the small layout")
    parser.add_argument("--plugins", default="torch,transformers")
    parser.add_argument("--stores", default="local,s3")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-cache loads of the last version per layout (median)")
    parser.add_argument("--dir", help="work directory (default: a new temporary one, removed after)")
    args = parser.parse_args()
    from modelstore_core import ModelStore

    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}, {os.cpu_count()} CPUs")
    work = Path(args.dir or tempfile.mkdtemp(prefix="dedup-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    plugins, stores = args.plugins.split(","), args.stores.split(",")
    server = moto(work) if "s3" in stores else None
    try:
        model = build(args.layers)
        weights = sum(t.numel() * t.element_size() for t in model.state_dict().values() if t.data_ptr() != model.lm_head.weight.data_ptr())
        weights += model.lm_head.weight.numel() * 4  # tied: stored once
        print(
            f"model: GPT-2, {args.layers} blocks, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters,"
            f" {weights / MB:.0f} MB of weights"
        )
        lanes, urls = [], {}
        for plugin in plugins:
            for where in stores:
                for layout, size in (("today", TODAY[plugin]), ("small", args.shard_mb * 1024 * 1024)):
                    name = f"{plugin}-{where}-{layout}"
                    url = str(work / name) if where == "local" else f"s3://bench/{name}"
                    urls[(plugin, where, layout)] = url
                    cache = work / f"cache-{name}"
                    lanes.append(Lane(plugin, layout, where, size, ModelStore(url, cache_dir=cache), cache))
        generator = torch.Generator().manual_seed(1)
        for version in range(1, len(FINE_TUNES) + 2):
            changed = 0
            if version > 1:
                what, tune = FINE_TUNES[version - 2]
                with torch.no_grad():
                    changed = sum(t.numel() * t.element_size() for t in tune(model, generator))
                print(f"version {version}: {what}", flush=True)
            for lane in lanes:
                lane.upload(model, version, changed)
        table(lanes)
        loads = {}
        if "local" in stores:
            for plugin in plugins:
                times: dict[str, list[tuple[float, float]]] = {"today": [], "small": []}
                for attempt in range(args.repeat):  # alternating, each into a new cache
                    for layout in times:
                        cache = work / f"cache-load-{plugin}-{layout}-{attempt}"
                        wall, cpu, loaded = timed_load(urls[(plugin, "local", layout)], cache, len(FINE_TUNES) + 1)
                        state = loaded if plugin == "torch" else loaded.state_dict()
                        for name, tensor in model.state_dict().items():  # the last version round-trips
                            assert torch.equal(state[name], tensor), name
                        times[layout].append((wall, cpu))
                        del loaded, state
                for layout, measured in times.items():
                    loads[(plugin, layout)] = (statistics.median(w for w, _ in measured), statistics.median(c for _, c in measured))
        summary(lanes, loads)
        print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}")
    finally:
        if server is not None:
            server.stop()
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

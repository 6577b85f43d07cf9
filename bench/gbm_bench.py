"""Gradient-boosting plugins' load (issue 24, item 2): ``store.load`` of a 300-tree XGBoost,
LightGBM and CatBoost classifier (10k rows x 20 features, depth 6) next to the framework's own load
of the same file, measured in the same run, alternately, each load in a fresh process that has
imported numpy, the framework and ``modelstore_core`` already (a program that loads models has).

    python bench/gbm_bench.py [--repeat 5] [--frameworks xgboost,lightgbm,catboost] [--trees 300]

A fourth figure, "again", is a store load of the same bytes from a second store (a new cache view,
as for another version or store holding the same artifact), through a fresh cache that holds only
the verdicts the plugin kept when it checked them in an earlier load (``<cache>/verdicts``): every
byte is still hashed, the checks (or CatBoost's probe) are not run again.

A third figure, "plugin", is the plugin's own share: its checks of the file and the framework's
load of the checked bytes, as the plugin does them, without the core (no store, no record, no
hashing), in the same kind of fresh process.

The store is local and each store load has a fresh cache: every byte is hashed, the plugin's
checks of the file run, then the framework parses it. The timed region is ``ModelStore(...)`` +
``store.load(...)`` (the plugin's import included) against ``Class().load_model(path)`` (LightGBM:
``Booster(model_file=path)``). Wall and CPU seconds (user + system of the child and of any process it ran,
over the timed region, from ``getrusage``) are printed as medians, with the load average before and after: on a
shared machine CPU time moves less than wall time. Target: store load <= 1.2x the framework's.
After each store load (outside the timed region) the loaded model predicts 1,000 rows, and the
run stops unless the predictions equal the original model's.

Needs the three plugins installed, not editable (an editable install resolves its imports through
path hooks, which a fresh process pays for): for instance ``uv venv /tmp/gbm && uv pip install
--python /tmp/gbm . 'plugins/modelstore-xgboost[xgboost]' 'plugins/modelstore-lightgbm[lightgbm]'
'plugins/modelstore-catboost[catboost]'``.
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

#: framework -> (file name, code that fits ``model`` from ``X``, ``y``, ``trees``; code that loads
#: ``path`` the framework's way; code that runs the plugin's checks of ``path`` and loads it as the
#: plugin does, without the core: the plugin's own share of a store load).
FRAMEWORKS = {
    "xgboost": (
        "model.ubj",
        "import xgboost; model = xgboost.XGBClassifier(n_estimators=trees, max_depth=6, n_jobs=2, random_state=0).fit(X, y)",
        "import xgboost; xgboost.XGBClassifier().load_model(path)",
        "import xgboost; from modelstore_xgboost._validate import validate; data = bytearray(open(path, 'rb').read());"
        " validate(data, 'ubjson', path); xgboost.XGBClassifier().load_model(data)",
    ),
    "lightgbm": (
        "model.txt",
        "import lightgbm; model = lightgbm.LGBMClassifier(n_estimators=trees, max_depth=6, num_leaves=63, n_jobs=2, verbose=-1).fit(X, y)",
        "import lightgbm; lightgbm.Booster(model_file=path)",
        "import lightgbm; from modelstore_lightgbm._validate import validate; text = validate(open(path, 'rb').read(), path);"
        " lightgbm.Booster(model_str=text)",
    ),
    "catboost": (
        "model.cbm",
        "import catboost; model = catboost.CatBoostClassifier(iterations=trees, depth=6, thread_count=2, verbose=False,"
        " allow_writing_files=False).fit(X, y)",
        "import catboost; catboost.CatBoostClassifier().load_model(path)",
        "import catboost; from modelstore_catboost._persist import check_header, probe; data = open(path, 'rb').read();"
        " check_header(data[:8], len(data), path); probe(data, 'CatBoostClassifier', path);"
        " catboost.CatBoostClassifier().load_model(blob=data)",
    ),
}


def child(name: str, op: str, work: str) -> None:
    """One load, timed; prints its wall and CPU seconds as JSON."""
    import importlib

    import numpy  # noqa: F401 - imported before timing, as in any program that has a model

    importlib.import_module(name)
    from modelstore_core import ModelStore

    root = Path(work)
    file, _, own, checked = FRAMEWORKS[name]
    cache = root / f"cache-{os.getpid()}-{time.time_ns()}"
    if op == "again" and (root / "verdict-cache" / "verdicts").is_dir():  # before timing: only the kept verdicts
        shutil.copytree(root / "verdict-cache" / "verdicts", cache / "verdicts")
    before, start = cpu_seconds(), time.perf_counter()
    if op in ("own", "checked"):
        exec(own if op == "own" else checked, {"path": str(root / file)})
    else:
        loaded = ModelStore(root / ("store" if op == "store" else "store-2"), cache_dir=cache).load(name)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - before
    if op in ("store", "again"):  # after the timed region: what came back predicts what the original did
        import numpy as np

        np.save(root / "predicted.npy", loaded.predict_proba(np.load(root / "X.npy")))
    print(json.dumps({"wall": wall, "cpu": cpu}))


def cpu_seconds() -> float:
    """User + system CPU of this process and of its children that ended (a probe process, say)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(name: str, op: str, work: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", name, op, str(work)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--child", nargs=3, metavar=("FRAMEWORK", "OP", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    import numpy as np

    from modelstore_core import ModelStore

    rng = np.random.default_rng(0)
    X = rng.normal(size=(10_000, 20))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=len(X)) > 0).astype(int)
    print(
        f"{args.trees} trees, 10k x 20, depth 6; median of {args.repeat}, each load in a fresh process; "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )
    print(
        f"{'':<10}{'file':>9}{'store wall':>12}{'own wall':>10}{'ratio':>8}{'store CPU':>11}{'own CPU':>9}{'ratio':>8}"
        f"{'plugin CPU':>12}{'ratio':>8}{'again CPU':>12}{'ratio':>8}   target"
    )
    with tempfile.TemporaryDirectory(prefix="gbm-bench-") as tmp:
        for name in args.frameworks.split(","):
            file, fit, *_ = FRAMEWORKS[name]
            work = Path(tmp) / name
            ns = {"X": X, "y": y, "trees": args.trees}
            exec(fit, ns)
            version = ModelStore(work / "store", cache_dir=work / "seed-cache").upload(name, model=ns["model"])
            ModelStore(work / "store-2", cache_dir=work / "seed-cache").upload(name, model=ns["model"])  # the same bytes
            ModelStore(work / "store", cache_dir=work / "verdict-cache").load(name)  # checks them once: the verdicts "again" starts with
            if name == "lightgbm":  # the framework's own file: the bytes the plugin stores
                (work / file).write_text(ns["model"].booster_.model_to_string(num_iteration=-1), encoding="utf-8")
            else:
                ns["model"].save_model(str(work / file))
            np.save(work / "X.npy", X[:1000])
            expected = ns["model"].predict_proba(X[:1000])
            results: dict[str, list[dict[str, float]]] = {"own": [], "store": [], "checked": [], "again": []}
            for _ in range(args.repeat):  # alternated, so drift on the machine hits both sides alike
                for op in results:
                    results[op].append(run(name, op, work))
                    if op in ("store", "again"):
                        np.testing.assert_array_equal(
                            np.load(work / "predicted.npy"), expected, err_msg=f"{name}: the loaded model predicts otherwise"
                        )
            med = {op: {k: statistics.median(r[k] for r in runs) for k in ("wall", "cpu")} for op, runs in results.items()}
            s, o, c, a = med["store"], med["own"], med["checked"], med["again"]
            size = sum(f.size for f in version.files) / 1e6
            print(
                f"{name:<10}{size:>7.2f}MB{s['wall'] * 1e3:>9.1f} ms{o['wall'] * 1e3:>7.1f} ms{s['wall'] / o['wall']:>7.2f}x"
                f"{s['cpu'] * 1e3:>8.1f} ms{o['cpu'] * 1e3:>6.1f} ms{s['cpu'] / o['cpu']:>7.2f}x"
                f"{c['cpu'] * 1e3:>9.1f} ms{c['cpu'] / o['cpu']:>7.2f}x{a['cpu'] * 1e3:>9.1f} ms{a['cpu'] / o['cpu']:>7.2f}x   <= 1.2x"
            )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())

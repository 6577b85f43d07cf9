"""scikit-learn plugin benchmark: store.upload / store.load of a model next to joblib.dump /
joblib.load of the same model, measured in the same run, each operation in a fresh process that
has already imported scikit-learn and the model's module (and has torch installed: importing skops
must not import it). Optionally, in the same run, the same operations with the code of another git
revision (``--baseline main``: its sources exported to a temporary directory, first on
``PYTHONPATH``) and with the original modelstore (``--upstream DIR``, a directory made by
``pip install --target DIR modelstore==0.0.82``; it stores a joblib pickle).

    python bench/sklearn_bench.py [--repeat 3] [--baseline REV] [--upstream DIR] [--models tiny,forest]

Each figure is the best of ``--repeat`` runs, three numbers per cell: the wall time and the CPU
time (user + system, all threads; ``getrusage``) of the timed region, from just before
``import modelstore_core`` (or the joblib call) to the end of the call, then the CPU time of the
whole child process as the parent sees it (``RUSAGE_CHILDREN``: interpreter start, numpy and
scikit-learn imports and the git processes the upload runs included). The ratios compare the first
column's wall and timed CPU with joblib's. The load average is printed before and after: on a busy
machine the CPU figures are the ones to read.

Benchmark an installed (not editable) checkout with compiled bytecode and PYTHONDONTWRITEBYTECODE
unset: an editable install recompiles the plugin and the core in each new process when bytecode
writing is off.

Targets (issue 24 item 1): a tiny LogisticRegression, a small pipeline and a decision tree: upload
<= 50 ms and load <= 50 ms on a local store; a 100-tree RandomForest (10k x 20): upload and load
each <= 5x joblib.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: name -> (label, code defining M, kw, shape, target)
MODELS = {
    "tiny": ("tiny LogisticRegression (100 x 4)", "from sklearn.linear_model import LogisticRegression as M; kw = {}; shape = (100, 4)"),
    "pipeline": (
        "StandardScaler + LogisticRegression (100 x 4)",
        "from sklearn.pipeline import make_pipeline; from sklearn.preprocessing import StandardScaler;"
        " from sklearn.linear_model import LogisticRegression; M = lambda: make_pipeline(StandardScaler(), LogisticRegression());"
        " kw = {}; shape = (100, 4)",
    ),
    "tree": (
        "DecisionTree (10k x 20)",
        "from sklearn.tree import DecisionTreeClassifier as M; kw = {'random_state': 0}; shape = (10_000, 20)",
    ),
    "forest": (
        "RandomForest 100 trees (10k x 20)",
        "from sklearn.ensemble import RandomForestClassifier as M; kw = {'n_estimators': 100, 'random_state': 0}; shape = (10_000, 20)",
    ),
}
SMALL = ("tiny", "pipeline", "tree")  # <= 50 ms; the forest: <= 5x joblib


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child(model: str, op: str, work: str, upstream: str) -> None:
    import numpy as np  # noqa: F401 - imported before timing, as in any session that has a model
    import sklearn  # noqa: F401

    ns: dict = {}
    exec(MODELS[model][1], ns)
    import joblib

    root = Path(work)
    fitted = root / "fitted.joblib"
    if op == "fit":
        rng = np.random.default_rng(0)
        x = rng.normal(size=ns["shape"])
        y = (x[:, 0] + rng.normal(size=len(x)) > 0).astype(int)
        joblib.dump(ns["M"](**ns["kw"]).fit(x, y), fitted)
        return
    model_obj = joblib.load(fitted)
    side, _, action = op.rpartition(".")
    start, cpu = time.perf_counter(), cpu_seconds()
    if side == "joblib":
        if action == "dump":
            joblib.dump(model_obj, root / "dump.joblib")
        else:
            joblib.load(root / "dump.joblib")
    elif side == "upstream":
        sys.path.append(upstream)  # after site-packages: its own copies of numpy, joblib... are not used
        import modelstore

        store = modelstore.ModelStore.from_file_system(root_directory=str(root / side), create_directory=True)
        if action == "upload":
            (root / "upstream-id").write_text(store.upload("bench", model=model_obj)["model"]["model_id"])
        else:
            store.load("bench", (root / "upstream-id").read_text())
    else:
        from modelstore_core import ModelStore

        store = ModelStore(root / side, cache_dir=root / f"cache-{time.time_ns()}")
        if action == "upload":
            store.upload("bench", model=model_obj)
        else:
            store.load("bench")
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu": cpu_seconds() - cpu}))


def run(model: str, op: str, work: Path, env: dict, upstream: str) -> dict:
    before = cpu_seconds(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, __file__, "--child", model, op, str(work), upstream], check=True, capture_output=True, text=True, env=env
    )
    result = json.loads(out.stdout.strip().splitlines()[-1]) if op != "fit" else {}
    result["process_cpu"] = cpu_seconds(resource.RUSAGE_CHILDREN) - before
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", default="", help="git revision whose code is measured too (e.g. main)")
    parser.add_argument("--upstream", default="", help="directory with modelstore 0.0.82 installed (pip install --target)")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the children use (and write) compiled bytecode
    sides = {"store": env}
    with tempfile.TemporaryDirectory(prefix="sklearn-bench-") as tmp:
        tmp = Path(tmp)
        if args.baseline:
            old = tmp / "baseline"
            old.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            path = [str(old), str(old / "plugins" / "modelstore-sklearn"), env.get("PYTHONPATH", "")]
            sides["baseline"] = {**env, "PYTHONPATH": os.pathsep.join(path)}
        print(f"load average {os.getloadavg()[0]:.1f}; best of {args.repeat}, each operation in a fresh process with scikit-learn imported")
        pairs = [(f"{side}.upload", f"{side}.load") for side in sides] + ([("upstream.upload", "upstream.load")] if args.upstream else [])
        pairs.append(("joblib.dump", "joblib.load"))
        names = {"store": "this", "baseline": args.baseline, "upstream": "0.0.82", "joblib": "joblib"}
        print(f"{'':<50}" + "".join(f"{names[p[0].split('.')[0]] + ' (ms)':>26}" for p in pairs) + "   ratio wall / cpu   target")
        print(f"{'':<50}" + f"{'wall / cpu / process cpu':>26}" * len(pairs))
        for model in args.models.split(","):
            work = tmp / model
            work.mkdir()
            run(model, "fit", work, env, args.upstream)
            best: dict[str, dict] = {}
            for i in range(args.repeat + 1):  # the first round compiles the baseline's bytecode: not counted
                for up, down in pairs:
                    for op in (up, down):
                        side = op.split(".")[0]
                        if op == up and side != "joblib":
                            shutil.rmtree(work / side, ignore_errors=True)  # a re-upload would be deduplicated
                        result = run(model, op, work, sides.get(side, env), args.upstream)
                        if i:
                            kept = best.setdefault(op, dict.fromkeys(("seconds", "cpu", "process_cpu"), float("inf")))
                            for figure in kept:
                                kept[figure] = min(kept[figure], result[figure])
            small = model in SMALL
            for k, label in ((0, "upload"), (1, "load")):
                cells = "".join(
                    f"{best[p[k]]['seconds'] * 1e3:>10.1f} /{best[p[k]]['cpu'] * 1e3:>6.1f} /{best[p[k]]['process_cpu'] * 1e3:>6.0f}"
                    for p in pairs
                )
                ours, joblib = best[pairs[0][k]], best[pairs[-1][k]]
                ratios = f"{ours['seconds'] / joblib['seconds']:>8.1f} /{ours['cpu'] / joblib['cpu']:>6.1f}"
                target = "<= 50 ms" if small else "<= 5x joblib"
                print(f"{MODELS[model][0] + ' ' + label:<50}{cells}{ratios}   {target}")
        print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

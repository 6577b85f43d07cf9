"""scikit-learn plugin benchmark: store.upload / store.load of a model next to joblib.dump /
joblib.load of the same model, measured in the same run, each operation in a fresh process that
has already imported scikit-learn and the model's module (and has torch installed: importing skops
must not import it).

    python bench/sklearn_bench.py [--repeat 3]

Targets (issue 10): tiny LogisticRegression upload <= 50 ms and load <= 50 ms on a local store;
100-tree RandomForest (10k x 20) upload and load each <= 5x joblib.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {
    "tiny LogisticRegression": "from sklearn.linear_model import LogisticRegression as M; kw = {}; shape = (100, 4)",
    "RandomForest 100 trees (10k x 20)": (
        "from sklearn.ensemble import RandomForestClassifier as M; kw = {'n_estimators': 100, 'random_state': 0}; shape = (10_000, 20)"
    ),
}


def child(model: str, op: str, work: str) -> None:
    import numpy as np  # noqa: F401 - imported before timing, as in any session that has a model
    import sklearn  # noqa: F401

    ns: dict = {}
    exec(MODELS[model], ns)
    import joblib

    root = Path(work)
    fitted = root / "fitted.joblib"
    model_obj = joblib.load(fitted) if op != "fit" else None
    start = time.perf_counter()
    if op == "fit":
        rng = np.random.default_rng(0)
        x = rng.normal(size=ns["shape"])
        y = (x[:, 0] + rng.normal(size=len(x)) > 0).astype(int)
        joblib.dump(ns["M"](**ns["kw"]).fit(x, y), fitted)
        return
    if op == "joblib.dump":
        joblib.dump(model_obj, root / "dump.joblib")
    elif op == "joblib.load":
        joblib.load(root / "dump.joblib")
    else:
        from modelstore_core import ModelStore

        store = ModelStore(root / "store", cache_dir=root / f"cache-{time.time_ns()}")
        if op == "store.upload":
            store.upload("bench", model=model_obj)
        else:
            store.load("bench")
    print(json.dumps({"seconds": time.perf_counter() - start}))


def run(model: str, op: str, work: Path) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", model, op, str(work)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"] if op != "fit" else 0.0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"best of {args.repeat}, each operation in a fresh process with scikit-learn imported")
    print(f"{'':<48}{'store':>10}{'joblib':>10}{'ratio':>9}   target")
    for model in MODELS:
        with tempfile.TemporaryDirectory(prefix="sklearn-bench-") as tmp:
            work = Path(tmp)
            run(model, "fit", work)
            best: dict[str, float] = {}
            for i in range(args.repeat):
                for op in ("joblib.dump", "joblib.load", "store.upload", "store.load"):
                    if op == "store.upload" and i:
                        import shutil

                        shutil.rmtree(work / "store")  # a re-upload would be deduplicated
                    best[op] = min(best.get(op, float("inf")), run(model, op, work))
            tiny = model.startswith("tiny")
            for store_op, raw_op, label in (("store.upload", "joblib.dump", "upload"), ("store.load", "joblib.load", "load")):
                s, r = best[store_op], best[raw_op]
                target = "<= 50 ms" if tiny else "<= 5x joblib"
                print(f"{model + ' ' + label:<48}{s * 1000:>8.1f}ms{r * 1000:>8.1f}ms{s / r:>8.1f}x   {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

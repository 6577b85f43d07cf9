"""Loads that verify in the pass that reads (issue 12, item 1) next to the old "hash, then read",
measured in the same run: each model is uploaded once to a local store, then loaded with a fresh
cache (nothing proven: every byte is hashed) by the code of this checkout and by the code of a
baseline git revision (``--baseline``, default ``main``; its sources are exported to a temporary
directory and put first on ``PYTHONPATH``), alternately, in child processes that have imported
the framework already.

    python bench/verified_read_bench.py [--baseline REV] [--repeat 5] [--models xgboost,sklearn,...]

Needs the plugins of the models it runs installed (``-e plugins/modelstore-<name>``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import median_time  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

#: name -> (plugin directory, code that defines ``model`` from ``X``, ``y``); 10k rows x 20 features.
MODELS = {
    "xgboost": (
        "modelstore-xgboost",
        "import xgboost; model = xgboost.XGBClassifier(n_estimators=200, max_depth=6, n_jobs=1, random_state=0).fit(X, y)",
    ),
    "sklearn": (
        "modelstore-sklearn",
        "from sklearn.ensemble import RandomForestClassifier as M; model = M(n_estimators=100, random_state=0).fit(X, y)",
    ),
    "catboost": (
        "modelstore-catboost",
        "import catboost; model = catboost.CatBoostClassifier(iterations=200, depth=6, thread_count=1, verbose=False,"
        " allow_writing_files=False).fit(X, y)",
    ),
    "lightgbm": (
        "modelstore-lightgbm",
        "import lightgbm; model = lightgbm.LGBMClassifier(n_estimators=200, n_jobs=1, verbose=-1).fit(X, y)",
    ),
}


def child(name: str, work: str, repeat: int) -> None:
    """Time ``store.load`` with a fresh cache each time; prints the median in seconds."""
    import importlib

    importlib.import_module(name if name != "sklearn" else "sklearn.ensemble")  # the framework is loaded already
    from modelstore_core import ModelStore

    root = Path(work)
    runs = iter(range(1_000_000))
    store = ModelStore(root / "store", cache_dir=root / "cache-unused")

    def load() -> None:
        store.cache.root = root / f"cache-{os.getpid()}-{next(runs)}"  # nothing proven: every byte is hashed
        store.load(name)

    load()  # warm the imports of the plugin and of the framework's loader
    print(json.dumps({"seconds": median_time(load, repeat)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="main", help="git revision of the old path (hash, then read)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "WORK", "REPEAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], int(args.child[2]))

    import numpy as np

    from modelstore_core import ModelStore

    rng = np.random.default_rng(0)
    X = rng.normal(size=(10_000, 20)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old = tmp / "baseline"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        print(f"{'model':<10} {'file':>9} {args.baseline + ' (hash, read)':>22} {'this (one read)':>16} {'ratio':>6}")
        for name in args.models.split(","):
            plugin, code = MODELS[name]
            ns = {"X": X, "y": y}
            exec(code, ns)
            work = tmp / name
            version = ModelStore(work / "store", cache_dir=work / "seed-cache").upload(name, model=ns["model"])
            size = sum(f.size for f in version.files)
            paths = {
                "old": os.pathsep.join([str(old), str(old / "plugins" / plugin), os.environ.get("PYTHONPATH", "")]),
                "new": os.environ.get("PYTHONPATH", ""),
            }
            times: dict[str, list[float]] = {"old": [], "new": []}
            for _ in range(2):  # alternated, so drift on the machine hits both sides alike
                for side, path in paths.items():
                    cmd = [sys.executable, __file__, "--child", name, str(work), str(args.repeat)]
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path})
                    times[side].append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
            t_old, t_new = min(times["old"]), min(times["new"])
            print(f"{name:<10} {size / 1e6:>7.1f}MB {t_old * 1e3:>19.1f} ms {t_new * 1e3:>13.1f} ms {t_new / t_old:>6.2f}")


if __name__ == "__main__":
    main()

"""What the web view's tests share: a real store of real scikit-learn models, a request counter,
and the app in uvicorn on a free 127.0.0.1 port (the fixtures are in conftest.py)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from modelstore_core import ModelStore
from modelstore_core.plugin_api import hookimpl
from modelstore_core.testing.faults import HANG_TIMEOUT

HOSTILE = "<script>window.pwned=1</script>"
HOSTILE_PARAM = '"><img src=x onerror="window.pwned=2">'


# --- the store ------------------------------------------------------------------------------


@dataclass
class Demo:
    root: Path
    store: ModelStore
    #: version -> its AUC on held-out data, as computed here and recorded at upload
    auc: dict[int, float]
    #: version -> the tag "team"
    team: dict[int, str]


def build_demo(root: Path) -> Demo:
    """churn: five logistic regressions (C from 0.001 to 10) with their real held-out AUC and
    log loss, tags (one hostile), states; fraud: a decision tree; docs: raw files with an extra."""
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(n_samples=400, n_features=6, n_informative=3, flip_y=0.05, class_sep=0.7, random_state=0)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0)

    store = ModelStore(root / "store", cache_dir=root / "cache")
    auc, team = {}, {}
    for i, C in enumerate([0.001, 0.01, 0.1, 1.0, 10.0], start=1):
        model = LogisticRegression(C=C).fit(X_train, y_train)
        proba = model.predict_proba(X_test)[:, 1]
        metrics = {"auc": float(roc_auc_score(y_test, proba)), "log_loss": float(log_loss(y_test, proba))}
        tags = {"team": "risk" if i % 2 else "growth"}
        if i == 2:
            tags["note"] = HOSTILE
        data = {"train": X_train, "test": X_test} if i >= 4 else {"train": X_train}  # fingerprints: shape, dtypes, sha256
        v = store.upload("churn", model=model, tags=tags, metrics=metrics, params={"comment": HOSTILE_PARAM}, data=data)
        assert v.version == i
        auc[i], team[i] = metrics["auc"], tags["team"]
    store.set_state("churn", 3, "production")
    store.set_state("churn", 5, "staging")

    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_train, y_train)
    store.upload("fraud", model=tree, metrics={"auc": float(roc_auc_score(y_test, tree.predict_proba(X_test)[:, 1]))})

    docs = root / "docs-src"
    docs.mkdir()
    (docs / "model.onnx").write_bytes(os.urandom(3000))
    (docs / "README.txt").write_text("how to use it\n")
    store.upload("docs", files=[docs / "model.onnx"], extras=[docs / "README.txt"])
    return Demo(root, store, auc, team)


# --- counting the storage requests the app makes ----------------------------------------------

READS = ("get", "read", "stat", "get_file")
WRITES = ("put", "put_if_absent", "compare_and_swap", "delete", "put_file", "stage_file")


class RequestCounter:
    """Counts the storage primitives a store calls (every call of each, by any thread; a primitive
    that a backend implements with another counts once): what a remote backend sends as requests.
    A listing counts one request per 1,000 keys it yields (a page), and ``local_path`` of an
    object counts as its download."""

    def __init__(self, store: ModelStore):
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._inside = threading.local()
        storage = store.storage
        for name in (*READS, *WRITES, "local_path"):
            setattr(storage, name, self._wrap(name, getattr(storage, name)))
        listing = storage.list

        def counted_list(*args, **kwargs):
            self._add("list")
            for n, item in enumerate(listing(*args, **kwargs), start=1):
                if n % 1000 == 0:
                    self._add("list")
                yield item

        storage.list = counted_list

    def _add(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def _wrap(self, name, method):
        def counted(*args, **kwargs):
            depth = getattr(self._inside, "depth", 0)
            self._inside.depth = depth + 1
            try:
                result = method(*args, **kwargs)
            finally:
                self._inside.depth = depth
            if depth == 0 and (name != "local_path" or result is not None):
                self._add(name)
            return result

        return counted

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def writes(self) -> int:
        return sum(self.counts[name] for name in WRITES)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()


# --- the server -----------------------------------------------------------------------------


class Server:
    """The app in uvicorn, in a thread of this process, on a free 127.0.0.1 port."""

    def __init__(self, store: ModelStore, ttl: float):
        import uvicorn
        from modelstore_web.app import create_app

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(store, ttl=ttl), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + HANG_TIMEOUT
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


# --- an xgboost-like domain -------------------------------------------------------------------

#: What modelstore-xgboost records under ``model`` for ``XGBClassifier(n_estimators=20)`` (xgboost
#: 3.2.0): 40 hyperparameters (36 of them unset, ``null``), ``missing`` as ``{"float": "nan"}``, and
#: the booster's whole config. Read from a real version; xgboost itself is not a test dependency.
XGBOOST_MODEL = Path(__file__).with_name("xgboost_model.json")

#: How the four versions of ``boost`` differ: settings as a person gives them, some of them long
#: and without a space to break at (a list recorded as a param is its compact JSON).
BOOST_SETTINGS = [
    {"n_estimators": 20, "max_depth": None, "learning_rate": None},
    {"n_estimators": 200, "max_depth": 4, "learning_rate": 0.123456789, "monotone_constraints": [1, 0, -1, 0, 1, 1] * 10},
    {"n_estimators": 400, "max_depth": 6, "learning_rate": 0.05, "eval_metric": ["auc", "logloss", "error", "aucpr", "map"]},
    {"n_estimators": 800, "max_depth": 8, "learning_rate": 0.01, "feature_weights": [round(0.5 + i / 40, 3) for i in range(40)]},
]


class XGBoostLike:
    """A throwaway plugin that records, for the files of each upload, the ``model`` metadata that
    modelstore-xgboost records for an XGBClassifier, with the settings of ``settings``."""

    def __init__(self):
        import json

        self.template = json.loads(XGBOOST_MODEL.read_text())
        self.settings: dict = {}

    @hookimpl
    def modelstore_collect_metadata(self, model, flavor, domain):
        import copy

        model = copy.deepcopy(self.template)
        model["hyperparameters"].update(self.settings)
        model["num_boosted_rounds"] = self.settings["n_estimators"]
        trees = model["booster_config"]["learner"]["gradient_booster"]
        trees["gbtree_model_param"]["num_trees"] = str(self.settings["n_estimators"])
        trees["tree_train_param"]["max_depth"] = str(self.settings.get("max_depth") or 6)
        return {"model": model}


def build_xgboost_like(root: Path) -> ModelStore:
    """``boost``: four versions whose records are shaped like xgboost's (:class:`XGBoostLike`),
    with metrics, tags and states; their files are a few random bytes."""
    from modelstore_core.plugins import get_plugins

    store = ModelStore(root / "store", cache_dir=root / "cache")
    plugin = XGBoostLike()
    manager = get_plugins().manager
    manager.register(plugin, name="test-xgboost-like")
    try:
        for i, settings in enumerate(BOOST_SETTINGS, start=1):
            plugin.settings = settings
            model = root / f"model-{i}.ubj"
            model.write_bytes(os.urandom(2000 * i))
            metrics = {"auc": 0.9 + i * 0.0123456789, "logloss": 0.3 - i * 0.0234567891}
            tags = {"team": "risk", "gpu": i > 2, "note": f"run {i} of the nightly sweep over depth and rate, data of 2026-0{i}-01"}
            store.upload("boost", files=[model], metrics=metrics, tags=tags)
    finally:
        manager.unregister(plugin)
    store.set_state("boost", 2, "production")
    store.set_state("boost", 4, "staging")
    return store

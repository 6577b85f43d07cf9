"""The same fitted model always gives the same bytes, so a re-upload stores no new object."""

from __future__ import annotations

import io
import json
import warnings
import zipfile

import numpy as np
import skops.io as sio
from modelstore_sklearn._persist import canonical_skops
from sklearn.cluster import Birch
from sklearn.datasets import make_classification

from modelstore_core.testing.flavors import (
    assert_deterministic_across_processes,
    assert_reupload_deduplicated,
    build,
    open_store,
)

# Built the same way in this process and in a fresh interpreter (other memory addresses).
MAKE_MODEL = """
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, Y = make_classification(n_samples=100, n_features=4, random_state=1)
model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=0)).fit(X, Y)
"""


def make_model():
    scope = build(MAKE_MODEL)
    return scope["model"], scope["X"]


def test_reupload_is_deduplicated(tmp_path):
    model, _ = make_model()
    assert_reupload_deduplicated(open_store(tmp_path), tmp_path, {"m": model})


def test_same_model_in_another_process_gives_the_same_bytes(tmp_path):
    assert_deterministic_across_processes(tmp_path, MAKE_MODEL, {"m": "model"})


def test_canonical_archive_loads_back_and_has_fixed_entries():
    model, x = make_model()
    first, second = canonical_skops(sio.dumps(model)), canonical_skops(sio.dumps(model))
    assert first == second

    archive = zipfile.ZipFile(io.BytesIO(first))
    assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    names = archive.namelist()
    assert names[-1] == "schema.json" and all(n.split(".")[0].isdigit() for n in names[:-1])
    ids = []

    def collect(node):
        if isinstance(node, dict):
            ids.extend(v for k, v in node.items() if k == "__id__")
            [collect(v) for v in node.values()]
        elif isinstance(node, list):
            [collect(v) for v in node]

    collect(json.loads(archive.read("schema.json")))
    assert min(ids) == 1 and max(ids) == len(set(ids))  # renumbered densely, from 1

    loaded = sio.loads(first, trusted=["sklearn.tree._tree.Tree"])
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_pickle_fallback_is_deterministic_too(tmp_path):
    x, _ = make_classification(n_samples=60, n_features=4, random_state=0)
    birch = Birch(n_clusters=2).fit(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        [(v1, _)] = assert_reupload_deduplicated(open_store(tmp_path), tmp_path, {"b": birch})
    assert v1.flavor.format == "pickle"

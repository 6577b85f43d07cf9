"""The same model always gives the same bytes, so a re-upload stores no new object."""

from __future__ import annotations

from xgboost_plugin_helpers import isolated, open_store, run_python, stored_objects  # noqa: F401

# Built the same way in this process and in a fresh interpreter.
MAKE_MODELS = """
import numpy as np
import xgboost as xgb
rng = np.random.default_rng(3)
X = rng.normal(size=(200, 4))
y = (X[:, 0] > 0).astype(int)
clf = xgb.XGBClassifier(n_estimators=6, max_depth=3, n_jobs=1, random_state=0).fit(X, y)
booster = xgb.train({"max_depth": 2, "nthread": 1, "seed": 0}, xgb.DMatrix(X, label=X[:, 1]), num_boost_round=5)
"""


def make_models():
    scope: dict = {}
    exec(MAKE_MODELS, scope)
    return scope["clf"], scope["booster"]


def test_reupload_is_deduplicated(tmp_path):
    clf, booster = make_models()
    store = open_store(tmp_path)
    first = [store.upload("clf", model=clf), store.upload("booster", model=booster)]
    objects = stored_objects(tmp_path)

    second = [store.upload("clf", model=clf), store.upload("booster", model=booster)]

    for v1, v2 in zip(first, second, strict=True):
        assert v2.version == v1.version + 1 and v2.files == v1.files
    assert stored_objects(tmp_path) == objects


def test_same_model_in_another_process_gives_the_same_bytes(tmp_path):
    clf, booster = make_models()
    store = open_store(tmp_path)
    v1 = [store.upload("clf", model=clf), store.upload("booster", model=booster)]
    objects = stored_objects(tmp_path)

    run_python(
        MAKE_MODELS
        + f"""
from modelstore_core import ModelStore
store = ModelStore({str(tmp_path / "store")!r}, cache_dir={str(tmp_path / "cache2")!r})
store.upload("clf", model=clf)
store.upload("booster", model=booster)
""",
        cwd=tmp_path,
    )

    reader = open_store(tmp_path)
    assert reader.latest("clf").files == v1[0].files and reader.latest("booster").files == v1[1].files
    assert stored_objects(tmp_path) == objects

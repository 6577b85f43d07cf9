"""The same model always gives the same bytes, so a re-upload stores no new object."""

from __future__ import annotations

from modelstore_core.testing.flavors import (
    assert_deterministic_across_processes,
    assert_reupload_deduplicated,
    build,
    open_store,
)

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
    scope = build(MAKE_MODELS)
    return scope["clf"], scope["booster"]


def test_reupload_is_deduplicated(tmp_path):
    clf, booster = make_models()
    assert_reupload_deduplicated(open_store(tmp_path), tmp_path, {"clf": clf, "booster": booster})


def test_same_model_in_another_process_gives_the_same_bytes(tmp_path):
    assert_deterministic_across_processes(tmp_path, MAKE_MODELS, {"clf": "clf", "booster": "booster"})

"""The same model always gives the same bytes, so a re-upload stores no new object."""

from __future__ import annotations

from modelstore_core.testing.flavors import assert_deterministic_across_processes, assert_reupload_deduplicated, build, open_store

# Built the same way in this process and in a fresh interpreter.
MAKE_MODELS = """
import numpy as np
import lightgbm as lgb
rng = np.random.default_rng(3)
X = rng.normal(size=(200, 4))
y = (X[:, 0] > 0).astype(int)
clf = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, n_jobs=1, deterministic=True, verbose=-1).fit(X, y)
booster = lgb.train({"num_leaves": 4, "num_threads": 1, "deterministic": True, "verbose": -1}, lgb.Dataset(X, X[:, 1]), 4)
"""


def test_reupload_is_deduplicated(tmp_path):
    scope = build(MAKE_MODELS)
    assert_reupload_deduplicated(open_store(tmp_path), tmp_path, {"clf": scope["clf"], "booster": scope["booster"]})


def test_same_model_in_another_process_gives_the_same_bytes(tmp_path):
    assert_deterministic_across_processes(tmp_path, MAKE_MODELS, {"clf": "clf", "booster": "booster"})

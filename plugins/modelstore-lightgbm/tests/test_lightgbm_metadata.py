"""What a version records about its LightGBM model."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np

from modelstore_core.testing.flavors import open_store

RNG = np.random.default_rng(1)
X = RNG.normal(size=(120, 3))
Y = (X[:, 0] > 0).astype(int)


def test_estimator_metadata(tmp_path):
    model = lgb.LGBMClassifier(n_estimators=4, num_leaves=np.int64(5), learning_rate=np.float32(0.25), n_jobs=1, verbose=-1)
    model.fit(X, Y)
    open_store(tmp_path).upload("m", model=model)
    record = open_store(tmp_path, cache="c2").info("m").metadata  # read back from the store
    info = record["model"]
    assert info["framework"] == "lightgbm" and info["framework_version"] == lgb.__version__
    assert record["flavor"]["model_class"] == "lightgbm.sklearn.LGBMClassifier" and record["flavor"]["format"] == "text"
    assert record["dependencies"]["lightgbm"] == lgb.__version__
    hp = info["hyperparameters"]
    assert hp["num_leaves"] == 5 and type(hp["num_leaves"]) is int
    assert hp["learning_rate"] == 0.25 and hp["n_estimators"] == 4 and hp["verbose"] == -1
    assert info["objective"] == "binary" and info["classes"] == [0, 1]
    assert info["num_trees"] == 4 and info["num_features"] == 3 and info["feature_names"] == ["Column_0", "Column_1", "Column_2"]
    json.dumps(record, allow_nan=False)  # strict JSON


def test_booster_metadata(tmp_path):
    data = lgb.Dataset(X, X[:, 1], feature_name=["a", "b", "c"])
    model = lgb.train({"objective": "huber", "num_leaves": 6, "num_threads": 1, "verbose": -1}, data, 3)
    v = open_store(tmp_path).upload("b", model=model)
    info = v.metadata["model"]
    assert v.flavor.model_class == "lightgbm.basic.Booster" and info["feature_names"] == ["a", "b", "c"]
    assert info["hyperparameters"]["num_leaves"] == 6 and info["objective"] == "huber"
    assert info["num_iterations"] == 3 and info["best_iteration"] == model.best_iteration

"""LightGBM models go through a real local store and come back as the same class, predicting the same."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from modelstore_core import ModelStoreError
from modelstore_core.testing.flavors import assert_round_trip, open_store

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 5))
Y_BIN = np.where(X[:, 0] + X[:, 1] > 0, "churn", "stay")  # string labels come back as strings
Y_MULTI = np.digitize(X[:, 0] + 0.5 * X[:, 2], [-0.5, 0.5])  # 3 classes
Y_REG = 2.0 * X[:, 0] - X[:, 3] + RNG.normal(0, 0.1, 300)
GROUP = [10] * 30  # 30 queries of 10 documents
RELEVANCE = np.clip(np.round(X[:, 0] + 1), 0, 2).astype(int)
PARAMS = {"n_estimators": 6, "num_leaves": 7, "min_child_samples": 5, "n_jobs": 1, "verbose": -1}


def booster():
    data = lgb.Dataset(X, Y_REG, feature_name=[f"f_{c}" for c in "abcde"])
    return lgb.train({"num_leaves": 7, "num_threads": 1, "verbose": -1}, data, 5), lambda m: m.predict(X)


def multiclass_booster():
    params = {"objective": "multiclassova", "num_class": 3, "num_leaves": 4, "num_threads": 1, "verbose": -1}
    return lgb.train(params, lgb.Dataset(X, Y_MULTI), 3), lambda m: m.predict(X)


def classifier():
    return lgb.LGBMClassifier(**PARAMS).fit(X, Y_BIN), lambda m: (m.predict_proba(X), m.predict(X))


def multiclass():
    return lgb.LGBMClassifier(**PARAMS).fit(X, Y_MULTI), lambda m: (m.predict_proba(X), m.predict(X))


def regressor_with_early_stopping():
    model = lgb.LGBMRegressor(**{**PARAMS, "n_estimators": 300, "learning_rate": 0.5})
    model.fit(X[:200], Y_REG[:200], eval_set=[(X[200:], Y_REG[200:])], callbacks=[lgb.early_stopping(3, verbose=False)])
    assert 0 < model.best_iteration_ < 299  # it did stop early: predictions depend on best_iteration
    return model, lambda m: m.predict(X)


def ranker():
    return lgb.LGBMRanker(**PARAMS).fit(X, RELEVANCE, group=GROUP), lambda m: m.predict(X)


def linear_tree():
    return lgb.LGBMRegressor(**PARAMS, linear_tree=True).fit(X, Y_REG), lambda m: m.predict(X)


def pandas_categorical():
    frame = pd.DataFrame(X[:, :2], columns=["a", "b"])
    frame["city"] = pd.Categorical(RNG.choice(["paris", "oslo", "rome"], 300))
    y = X[:, 0] + (frame["city"] == "oslo") * 2.0
    model = lgb.LGBMRegressor(**PARAMS, min_data_per_group=5, cat_smooth=1).fit(frame, y)
    assert "cat_boundaries" in model.booster_.model_to_string()  # a real categorical split
    return model, lambda m: m.predict(frame)


CASES = {
    "booster": booster,
    "multiclass-booster": multiclass_booster,
    "classifier": classifier,
    "multiclass": multiclass,
    "regressor-early-stopping": regressor_with_early_stopping,
    "ranker": ranker,
    "linear-tree": linear_tree,
    "pandas-categorical": pandas_categorical,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip(tmp_path, case):
    model, predict = CASES[case]()
    v, loaded = assert_round_trip(open_store(tmp_path), open_store(tmp_path, cache="cold-cache"), model, predict)
    assert v.flavor.format == "text" and v.flavor.safe is True
    assert [f.path for f in v.files] == ["model.txt"]
    if not isinstance(model, lgb.Booster):  # the estimator as fit left it, parameters included
        assert {k: repr(v) for k, v in loaded.get_params().items()} == {k: repr(v) for k, v in model.get_params().items()}
        assert loaded.n_features_in_ == model.n_features_in_ and loaded.best_iteration_ == model.best_iteration_
        assert loaded.objective_ == model.objective_ and loaded.best_score_ == model.best_score_
        assert loaded.booster_.num_trees() == model.booster_.num_trees()


def test_classifier_state_survives(tmp_path):
    model, _ = classifier()
    open_store(tmp_path).upload("m", model=model)
    loaded = open_store(tmp_path, cache="c2").load("m")
    assert loaded.classes_.tolist() == ["churn", "stay"] and loaded.n_classes_ == 2
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_feature_names_from_a_frame_survive(tmp_path):
    model, _ = pandas_categorical()
    open_store(tmp_path).upload("m", model=model)
    loaded = open_store(tmp_path, cache="c2").load("m")
    assert loaded.feature_names_in_.tolist() == ["a", "b", "city"] == loaded.feature_name_


def test_early_stopped_booster_keeps_every_tree_and_its_best_iteration(tmp_path):
    params = {"num_leaves": 7, "num_threads": 1, "verbose": -1, "learning_rate": 0.5}
    train, valid = lgb.Dataset(X[:200], Y_REG[:200]), lgb.Dataset(X[200:], Y_REG[200:])
    stop = [lgb.early_stopping(3, verbose=False)]
    booster = lgb.train(params, train, 300, valid_sets=[valid], callbacks=stop, keep_training_booster=True)
    open_store(tmp_path).upload("b", model=booster)
    loaded = open_store(tmp_path, cache="c2").load("b")
    assert loaded.best_iteration == booster.best_iteration > 0
    assert loaded.num_trees() == booster.num_trees() > booster.best_iteration
    np.testing.assert_array_equal(loaded.predict(X), booster.predict(X))
    np.testing.assert_array_equal(loaded.predict(X, num_iteration=-1), booster.predict(X, num_iteration=-1))


def test_refusals_say_what_to_do(tmp_path):
    store = open_store(tmp_path)

    class MyRegressor(lgb.LGBMRegressor):
        pass

    sub = MyRegressor(**PARAMS).fit(X, Y_REG)
    with pytest.raises(ModelStoreError, match="booster_"):
        store.upload("m", model=sub)
    with pytest.raises(ModelStoreError, match="not fitted"):
        store.upload("m", model=lgb.LGBMRegressor())
    assert store.list_domains() == []  # nothing was committed

"""xgboost models go through a real local store and come back as the same class, predicting the same."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from modelstore_core import ModelStoreError
from modelstore_core.testing.flavors import assert_round_trip, open_store

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 6)).astype(np.float32)
Y_BIN = (X[:, 0] + X[:, 1] > 0).astype(int)
Y_MULTI = np.digitize(X[:, 0] + 0.5 * X[:, 2], [-0.5, 0.5])  # 3 classes
Y_REG = 2.0 * X[:, 0] - X[:, 3] + RNG.normal(0, 0.1, 300)
QID = np.repeat(np.arange(30), 10)  # 30 queries of 10 documents, sorted
RELEVANCE = np.clip(np.round(X[:, 0] + 1), 0, 2).astype(int)
FEATURES = [f"f_{name}" for name in "abcdef"]
PARAMS = {"n_estimators": 8, "max_depth": 3, "n_jobs": 1, "random_state": 0}


def booster():
    dtrain = xgb.DMatrix(X, label=Y_BIN, feature_names=FEATURES)
    model = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 0}, dtrain, num_boost_round=8)
    return model, lambda m: m.predict(xgb.DMatrix(X, feature_names=FEATURES))


def classifier():
    return xgb.XGBClassifier(**PARAMS).fit(X, Y_MULTI), lambda m: m.predict_proba(X)


def regressor_with_early_stopping():
    model = xgb.XGBRegressor(**{**PARAMS, "n_estimators": 200}, early_stopping_rounds=3)
    model.fit(X[:200], Y_REG[:200], eval_set=[(X[200:], Y_REG[200:])], verbose=False)
    assert model.best_iteration < 199  # it did stop early: predictions depend on best_iteration
    return model, lambda m: m.predict(X)


def ranker():
    return xgb.XGBRanker(**PARAMS).fit(X, RELEVANCE, qid=QID), lambda m: m.predict(X)


def rf_classifier():
    return xgb.XGBRFClassifier(n_estimators=4, max_depth=3, n_jobs=1, random_state=0).fit(X, Y_BIN), lambda m: m.predict_proba(X)


CASES = {
    "booster": booster,
    "classifier": classifier,
    "regressor-early-stopping": regressor_with_early_stopping,
    "ranker": ranker,
    "rf-classifier": rf_classifier,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip(tmp_path, case):
    model, predict = CASES[case]()
    reader = open_store(tmp_path, cache="cold-cache")  # a fresh ModelStore object and cache
    v, _ = assert_round_trip(open_store(tmp_path), reader, model, predict)
    assert v.flavor.format == "ubjson" and v.flavor.safe is True
    assert [f.path for f in v.files] == ["model.ubj"]


def test_booster_keeps_feature_names_and_rounds(tmp_path):
    model, _ = booster()
    open_store(tmp_path).upload("b", model=model)
    loaded = open_store(tmp_path, cache="c2").load("b")
    assert loaded.feature_names == FEATURES
    assert loaded.num_boosted_rounds() == model.num_boosted_rounds() == 8


def test_estimator_state_survives(tmp_path):
    clf, _ = classifier()
    reg, _ = regressor_with_early_stopping()
    store = open_store(tmp_path)
    store.upload("clf", model=clf)
    store.upload("reg", model=reg)
    reader = open_store(tmp_path, cache="c2")
    loaded_clf, loaded_reg = reader.load("clf"), reader.load("reg")
    np.testing.assert_array_equal(loaded_clf.classes_, clf.classes_)
    np.testing.assert_array_equal(loaded_clf.predict(X), clf.predict(X))
    assert loaded_reg.best_iteration == reg.best_iteration
    for loaded, model in ((loaded_clf, clf), (loaded_reg, reg)):  # parameters, not only the trees
        assert {k: repr(v) for k, v in loaded.get_params().items()} == {k: repr(v) for k, v in model.get_params().items()}


def test_missing_value_marker_is_restored(tmp_path):
    """``missing`` is not in xgboost's model file but changes predictions: it must come back."""
    x = X.copy()
    x[::7, 1] = -999.0
    model = xgb.XGBRegressor(**PARAMS, missing=-999.0).fit(x, Y_REG)
    open_store(tmp_path).upload("m", model=model)
    loaded = open_store(tmp_path, cache="c2").load("m")
    assert loaded.missing == -999.0
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # Without the recorded parameters, the same file predicts differently on these rows.
    bare = xgb.XGBRegressor()
    bare.load_model(str(open_store(tmp_path).download("m", to=tmp_path / "files") / "model.ubj"))
    assert not np.array_equal(bare.predict(x), model.predict(x))


def test_json_format_on_request(tmp_path):
    model, predict = classifier()
    v = open_store(tmp_path).upload("j", model=model, format="json")
    assert v.flavor.format == "json" and [f.path for f in v.files] == ["model.json"]
    loaded = open_store(tmp_path, cache="c2").load("j")
    np.testing.assert_array_equal(predict(loaded), predict(model))


def test_refusals_say_what_to_do(tmp_path):
    store = open_store(tmp_path)
    model, _ = classifier()
    with pytest.raises(ModelStoreError, match="'ubj'"):
        store.upload("m", model=model, format="pickle")

    class MyClassifier(xgb.XGBClassifier):
        pass

    sub = MyClassifier(n_estimators=2, max_depth=2, n_jobs=1).fit(X, Y_BIN)
    with pytest.raises(ModelStoreError, match="get_booster"):
        store.upload("m", model=sub)
    with pytest.raises(ModelStoreError, match="fitted"):
        store.upload("m", model=xgb.XGBRegressor())
    assert store.list_domains() == []  # nothing was committed

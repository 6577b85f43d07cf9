"""CatBoost models, categorical features included, go through a real local store and come back
as the same class, predicting the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoost, CatBoostClassifier, CatBoostRanker, CatBoostRegressor, Pool

from modelstore_core import ModelStoreError
from modelstore_core.testing.flavors import assert_round_trip, open_store

RNG = np.random.default_rng(0)
N = 240
FRAME = pd.DataFrame(
    {
        "amount": RNG.normal(100, 30, N),
        "age": RNG.integers(18, 80, N),
        "city": RNG.choice(["paris", "lyon", "nice", "lille"], N),
        "channel": RNG.choice(["web", "shop"], N),
    }
)
LABEL = ((FRAME["city"].isin(["paris", "nice"])) ^ (FRAME["amount"] > 100)).astype(int).to_numpy()
MULTI = np.where(FRAME["channel"] == "web", FRAME["age"] // 30, 3)  # 4 classes
TARGET = FRAME["amount"] * 0.1 + (FRAME["city"] == "lyon") * 4 + RNG.normal(0, 0.5, N)
X = RNG.normal(size=(N, 4))
QUERIES = np.repeat(np.arange(24), 10)  # 24 queries of 10 documents, sorted
RELEVANCE = np.clip(np.round(X[:, 0] + 1), 0, 3)
COMMON = {"iterations": 15, "depth": 3, "random_seed": 0, "thread_count": 1, "verbose": False, "allow_writing_files": False}
CATS = ["city", "channel"]


def classifier():
    return CatBoostClassifier(**COMMON, cat_features=CATS).fit(FRAME, LABEL), lambda m: m.predict_proba(FRAME)


def multiclass():
    model = CatBoostClassifier(**COMMON, loss_function="MultiClass", cat_features=CATS).fit(FRAME, MULTI)
    return model, lambda m: m.predict_proba(FRAME)


def regressor():
    return CatBoostRegressor(**COMMON, cat_features=CATS).fit(FRAME, TARGET), lambda m: m.predict(FRAME)


def ranker():
    model = CatBoostRanker(**COMMON, loss_function="YetiRank").fit(Pool(X, RELEVANCE, group_id=QUERIES))
    return model, lambda m: m.predict(X)


def generic():
    model = CatBoost({**COMMON, "loss_function": "RMSE"}).fit(Pool(FRAME, TARGET, cat_features=CATS))
    return model, lambda m: m.predict(Pool(FRAME, cat_features=CATS))


CASES = {"classifier": classifier, "multiclass": multiclass, "regressor": regressor, "ranker": ranker, "generic": generic}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip(tmp_path, case):
    model, predict = CASES[case]()
    reader = open_store(tmp_path, cache="cold-cache")  # a fresh ModelStore object and cache
    v, _ = assert_round_trip(open_store(tmp_path), reader, model, predict)
    assert v.flavor.format == "cbm" and v.flavor.safe is True
    assert [f.path for f in v.files] == ["model.cbm"]


def test_categorical_features_survive(tmp_path):
    model, _ = classifier()
    open_store(tmp_path).upload("m", model=model)
    loaded = open_store(tmp_path, cache="c2").load("m")
    assert loaded.feature_names_ == list(FRAME.columns)
    assert loaded.get_cat_feature_indices() == [2, 3]
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    # Unseen categories and a plain list-of-rows input go through the stored categorical handling.
    rows = [[90.0, 30, "unknown-city", "web"], [150.0, 60, "paris", "shop"]]
    np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    np.testing.assert_array_equal(loaded.predict(FRAME), model.predict(FRAME))


def test_refusals_say_what_to_do(tmp_path):
    store = open_store(tmp_path)
    with pytest.raises(ModelStoreError, match="not fitted"):
        store.upload("m", model=CatBoostClassifier(**COMMON))

    class MyClassifier(CatBoostClassifier):
        pass

    with pytest.raises(ModelStoreError, match="subclass"):
        store.upload("m", model=MyClassifier(**COMMON).fit(X, LABEL))
    assert store.list_domains() == []  # nothing was committed

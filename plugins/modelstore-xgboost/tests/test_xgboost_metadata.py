"""What a version records about its xgboost model."""

from __future__ import annotations

import json
from importlib import metadata

import numpy as np
import xgboost as xgb

from modelstore_core.testing.flavors import open_store

RNG = np.random.default_rng(1)
X = RNG.normal(size=(120, 3))
Y = (X[:, 0] > 0).astype(int)


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def test_dependencies_record_whichever_distribution_provides_xgboost(tmp_path):
    v = open_store(tmp_path).upload("m", model=xgb.XGBClassifier(n_estimators=2, n_jobs=1).fit(X, Y))
    deps = v.metadata["dependencies"]
    present = {name: installed(name) for name in ("xgboost", "xgboost-cpu") if installed(name)}
    assert present  # the module came from one of them
    assert {name: deps.get(name) for name in ("xgboost", "xgboost-cpu") if name in deps} == present
    assert v.metadata["model"]["distribution"] == present
    assert deps["numpy"] == metadata.version("numpy")  # what xgboost requires is recorded too
    assert deps["modelstore-xgboost"] == "0.1.0"


def test_estimator_metadata(tmp_path):
    model = xgb.XGBClassifier(n_estimators=4, max_depth=np.int64(2), learning_rate=np.float32(0.25), n_jobs=1)
    model.fit(X, Y)
    open_store(tmp_path).upload("m", model=model)
    record = open_store(tmp_path, cache="c2").info("m").metadata  # read back from the store
    info = record["model"]
    assert info["framework"] == "xgboost" and info["framework_version"] == xgb.__version__
    flavor = record["flavor"]  # class and format are the core's, not repeated by the plugin
    assert flavor["model_class"] == "xgboost.sklearn.XGBClassifier" and flavor["format"] == "ubjson"
    assert "class" not in info and "serialization" not in info
    assert info["objective"] == "binary:logistic" and info["booster"] == "gbtree"
    assert info["num_features"] == 3 and info["num_boosted_rounds"] == 4 and info["n_classes"] == 2
    hp = info["hyperparameters"]
    assert hp["max_depth"] == 2 and type(hp["max_depth"]) is int
    assert hp["learning_rate"] == 0.25 and type(hp["learning_rate"]) is float
    assert hp["missing"] == {"float": "nan"} and hp["n_estimators"] == 4  # the core's one JSON policy: the value kept
    assert open_store(tmp_path, cache="c3").info("m").params["missing"] == "nan"  # a param is a scalar: its text
    assert info["booster_config"]["learner"]["objective"]["name"] == "binary:logistic"
    json.dumps(record, allow_nan=False)  # strict JSON


def test_booster_metadata(tmp_path):
    dtrain = xgb.DMatrix(X[:80], label=X[:80, 1], feature_names=["a", "b", "c"])
    dvalid = xgb.DMatrix(X[80:], label=X[80:, 1], feature_names=["a", "b", "c"])
    model = xgb.train(
        {"objective": "reg:squarederror", "max_depth": 4, "eta": 0.5, "nthread": 1},
        dtrain,
        num_boost_round=100,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=2,
        verbose_eval=False,
    )
    v = open_store(tmp_path).upload("b", model=model)
    info = v.metadata["model"]
    assert v.flavor.model_class == "xgboost.core.Booster" and info["feature_names"] == ["a", "b", "c"]
    assert info["hyperparameters"]["max_depth"] == "4" and info["hyperparameters"]["objective"] == "reg:squarederror"
    assert info["attributes"]["best_iteration"] == str(model.best_iteration)
    assert info["num_boosted_rounds"] == model.num_boosted_rounds() < 100


def test_params_default_to_the_hyperparameters(tmp_path):
    model = xgb.XGBClassifier(n_estimators=4, max_depth=2, learning_rate=0.25, n_jobs=1).fit(X, Y)
    v = open_store(tmp_path).upload("m", model=model, metrics={"logloss": 0.3})
    assert v.params["n_estimators"] == 4 and v.params["max_depth"] == 2 and v.params["learning_rate"] == 0.25
    booster = open_store(tmp_path).upload("b", model=model.get_booster())
    assert booster.params["max_depth"] == "2" and booster.params["eta"] == "0.25"  # as the saved config spells them
    assert open_store(tmp_path, cache="c2").info("b").params == booster.params


def test_the_input_signature_has_feature_names_types_and_categories(tmp_path):
    import pandas as pd

    df = pd.DataFrame({"age": np.arange(60), "income": RNG.normal(size=60), "plan": pd.Categorical(["a", "b", "c"] * 20)})
    model = xgb.XGBClassifier(n_estimators=2, enable_categorical=True, tree_method="hist", n_jobs=1).fit(df, np.arange(60) % 2)
    store = open_store(tmp_path)
    v = store.upload("m", model=model)
    assert v.signature == {
        "format": "columns",
        "source": "xgboost",
        "inputs": [
            {"name": "age", "dtype": "int"},
            {"name": "income", "dtype": "float"},
            {"name": "plan", "dtype": "category", "feature_type": "categorical"},
        ],
    }
    assert open_store(tmp_path, cache="c2").info("m").signature == v.signature
    assert store.check_input("m", df.head(3)).ok
    wrong = df.assign(income=df.income.astype(str)).drop(columns="age")
    assert sorted((p.kind, p.name) for p in store.check_input("m", wrong).problems) == [("dtype", "income"), ("missing", "age")]

    plain = store.upload("n", model=xgb.XGBRegressor(n_estimators=2, n_jobs=1).fit(X, X[:, 0]))
    assert plain.signature["inputs"] == [{"name": None, "dtype": None, "shape": [None, 3]}]
    assert not store.check_input("n", X[:, :2]).ok

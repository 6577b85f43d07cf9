"""What a version records about its scikit-learn model."""

from __future__ import annotations

import json
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
import sklearn
import skops
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelstore_core.testing.flavors import open_store


def test_metadata_of_a_column_transformer_pipeline(tmp_path):
    df = pd.DataFrame({"x": np.arange(40.0), "colour": ["red", "blue"] * 20})
    y = np.arange(40) % 2
    model = Pipeline(
        [
            ("pre", ColumnTransformer([("num", StandardScaler(), ["x"]), ("cat", OneHotEncoder(), ["colour"])])),
            ("clf", LogisticRegression(C=np.float64(0.5), max_iter=np.int64(300))),
        ]
    ).fit(df, y)
    open_store(tmp_path).upload("m", model=model)

    record = open_store(tmp_path, cache="c2").info("m").metadata  # read back from the store
    info = record["model"]
    assert info["framework"] == "scikit-learn" and info["framework_version"] == sklearn.__version__
    flavor = record["flavor"]  # class and format are the core's, not repeated by the plugin
    assert flavor["model_class"] == "sklearn.pipeline.Pipeline" and flavor["format"] == "skops"
    assert "class" not in info and "serialization" not in info
    assert info["skops_version"] == skops.__version__ and info["types_to_trust"] == []
    assert info["steps"] == [
        ["pre", "sklearn.compose._column_transformer.ColumnTransformer"],
        ["clf", "sklearn.linear_model._logistic.LogisticRegression"],
    ]
    assert info["feature_names_in"] == ["x", "colour"] and info["n_features_in"] == 2
    assert info["classes"] == [0, 1]

    steps = info["hyperparameters"]["steps"]
    assert steps[0][0] == "pre" and steps[1][0] == "clf"
    clf = steps[1][1]
    assert clf["class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert clf["params"]["C"] == 0.5 and type(clf["params"]["C"]) is float
    assert clf["params"]["max_iter"] == 300 and type(clf["params"]["max_iter"]) is int
    transformers = steps[0][1]["params"]["transformers"]
    assert transformers[1] == [
        "cat",
        {"class": "sklearn.preprocessing._encoders.OneHotEncoder", "params": OneHotEncoder().get_params() | {"dtype": "numpy.float64"}},
        ["colour"],
    ]
    json.dumps(record, allow_nan=False)  # strict JSON

    assert record["flavor"]["plugin"] == "modelstore-sklearn" and record["flavor"]["plugin_version"] == "0.1.0"
    for dist in ("scikit-learn", "skops", "numpy", "modelstore-sklearn"):
        assert record["dependencies"][dist] == version(dist)


def test_metadata_lists_the_types_a_reader_must_trust(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 3))
    y = (x[:, 0] > 0).astype(int)
    model = RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0).fit(x, y)
    v = open_store(tmp_path).upload("rf", model=model)
    assert v.metadata["model"]["types_to_trust"] == []  # trees are checked, so trusted by default
    assert v.metadata["model"]["hyperparameters"]["n_estimators"] == 2
    from sklearn.neighbors import KNeighborsClassifier

    v = open_store(tmp_path).upload("knn", model=KNeighborsClassifier(algorithm="kd_tree").fit(x, y))
    assert v.metadata["model"]["types_to_trust"] == []  # tree indexes and plain metrics are checked too


def test_dependencies_include_what_the_types_to_trust_come_from(tmp_path):
    """A pipeline holding a class from another installed package (here: pytest's, the only
    non-scikit-learn package every test venv has) records that package's version."""
    import _pytest.monkeypatch
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(kw_args={"helper": _pytest.monkeypatch.MonkeyPatch()}).fit(np.zeros((3, 2)))
    v = open_store(tmp_path).upload("m", model=model)
    assert v.flavor.options["types_to_trust"] == ["_pytest.monkeypatch.MonkeyPatch"]
    assert v.metadata["dependencies"]["pytest"] == version("pytest")


def test_params_default_to_the_hyperparameters_flattened_and_take_the_callers_over_them(tmp_path):
    df = pd.DataFrame({"x": np.arange(40.0), "colour": ["red", "blue"] * 20})
    model = Pipeline(
        [
            ("pre", ColumnTransformer([("num", StandardScaler(), ["x"]), ("cat", OneHotEncoder(), ["colour"])])),
            ("clf", LogisticRegression(C=np.float64(0.5), max_iter=np.int64(300))),
        ]
    ).fit(df, np.arange(40) % 2)
    store = open_store(tmp_path)
    v = store.upload("m", model=model, params={"steps.clf.C": 0.25, "features": "v2"}, metrics={"auc": np.float64(0.75)})
    params = open_store(tmp_path, cache="c2").info("m").params
    assert params == v.params
    assert params["steps.clf"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert params["steps.clf.max_iter"] == 300
    assert params["steps.clf.C"] == 0.25 and params["features"] == "v2"  # the caller's win
    assert params["steps.pre.transformers.cat.handle_unknown"] == "error"
    assert v.metrics == {"auc": 0.75}
    assert all(not isinstance(value, (list, dict)) for value in params.values())

    forest = open_store(tmp_path).upload("f", model=RandomForestClassifier(n_estimators=3, max_depth=2).fit(df[["x"]], np.arange(40) % 2))
    assert forest.params["n_estimators"] == 3 and forest.params["max_depth"] == 2 and forest.params["max_features"] == "sqrt"


def test_the_input_signature_comes_from_feature_names_in(tmp_path):
    df = pd.DataFrame({"x": np.arange(40.0), "colour": ["red", "blue"] * 20})
    y = np.arange(40) % 2
    model = Pipeline(
        [
            ("pre", ColumnTransformer([("num", StandardScaler(), ["x"]), ("cat", OneHotEncoder(), ["colour"])])),
            ("clf", LogisticRegression()),
        ]
    ).fit(df, y)
    store = open_store(tmp_path)
    v = store.upload("m", model=model)
    assert v.signature == {
        "format": "columns",
        "source": "feature_names_in_",
        "inputs": [{"name": "x", "dtype": None}, {"name": "colour", "dtype": None}],
    }
    assert store.check_input("m", df.head(2)).ok
    problems = store.check_input("m", df.rename(columns={"colour": "color"})).problems
    assert sorted((p.kind, p.name) for p in problems) == [("extra", "color"), ("missing", "colour")]
    with pytest.raises(ValueError):  # what the check foretold: the model refuses it too
        store.load("m").predict(df.rename(columns={"colour": "color"}))

    # With an example, its dtypes too.
    v = store.upload("m", model=model, input_example=df.head(1))
    assert v.signature["source"] == "input_example" and [i["dtype"] for i in v.signature["inputs"]] == ["float64", str(df.colour.dtype)]


def test_a_model_fitted_on_an_array_records_its_feature_count(tmp_path):
    X = np.random.default_rng(0).normal(size=(30, 4))
    store = open_store(tmp_path)
    v = store.upload("m", model=RandomForestClassifier(n_estimators=2).fit(X, X[:, 0] > 0))
    assert v.signature == {"format": "tensors", "source": "n_features_in_", "inputs": [{"name": None, "dtype": None, "shape": [None, 4]}]}
    assert store.check_input("m", X[:3]).ok
    assert [(p.kind, p.expected, p.found) for p in store.check_input("m", X[:, :3]).problems] == [("shape", [None, 4], [30, 3])]
    assert open_store(tmp_path).upload("u", model=LogisticRegression()).signature is None  # not fitted: nothing known

"""Fitted scikit-learn models go through a real local store and come back predicting the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeRegressor

from modelstore_core import UntrustedArtifactError
from modelstore_core.testing.flavors import assert_round_trip, open_store

X, Y = make_classification(n_samples=120, n_features=5, random_state=0)
XR, YR = make_regression(n_samples=120, n_features=5, random_state=0)
_, Y3 = make_classification(n_samples=120, n_features=5, n_informative=3, n_classes=3, random_state=0)


def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 80),
            "income": rng.normal(50_000, 8_000, 80),
            "city": rng.choice(["paris", "lyon", "nice"], 80),
            "plan": rng.choice(["a", "b"], 80),
        }
    )
    y = df["age"] * 0.3 + (df["city"] == "lyon") * 5 + rng.normal(0, 1, 80)
    return df, y.to_numpy()


def column_pipeline():
    df, y = frame()
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
        ]
    )
    return Pipeline([("pre", pre), ("ridge", Ridge(alpha=0.5))]).fit(df, y), df, "predict"


CASES = {
    "logistic-pipeline": lambda: (make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y), X, "predict_proba"),
    "column-transformer": column_pipeline,
    "mlp": lambda: (MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(X, Y), X, "predict_proba"),
    "svc": lambda: (SVC().fit(X, Y), X, "decision_function"),
    "kmeans": lambda: (KMeans(n_clusters=3, n_init=2, random_state=0).fit(X), X, "transform"),
}


@pytest.fixture(autouse=True)
def _quiet_convergence(recwarn):
    """MLP with 50 iterations warns that it did not converge: irrelevant here."""


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_with_default_trusted_types(tmp_path, case):
    model, data, method = CASES[case]()
    reader = open_store(tmp_path, cache="cold-cache")  # a fresh ModelStore object and cache
    v, _ = assert_round_trip(open_store(tmp_path), reader, model, lambda m: getattr(m, method)(data))
    assert v.flavor.format == "skops" and v.flavor.safe is True
    assert [f.path for f in v.files] == ["model.skops"]


def test_column_transformer_keeps_its_structure(tmp_path):
    model, df, _ = column_pipeline()
    open_store(tmp_path).upload("ct", model=model)
    loaded = open_store(tmp_path, cache="c2").load("ct")
    assert [name for name, _ in loaded.steps] == ["pre", "ridge"]
    assert type(loaded.named_steps["pre"]) is ColumnTransformer
    np.testing.assert_array_equal(loaded.named_steps["pre"].transform(df), model.named_steps["pre"].transform(df))
    assert list(loaded.feature_names_in_) == list(df.columns)


TREE_CASES = {
    "decision-tree-multioutput": lambda: (DecisionTreeRegressor(max_depth=4).fit(XR, np.c_[YR, -YR]), XR, "predict"),
    "random-forest": lambda: (RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y), X, "predict_proba"),
    "extra-trees": lambda: (ExtraTreesRegressor(n_estimators=5, random_state=0).fit(XR, YR), XR, "predict"),
    "gradient-boosting-3-classes": lambda: (GradientBoostingClassifier(n_estimators=5).fit(X, Y3), X, "predict_proba"),
    "isolation-forest-feature-subsets": lambda: (
        IsolationForest(n_estimators=5, max_features=3, random_state=0).fit(X),
        X,
        "score_samples",
    ),
    "hist-gradient-boosting": lambda: (HistGradientBoostingRegressor(max_iter=10, random_state=0).fit(XR, YR), XR, "predict"),
}


@pytest.mark.parametrize("case", sorted(TREE_CASES))
def test_tree_models_load_with_no_flags(tmp_path, case):
    """Their node arrays are checked on load (see test_sklearn_security.py), so their types are trusted by default."""
    model, data, method = TREE_CASES[case]()
    reader = open_store(tmp_path, cache="cold-cache")
    v, _ = assert_round_trip(open_store(tmp_path), reader, model, lambda m: getattr(m, method)(data))
    assert v.flavor.options["types_to_trust"] == []


@pytest.mark.parametrize("algorithm,metric", [("ball_tree", "minkowski"), ("kd_tree", "manhattan"), ("kd_tree", "chebyshev")])
def test_nearest_neighbours_with_a_tree_index_load_with_no_flags(tmp_path, algorithm, metric):
    """KDTree/BallTree and the plain metrics are checked on load, so they are trusted by default."""
    model = KNeighborsClassifier(algorithm=algorithm, metric=metric).fit(X, Y)
    v, _ = assert_round_trip(open_store(tmp_path), open_store(tmp_path, cache="reader"), model, lambda m: m.predict(X))
    assert v.flavor.options["types_to_trust"] == []


def test_a_metric_whose_state_is_not_checked_still_needs_its_type_trusted(tmp_path):
    model = KNeighborsClassifier(algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.eye(X.shape[1])}).fit(X, Y)
    v = open_store(tmp_path).upload("knn", model=model)
    needed = v.flavor.options["types_to_trust"]
    assert needed == ["sklearn.metrics._dist_metrics.MahalanobisDistance64"]
    store = open_store(tmp_path, cache="reader")
    with pytest.raises(UntrustedArtifactError) as err:
        store.load("knn")
    message = str(err.value)
    assert needed[0] in message and "trusted_types=" in message and "trust=True" in message
    assert "trusted=" not in message.replace("trusted_types=", "")  # only this library's keywords
    np.testing.assert_array_equal(store.load("knn", trusted_types=needed).predict(X), model.predict(X))


def test_trusted_types_accepts_types_themselves(tmp_path):
    from sklearn.tree._tree import Tree

    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y)
    open_store(tmp_path).upload("rf", model=model)
    loaded = open_store(tmp_path, cache="c2").load("rf", trusted_types=[Tree])
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))

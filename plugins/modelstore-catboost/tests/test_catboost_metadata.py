"""What a version records about its CatBoost model."""

from __future__ import annotations

import json
from importlib.metadata import version

import catboost
import numpy as np
import pandas as pd
from catboost import CatBoostClassifier

from modelstore_core.testing.flavors import open_store


def test_metadata(tmp_path):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=120), "shop": rng.choice(["a", "b", "c"], 120)})
    label = np.where(frame["shop"] == "a", "yes", "no")
    model = CatBoostClassifier(
        iterations=np.int64(12),
        learning_rate=np.float64(0.2),
        depth=3,
        random_seed=0,
        thread_count=1,
        verbose=False,
        allow_writing_files=False,
        cat_features=["shop"],
    ).fit(frame, label)
    open_store(tmp_path).upload("m", model=model)

    record = open_store(tmp_path, cache="c2").info("m").metadata  # read back from the store
    info = record["model"]
    assert info["framework"] == "catboost" and info["framework_version"] == catboost.__version__
    flavor = record["flavor"]  # class and format are the core's, not repeated by the plugin
    assert flavor["model_class"] == "catboost.core.CatBoostClassifier" and flavor["format"] == "cbm"
    assert "class" not in info and "serialization" not in info
    hp = info["hyperparameters"]
    assert hp["iterations"] == 12 and type(hp["iterations"]) is int
    assert hp["learning_rate"] == 0.2 and type(hp["learning_rate"]) is float
    assert hp["cat_features"] == ["shop"]
    assert info["all_parameters"]["depth"] == 3 and info["all_parameters"]["loss_function"] == "Logloss"
    assert info["feature_names"] == ["x", "shop"] and info["cat_features"] == [1]
    assert info["classes"] == ["no", "yes"] and info["tree_count"] == 12
    assert info["model_guid"] == dict(model.get_metadata())["model_guid"]
    json.dumps(record, allow_nan=False)  # strict JSON
    assert record["dependencies"]["catboost"] == version("catboost")
    assert record["flavor"]["plugin"] == "modelstore-catboost" and record["flavor"]["plugin_version"] == "0.1.0"


def test_the_input_signature_names_the_categorical_features(tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=60), "shop": rng.choice(["a", "b"], 60), "n": rng.integers(0, 5, 60)})
    model = CatBoostClassifier(iterations=3, depth=2, thread_count=1, verbose=False, allow_writing_files=False, cat_features=["shop"])
    model.fit(frame, np.arange(60) % 2)
    store = open_store(tmp_path)
    v = store.upload("m", model=model, params={"dataset": "v2"})
    assert v.signature == {
        "format": "columns",
        "source": "catboost",
        "inputs": [
            {"name": "x", "dtype": None},
            {"name": "shop", "dtype": None, "feature_type": "categorical"},
            {"name": "n", "dtype": None},
        ],
    }
    assert v.params["iterations"] == 3 and v.params["cat_features"] == '["shop"]' and v.params["dataset"] == "v2"
    assert store.check_input("m", frame).ok
    assert [(p.kind, p.name) for p in store.check_input("m", frame.drop(columns="shop")).problems] == [("missing", "shop")]
    with_example = store.upload("m", model=model, input_example=frame.head(2)).signature
    assert with_example["inputs"][1] == {
        "name": "shop",
        "dtype": str(frame.shop.dtype),
        "feature_type": "categorical",
    }  # kept from catboost

"""Determinism: the same fitted model gives the same bytes; what CatBoost makes differ per fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier

from modelstore_core.testing.flavors import assert_reupload_deduplicated, open_store

RNG = np.random.default_rng(5)
FRAME = pd.DataFrame({"x": RNG.normal(size=150), "colour": RNG.choice(["red", "green", "blue"], 150)})
LABEL = ((FRAME["x"] > 0) ^ (FRAME["colour"] == "red")).astype(int).to_numpy()
PARAMS = {"iterations": 10, "depth": 3, "random_seed": 0, "thread_count": 1, "verbose": False, "allow_writing_files": False}


def fit():
    return CatBoostClassifier(**PARAMS, cat_features=["colour"]).fit(FRAME, LABEL)


def test_reupload_of_the_same_model_is_deduplicated(tmp_path):
    assert_reupload_deduplicated(open_store(tmp_path), tmp_path, {"m": fit()})


def test_each_fit_embeds_its_own_guid_and_time(tmp_path):
    """Why two identical fits are not deduplicated: CatBoost stamps every fit with a random
    ``model_guid`` (and ``train_finish_time``). Training itself is deterministic."""
    first, second = fit(), fit()
    store = open_store(tmp_path)
    v1, v2 = store.upload("m", model=first), store.upload("m", model=second)

    np.testing.assert_array_equal(first.predict_proba(FRAME), second.predict_proba(FRAME))
    assert v1.metadata["model"]["model_guid"] != v2.metadata["model"]["model_guid"]
    assert v1.files[0].sha256 != v2.files[0].sha256

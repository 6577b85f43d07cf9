"""``modelstore diff`` of two xgboost versions: each fact once (the params, not again as the flavor's
hyperparameters, the settings kept to rebuild the estimator or the booster's config), unset
settings left out unless --all (through click's runner: terminals are tested by the core's CLI tests)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import xgboost as xgb
from click.testing import CliRunner

from modelstore_core.cli import main
from modelstore_core.testing.flavors import open_store

RNG = np.random.default_rng(3)
X = RNG.normal(size=(150, 4))
Y = (X[:, 0] + 0.3 * RNG.normal(size=150) > 0).astype(int)


class EntryPoint:
    """What click's runner invokes (it calls ``.main(args=...)``): the console script's ``main()``."""

    @staticmethod
    def main(args, **_) -> None:
        main(list(args))


def modelstore(tmp_path, *args: str) -> str:
    """The command's stdout, piped, against the store ``open_store(tmp_path)`` opens."""
    env = {"MODELSTORE_URL": str(tmp_path / "store"), "MODELSTORE_CACHE_DIR": str(tmp_path / "cli-cache")}
    with warnings.catch_warnings():  # main() replaces warnings.showwarning
        result = CliRunner().invoke(EntryPoint, list(args), env=env, prog_name="modelstore")
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_diff_of_two_classifiers_says_each_setting_once(tmp_path):
    store = open_store(tmp_path)
    store.upload("churn", model=xgb.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(X, Y))
    store.upload("churn", model=xgb.XGBClassifier(n_estimators=20, max_depth=4, n_jobs=1).fit(X, Y))

    rows = [line.split("\t") for line in modelstore(tmp_path, "diff", "churn", "1", "2").splitlines()]
    keys = [row[2] for row in rows if row[1] != "files"]
    assert [row[2:] for row in rows if row[1] == "params"] == [["params.max_depth", "3", "4"], ["params.n_estimators", "10", "20"]]
    assert not [k for k in keys if k.startswith(("flavor.options.params.", "model.hyperparameters."))]  # said once, as params
    assert not [k for k in keys if k.endswith(".max_depth") and k != "params.max_depth"]  # the booster config's "4" too
    # What only the booster says stays: how many trees it holds.
    assert "model.booster_config.learner.gradient_booster.gbtree_model_param.num_trees" in keys
    assert len(rows) <= 8

    everything = json.loads(modelstore(tmp_path, "diff", "churn", "1", "2", "--all", "--json"))
    said = [c["key"] for changes in everything["sections"].values() for c in changes]
    assert {"flavor.options.params.max_depth", "model.hyperparameters.max_depth", "params.max_depth"} <= set(said)


def test_diff_from_the_defaults_leaves_out_what_is_unset_in_both(tmp_path):
    store = open_store(tmp_path)
    store.upload("churn", model=xgb.XGBClassifier(n_jobs=1).fit(X, Y))  # every setting left to xgboost: null
    store.upload("churn", model=xgb.XGBClassifier(n_jobs=1, learning_rate=0.1).fit(X, Y))
    rows = [line.split("\t") for line in modelstore(tmp_path, "diff", "churn", "1", "2").splitlines()]
    assert [row[2:] for row in rows if row[1] == "params"] == [["params.learning_rate", "null", "0.1"]]
    assert not [row for row in rows if "null" in row[3:] and row[1] != "params"]

    shown = [line.split("\t") for line in modelstore(tmp_path, "ls", "churn").splitlines()]
    assert "max_depth=null" in shown[0][-1]  # piped ls lists every param, as recorded (JSON's null)

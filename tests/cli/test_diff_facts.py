"""``diff`` and ``info`` say each fact once and leave out unset values unless --all: a flavor records
its hyperparameters (``model.hyperparameters``, most of them ``null`` for the scikit-learn API's
defaults), the params are made from them, the flavor keeps them again to rebuild the model
(``flavor.options.params``) and a booster's config restates some as text."""

from __future__ import annotations

import json

import pytest

from modelstore_core import ModelStore, hookimpl
from modelstore_core.plugins import get_plugins
from modelstore_core.protocol import keys

UNSET = {f"setting_{i}": None for i in range(30)}  # what the scikit-learn API's get_params() says of defaults


class BoosterLike:
    """A throwaway plugin recording what an xgboost-like flavor records."""

    def __init__(self):
        self.params: dict = {}

    @hookimpl
    def modelstore_collect_metadata(self, model, flavor, domain):
        if not self.params:
            return None  # a version of another flavor
        config = {"tree_train_param": {"max_depth": str(self.params.get("max_depth") or 6), "eta": "0.300000012"}}
        return {"model": {"hyperparameters": {**UNSET, **self.params}, "booster_config": config, "rounds": self.params["n_estimators"]}}


@pytest.fixture
def booster_like():
    plugin = BoosterLike()
    manager = get_plugins().manager
    manager.register(plugin, name="test-booster-like")
    yield plugin
    manager.unregister(plugin)


def keep_params_for_rebuilding(root, domain: str, version: int) -> None:
    """Write the params into ``flavor.options.params`` as a flavor that rebuilds an estimator does."""
    store = ModelStore(root)
    key = keys.version_key(domain, version)
    data, token = store.storage.read(key)
    doc = json.loads(data)
    doc["flavor"]["options"]["params"] = doc["model"]["hyperparameters"]
    assert store.storage.compare_and_swap(key, json.dumps(doc).encode(), token)


@pytest.fixture
def two_versions(cli, files, booster_like):
    store = ModelStore(cli.root, cache_dir=cli.tmp / "api-cache")
    booster_like.params = {"n_estimators": 10, "max_depth": 3}
    store.upload("boost", files=[files["model.bin"]])
    booster_like.params = {"n_estimators": 20, "max_depth": 4, "subsample": 0.8}
    store.upload("boost", files=[files["config.json"]])
    for n in (1, 2):
        keep_params_for_rebuilding(cli.root, "boost", n)


def test_diff_says_each_fact_once(cli, two_versions):
    changes = [row[:5] for row in cli("diff", "boost", "1", "2").lines if row[1] != "files"]
    assert changes == [
        ["changed", "params", "params.max_depth", "3", "4"],
        ["changed", "params", "params.n_estimators", "10", "20"],
        ["added", "params", "params.subsample", "", "0.8"],
        ["changed", "model", "model.rounds", "10", "20"],  # another name: a fact of its own
    ]
    result = json.loads(cli("diff", "boost", "1", "2", "--json").stdout)
    # left out: the same three changes in flavor.options.params and model.hyperparameters, the
    # booster config's max_depth "3" -> "4"
    assert result["hidden"] == 7

    everything = json.loads(cli("diff", "boost", "1", "2", "--json", "--all").stdout)
    assert everything["hidden"] == 0
    assert {c["key"] for c in everything["sections"]["flavor"]} == {
        "flavor.options.params.max_depth", "flavor.options.params.n_estimators", "flavor.options.params.subsample"
    }  # fmt: skip
    assert "model.booster_config.tree_train_param.max_depth" in {c["key"] for c in everything["sections"]["model"]}

    terminal = cli.tty("diff", "boost", "1", "2").stdout
    assert "~ max_depth: 3 → 4" in terminal and "hyperparameters" not in terminal and "options" not in terminal
    assert "7 changes of unset values or restated facts not shown (--all shows them)" in terminal


def test_diff_leaves_out_unset_values_added_or_removed(cli, files, booster_like):
    store = ModelStore(cli.root, cache_dir=cli.tmp / "api-cache")
    store.upload("plain", files=[files["model.bin"]], params={"C": 1.0})
    booster_like.params = {"n_estimators": 10}
    store.upload("plain", files=[files["config.json"]], params={"C": 1.0})
    rows = cli("diff", "plain", "1", "2").lines
    assert [row[2] for row in rows if row[1] == "params"] == ["params.n_estimators"]  # not the 30 settings added as null
    assert len([row for row in cli("diff", "plain", "1", "2", "--all").lines if row[1] == "params"]) == 31


def test_info_leaves_out_unset_params_and_restated_metadata(cli, two_versions):
    shown = cli.tty("info", "boost", "2").stdout
    assert "setting_0" not in shown and "hyperparameters" not in shown
    assert "subsample" in shown and "booster_config.tree_train_param.max_depth" in shown
    assert "rows of unset values or of plugin metadata the params restate not shown (--all shows them)" in shown
    everything = cli.tty("info", "boost", "2", "--all", columns=250).stdout
    assert "setting_0" in everything and "model.hyperparameters.setting_0" in everything

"""One format for recorded values everywhere a person reads them (modelstore_core.display): piped
lines, terminal tables, compare, diff, info; ``--json`` keeps every value as recorded."""

from __future__ import annotations

import json

from modelstore_core import ModelStore
from modelstore_core.protocol import keys

PARAMS = {"max_depth": None, "enable_categorical": False, "missing": "nan", "lr": 0.123456789}


def plant_model_metadata(root, domain: str, version: int, model: dict) -> None:
    """What a flavor plugin records under ``model``, written into a stored record (as an older writer did)."""
    store = ModelStore(root)
    key = keys.version_key(domain, version)
    data, token = store.storage.read(key)
    doc = json.loads(data)
    doc["model"] = model
    assert store.storage.compare_and_swap(key, json.dumps(doc).encode(), token)


def test_values_read_the_same_piped_on_a_terminal_and_in_json_in_full(cli, files):
    store = ModelStore(cli.root, cache_dir=cli.tmp / "api-cache")
    store.upload("churn", files=[files["model.bin"]], params=PARAMS, metrics={"auc": 0.912345678}, tags={"team": "risk"})
    store.upload("churn", files=[files["config.json"]], params={**PARAMS, "lr": 0.2}, metrics={"auc": 0.9}, tags={"team": "risk"})
    plant_model_metadata(cli.root, "churn", 1, {"missing": {"float": "nan"}, "depth": 3})

    [second, first] = cli("ls", "churn").lines
    assert first[-1] == "enable_categorical=false,lr=0.123457,max_depth=null,missing=nan"  # params
    assert first[-2] == "auc=0.912346"  # metrics
    listed = json.loads(cli("ls", "churn", "--json").stdout)
    assert listed[1]["params"] == PARAMS and listed[1]["metrics"] == {"auc": 0.912345678}  # JSON: as recorded

    compared = {(row[0], row[1]): row[2:4] for row in cli("compare", "churn", "1", "2").lines}
    assert compared[("params", "lr")] == ["0.123457", "0.2"]
    assert compared[("params", "enable_categorical")] == ["false", "false"]
    assert compared[("metrics", "auc")] == ["0.912346", "0.9"]

    changed = {row[2]: row[3:] for row in cli("diff", "churn", "1", "2").lines}
    assert changed["params.lr"] == ["0.123457", "0.2"]
    assert changed["metrics.auc"] == ["0.912346", "0.9"]
    assert changed["model.missing"] == ["nan", ""]  # a non-finite float as stored ({"float": "nan"}) reads nan

    terminal = cli.tty("info", "churn", "1", "--all").stdout  # --all: the params left unset too
    rows = {cells[1].strip(): cells[2].strip() for line in terminal.splitlines() if len(cells := line.split("│")) == 4}
    assert rows["max_depth"] == "null" and rows["enable_categorical"] == "false" and rows["lr"] == "0.123457"
    assert rows["auc"] == "0.912346" and rows["model.missing"] == "nan"

    shown = cli.tty("compare", "churn", "1", "2").stdout
    assert "0.912346 ★" in shown and "0.912345678" not in shown


def test_values_that_read_the_same_short_are_shown_in_full(cli, files):
    store = ModelStore(cli.root, cache_dir=cli.tmp / "api-cache")
    store.upload("churn", files=[files["model.bin"]], metrics={"auc": 0.91234561})
    store.upload("churn", files=[files["config.json"]], metrics={"auc": 0.91234564})
    compared = {(row[0], row[1]): row[2:4] for row in cli("compare", "churn", "1", "2").lines}
    assert compared[("metrics", "auc")] == ["0.91234561", "0.91234564"]
    assert {row[2]: row[3:] for row in cli("diff", "churn", "1", "2").lines}["metrics.auc"] == ["0.91234561", "0.91234564"]

"""The experiment commands: ``upload --metric/--param``, ``compare``, ``env``."""

from __future__ import annotations

import json

from modelstore_core import ModelStore


def test_upload_records_metrics_and_params(cli, files):
    up = cli(
        "upload",
        "churn",
        files["model.bin"],
        "--metric",
        "auc=0.91",
        "--metric",
        "trees=120",
        "--param",
        "lr=0.1",
        "--param",
        "optimizer=adam",
        "--param",
        "early=true",
        "--param",
        "seed=null",
        "--json",
    )
    assert up.returncode == 0, up.stderr
    doc = json.loads(up.stdout)
    assert doc["metrics"] == {"auc": 0.91, "trees": 120}
    assert doc["params"] == {"lr": 0.1, "optimizer": "adam", "early": True, "seed": None}
    v = ModelStore(cli.root).info("churn", 1)
    assert v.metrics == {"auc": 0.91, "trees": 120.0}


def test_upload_refuses_bad_metrics_with_one_line(cli, files):
    for args, problem in (
        (("--metric", "auc"), "is not NAME=NUMBER"),
        (("--metric", "auc=high"), "is not NAME=NUMBER"),
        (("--metric", "loss=nan"), "finite numbers"),
        (("--metric", "val/loss=1"), "invalid metric name"),
        (("--param", "lr"), "is not NAME=VALUE"),
    ):
        result = cli("upload", "churn", files["model.bin"], *args)
        assert result.returncode != 0 and problem in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    assert ModelStore(cli.root).list_domains() == []

"""The experiment commands: ``upload --metric/--param``, ``compare``, ``env``."""

from __future__ import annotations

import json
import subprocess
import sys

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


HOSTILE = "\x1b[31mred\x1b[0m\nforged\trow\x9b2J\x07"


def _two_versions(cli, files):
    assert cli("upload", "churn", files["model.bin"], "--metric", "auc=0.81", "--metric", "rmse=3.5", "--param", "lr=0.1").returncode == 0
    assert (
        cli(
            "upload",
            "churn",
            files["config.json"],
            "--metric",
            "auc=0.91",
            "--metric",
            "rmse=3.9",
            "--param",
            "lr=0.2",
            "--tag",
            "team=risk",
        ).returncode
        == 0
    )
    assert cli("state", "set", "churn", "2", "production").returncode == 0


def test_compare_prints_one_table_with_the_best_values_marked(cli, files):
    _two_versions(cli, files)
    piped = cli("compare", "churn", "1", "2")
    assert piped.returncode == 0, piped.stderr
    rows = {(r[0], r[1]): r[2:] for r in piped.lines}
    assert rows[("metrics", "auc")] == ["0.81", "0.91", "2"] and rows[("metrics", "rmse")] == ["3.5", "3.9", "1"]
    assert rows[("params", "lr")] == ["0.1", "0.2", ""] and rows[("states", "states")] == ["", "production", ""]
    assert rows[("tags", "team")] == ["", "risk", ""]

    flipped = cli("compare", "churn", "1", "2", "--higher", "rmse", "--json")
    doc = json.loads(flipped.stdout)
    assert doc["versions"] == [1, 2]
    assert [(r["key"], r["direction"], r["best"]) for r in doc["sections"]["metrics"]] == [("auc", "higher", [2]), ("rmse", "higher", [2])]

    shown = cli.tty("compare", "churn", "1", "2")
    assert shown.returncode == 0
    assert "0.91 ★" in shown.stdout and "3.5 ★" in shown.stdout and "production" in shown.stdout

    missing = cli("compare", "churn", "1", "7")
    assert missing.returncode == 1 and "version 7" in missing.stderr and "Traceback" not in missing.stderr
    both = cli("compare", "churn", "1", "2", "--higher", "auc", "--lower", "auc")
    assert both.returncode == 2 and "both --higher and --lower" in both.stderr


def test_compare_and_info_escape_what_a_record_holds(cli, files):
    _two_versions(cli, files)
    from modelstore_core.testing.tamper_contract import edit_record

    store = ModelStore(cli.root)
    edit_record(
        store,
        "churn",
        1,
        lambda doc: doc.update(
            params={"note": HOSTILE},
            tags={"t": HOSTILE},
            signature={"format": "columns", "source": HOSTILE, "inputs": [{"name": HOSTILE, "dtype": "[bold]x"}]},
            data={"train": {"kind": "file", "name": HOSTILE, "sha256": "0" * 64, "bytes": 3}},
        ),
    )
    outputs = [cli(*args) for args in (("compare", "churn", "1", "2"), ("compare", "churn", "1", "2", "--json"), ("info", "churn", "1"))]
    outputs += [cli.tty("compare", "churn", "1", "2", "--all"), cli.tty("info", "churn", "1")]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert "\x1b[31m" not in result.stdout and "\x9b" not in result.stdout and "\x07" not in result.stdout
    assert len(outputs[0].stdout.splitlines()) == len(outputs[0].lines)  # no forged row
    assert all(len(row) == 5 for row in outputs[0].lines)  # no forged column
    assert "\\x1b[31mred" in outputs[3].stdout and "\\x1b[31mred" in outputs[4].stdout
    assert "input signature" in outputs[4].stdout and "[bold]x" in outputs[4].stdout

    edit_record(store, "churn", 2, lambda doc: doc.update(metrics={"<script>alert(1)</script>": 1}))
    corrupt = cli("compare", "churn", "1", "2")
    assert corrupt.returncode == 1 and "metrics.<script>" in corrupt.stderr and "Traceback" not in corrupt.stderr


def test_env_prints_a_requirements_file(cli, files):
    _two_versions(cli, files)
    printed = cli("env", "churn", "2")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0].startswith("# ") and lines[1].startswith("# Python ")
    # modelstore-core is installed from this checkout (`pip install -e .`): no index serves it.
    assert [line for line in lines if not line.startswith("#")] == []
    assert "#   modelstore-core==0.1.0  (installed from a local directory)" in lines
    pinned = cli("env", "churn", "2", "--include-local")
    assert [line for line in pinned.stdout.splitlines() if not line.startswith("#")] == ["modelstore-core==0.1.0"]
    doc = json.loads(cli("env", "churn", "--format", "json").stdout)
    recorded = {"name": "modelstore-core", "version": "0.1.0", "marker": None, "key": False, "installed_from": "directory"}
    assert doc["version"] == 2 and doc["requirements"] == [recorded]
    assert json.loads(cli("env", "churn", "--json").stdout) == doc
    check = cli("env", "churn", "2", "--check")
    assert check.returncode == 0 and check.stdout == ""

    from modelstore_core.testing.tamper_contract import edit_record

    edit_record(ModelStore(cli.root), "churn", 2, lambda doc: doc["dependencies"].update({"evil": "1\n--index-url http://x"}))
    refused = cli("env", "churn", "2")
    assert refused.returncode == 1 and "dependencies.evil" in refused.stderr and "--index-url" not in refused.stdout

    evil = "python_version>'3' --config-settings=--build-option=--evil"
    edit_record(ModelStore(cli.root), "churn", 1, lambda doc: doc["environment"]["markers"].update({"modelstore-core": evil}))
    refused = cli("env", "churn", "1")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "environment.markers.modelstore-core is not a plain PEP 508 marker" in refused.stderr


def test_pip_installs_the_file_env_prints(cli, files, tmp_path):
    # `modelstore env churn > requirements.txt && pip install -r requirements.txt`, where this
    # checkout's modelstore-core (installed with `-e .`) is not installed yet and no index has it.
    _two_versions(cli, files)
    path = tmp_path / "requirements.txt"
    dry_run = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-index", "-r", str(path)]
    path.write_text(cli("env", "churn").stdout)
    installed = subprocess.run(dry_run, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    path.write_text(cli("env", "churn", "--include-local").stdout)
    installed = subprocess.run(dry_run, capture_output=True, text=True)
    assert installed.returncode == 1 and "No matching distribution found for modelstore-core==0.1.0" in installed.stderr

"""The `copy` and `mirror` commands: summaries, JSON, and the exit status of a conflict."""

from __future__ import annotations

import json
import shutil


def test_cli_copy_and_mirror(cli, files, tmp_path):
    source, target = str(tmp_path / "a"), str(tmp_path / "b")
    cli("--store", source, "upload", "churn", str(files["model.bin"]))
    cli("--store", source, "upload", "churn", str(files["notes.txt"]))
    cli("--store", source, "state", "set", "churn", "1", "production")
    result = cli("copy", source, target, "churn@production", "--json")
    report = json.loads(result.stdout)
    assert report["copied"] == ["churn:1"] and report["states"] == ["churn@production=1"] and report["ok"]
    result = cli("mirror", source, target)
    assert "copied\tchurn:2" in result.stdout
    assert "OK: copied 0 versions, skipped 2" in cli("mirror", source, target).stderr


def test_cli_copy_conflict_exits_1(cli, files, tmp_path):
    source, target = str(tmp_path / "a"), str(tmp_path / "b")
    cli("--store", source, "upload", "churn", str(files["model.bin"]))
    cli("--store", target, "upload", "churn", str(files["notes.txt"]))
    result = cli("copy", source, target)
    assert result.returncode == 1
    assert "conflict\tchurn:1\tthe destination holds a different version under this number" in result.stdout
    assert "incomplete" in result.stderr


def test_cli_copy_of_a_missing_domain_is_an_error(cli, tmp_path):
    result = cli("copy", str(tmp_path / "a"), str(tmp_path / "b"), "nope")
    assert result.returncode == 1 and "domain 'nope' does not exist" in result.stderr


def test_cli_download_offline(cli, files, tmp_path):
    from modelstore_core import ModelStore

    cli("upload", "churn", str(files["model.bin"]))
    ModelStore(cli.root, cache_dir=cli.env["MODELSTORE_CACHE_DIR"]).load("churn")  # a local store's download caches nothing
    shutil.rmtree(cli.root)
    result = cli("download", "churn", "-o", str(tmp_path / "again"), env={"MODELSTORE_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "warning: offline: latest of 'churn' is version 1" in result.stderr
    assert (tmp_path / "again" / "model.bin").read_bytes() == files["model.bin"].read_bytes()

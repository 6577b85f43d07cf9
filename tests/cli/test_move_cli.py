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


def test_cli_copy_of_a_missing_domain_is_an_error(cli, files, tmp_path):
    cli("--store", str(tmp_path / "a"), "upload", "churn", str(files["model.bin"]))
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


def test_cli_mirror_refuses_a_missing_or_empty_source_before_deleting(cli, files, tmp_path):
    """`modelstore mirror ./srcc ./dst --delete` (a typo for ./src) must not empty ./dst."""
    source, target = tmp_path / "src", tmp_path / "dst"
    cli("--store", str(source), "upload", "churn", str(files["model.bin"]))
    assert cli("mirror", str(source), str(target)).returncode == 0
    for args in (["mirror", str(tmp_path / "srcc"), str(target), "--delete"], ["copy", str(tmp_path / "srcc"), str(target)]):
        result = cli(*args)
        assert result.returncode == 1 and f"the source store {(tmp_path / 'srcc').as_uri()} does not exist" in result.stderr
    (tmp_path / "empty").mkdir()
    result = cli("mirror", str(tmp_path / "empty"), str(target), "--delete")
    assert result.returncode == 1 and "holds no domains" in result.stderr and "--allow-empty-source" in result.stderr
    assert domains(cli, target) == ["churn"]
    result = cli("mirror", str(tmp_path / "empty"), str(target), "--delete", "--allow-empty-source")
    assert result.returncode == 0 and "deleted\tchurn" in result.stdout
    assert domains(cli, target) == []


def domains(cli, store) -> list[str]:
    return [line.split("\t")[0] for line in cli("--store", str(store), "ls").stdout.splitlines()]


def test_cli_mirror_of_a_state_with_prune(cli, files, tmp_path):
    source, target = str(tmp_path / "a"), str(tmp_path / "b")
    for name in ("model.bin", "notes.txt", "config.json"):
        cli("--store", source, "upload", "churn", str(files[name]))
    cli("--store", source, "state", "set", "churn", "1", "production")
    cli("mirror", source, target, "--state", "production")
    cli("--store", target, "state", "set", "churn", "1", "canary")
    cli("--store", source, "state", "set", "churn", "2", "production")
    kept = cli("mirror", source, target, "--state", "production", "--prune").lines
    assert kept == [["copied", "churn:2"], ["state", "churn@production=2"], ["kept", "churn:1"]]
    cli("--store", target, "state", "rm", "churn", "canary")
    cli("--store", source, "state", "set", "churn", "3", "production")
    pruned = cli("mirror", source, target, "--state", "production", "--prune")
    assert pruned.lines == [["copied", "churn:3"], ["state", "churn@production=3"], ["deleted", "churn:1"], ["deleted", "churn:2"]]
    assert "2 deleted" in pruned.stderr
    assert [row[0] for row in cli("--store", target, "ls", "churn").lines] == ["3"]

    refused = cli("mirror", source, target, "--prune")
    assert refused.returncode == 2 and "--prune deletes the versions the mirrored states moved off: give --state STATE" in refused.stderr

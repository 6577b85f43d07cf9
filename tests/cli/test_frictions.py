"""The frictions a new user hit: whole-domain delete, downloads that never overwrite silently,
NaN in diffs."""

from __future__ import annotations

import json
import re

import pytest
from cli_helpers import one_line_error

from modelstore_core import ModelStore, TargetExistsError, UsageError


def test_delete_all_removes_the_domain(cli, files):
    for _ in range(2):
        cli("upload", "raw", files["model.bin"])
    cli("upload", "other", files["model.bin"])
    refused = cli("delete", "raw")
    assert refused.returncode == 2 and "VERSION" in refused.stderr and "--all" in refused.stderr
    result = cli("delete", "raw", "--all", "--yes", "--json")
    assert result.returncode == 0 and json.loads(result.stdout) == {"domain": "raw", "deleted": True, "versions": [1, 2]}
    assert [row["domain"] for row in json.loads(cli("ls", "--json").stdout)] == ["other"]
    again = cli("delete", "raw", "--all", "--yes")
    assert again.returncode == 1 and "does not exist" in again.stderr


def test_download_refuses_to_overwrite_without_force(cli, files, tmp_path):
    cli("upload", "d", files["model.bin"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.bin").write_bytes(b"precious")
    refused = cli("download", "d", "-o", out)
    assert refused.returncode == 1 and "model.bin" in refused.stderr and "--force" in refused.stderr
    assert (out / "model.bin").read_bytes() == b"precious"
    assert cli("download", "d", "-o", out, "--force").returncode == 0
    assert (out / "model.bin").read_bytes() == files["model.bin"].read_bytes()


#: a Python keyword argument in a message: `overwrite=True`, `key=`, `trusted_keys=[]`
KEYWORD_ARGUMENT = re.compile(r"\b[a-z][a-z_]*=(?!\w)|\b[a-z][a-z_]*=(True|False|\[)")


def test_errors_name_the_flags_not_the_keyword_arguments(cli, files, tmp_path):
    cli("upload", "d", files["model.bin"])
    cli("state", "set", "d", "1", "production")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.bin").write_bytes(b"precious")
    (tmp_path / "empty").mkdir()
    errors = {
        "download": one_line_error(cli("download", "d", "-o", tmp_path / "out")),
        "mirror": one_line_error(cli("mirror", str(tmp_path / "empty"), str(cli.root), "--delete")),
        "sign": one_line_error(cli("sign", "d", "1", env={"MODELSTORE_SIGNING_KEY": ""})),
        "info": one_line_error(cli("info", "d", "1", "--state", "production")),
    }
    assert errors["download"].endswith("choose an empty directory or pass --force to replace them")
    assert errors["mirror"].endswith("if it is meant to be empty, pass --allow-empty-source")
    assert errors["sign"].startswith("Error: no signing key: pass --key PATH (or the NAME of a key `modelstore keys create NAME` made)")
    assert errors["info"] == "Error: got VERSION 1 and --state production: a version is named by one of them, not both"
    assert {name: KEYWORD_ARGUMENT.findall(error) for name, error in errors.items() if KEYWORD_ARGUMENT.search(error)} == {}

    # The Python API keeps its own words.
    store = ModelStore(cli.root, cache_dir=tmp_path / "api-cache")
    with pytest.raises(TargetExistsError, match="pass overwrite=True to replace them"):
        store.download("d", to=tmp_path / "out")
    with pytest.raises(UsageError, match="pass allow_empty_source=True$"):
        ModelStore(tmp_path / "empty").mirror_to(store, delete=True)
    with pytest.raises(UsageError, match="got version=1 and state='production'"):
        store.info("d", 1, state="production")


def test_a_mistyped_domain_or_state_gets_the_closest_names(cli, files):
    cli("upload", "fraud", files["model.bin"])
    cli("upload", "churn", files["model.bin"])
    cli("state", "set", "fraud", "1", "production")
    assert one_line_error(cli("ls", "frud")) == (
        "Error: domain 'frud' does not exist in this store (did you mean 'fraud'?); `modelstore ls` lists the domains"
    )
    assert "(did you mean 'fraud'?)" in one_line_error(cli("info", "frud"))
    assert one_line_error(cli("info", "fraud", "--state", "prodution")) == (
        "Error: domain 'fraud' has no state 'prodution' (did you mean 'production'?); `modelstore state ls fraud` lists its states"
    )
    assert "did you mean" not in one_line_error(cli("ls", "zzzzzz"))


def test_a_reading_command_on_a_store_that_does_not_exist_says_so(cli, files, tmp_path):
    typo = tmp_path / "modles"
    for args in (["ls"], ["ls", "churn"], ["info", "churn"], ["verify"], ["download", "churn"]):
        assert one_line_error(cli("--store", typo, *args)) == (
            f"Error: the store {typo.as_uri()} (--store) does not exist: a typo in its path? Nothing is stored there yet;"
            " a command that writes (`modelstore upload`) creates it"
        )
    assert "($MODELSTORE_URL) does not exist" in one_line_error(cli("ls", env={"MODELSTORE_URL": str(typo)}))
    assert not typo.exists()
    assert cli("--store", typo, "upload", "churn", files["model.bin"]).returncode == 0  # writing creates it
    assert cli("--store", typo, "ls").lines[0][:2] == ["churn", "1"]
    # The per-user store nobody named is only empty until the first upload.
    default = cli("ls", env={"MODELSTORE_URL": "", "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert (default.returncode, default.stdout) == (0, "")


def test_diff_does_not_report_an_unchanged_nan(cli, files):
    # An older writer could store NaN in plugin metadata (JSON's NaN); it is not a change.
    cli("upload", "d", files["model.bin"])
    cli("upload", "d", files["config.json"])
    store = ModelStore(cli.root)
    for n in (1, 2):
        key = f"domains/d/versions/{n:010d}.json"
        data, token = store.storage.read(key)
        doc = json.loads(data)
        doc["model"] = {"missing": float("nan"), "depth": n}
        assert store.storage.compare_and_swap(key, json.dumps(doc).encode(), token)
    result = json.loads(cli("diff", "d", "1", "2", "--json").stdout)
    assert result["sections"]["model"] == [{"key": "model.depth", "change": "changed", "old": 1, "new": 2}]

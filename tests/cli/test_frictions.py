"""The frictions a new user hit: whole-domain delete, downloads that never overwrite silently,
NaN in diffs."""

from __future__ import annotations

import json

from modelstore_core import ModelStore


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

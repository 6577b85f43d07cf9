"""In-process CLI checks of the frictions a new user hit: whole-domain delete, downloads that never
overwrite silently, NaN in diffs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from modelstore_core import ModelStore
from modelstore_core.cli import cli


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()
    env = {"MODELSTORE_URL": str(tmp_path / "store"), "MODELSTORE_CACHE_DIR": str(tmp_path / "cache")}

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return invoke


def test_delete_all_removes_the_domain(run, tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    for _ in range(2):
        run("upload", "raw", str(model))
    run("upload", "other", str(model))
    refused = run("delete", "raw", code=2)
    assert "VERSION" in refused.output and "--all" in refused.output
    result = run("delete", "raw", "--all", "--yes", "--json")
    assert json.loads(result.output) == {"domain": "raw", "deleted": True, "versions": [1, 2]}
    assert [row["domain"] for row in json.loads(run("ls", "--json").output)] == ["other"]
    assert "does not exist" in run("delete", "raw", "--all", "--yes", code=1).output


def test_download_refuses_to_overwrite_without_force(run, tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"stored")
    run("upload", "d", str(model))
    out = tmp_path / "out"
    out.mkdir()
    (out / "m.bin").write_bytes(b"precious")
    refused = run("download", "d", "-o", str(out), code=1)
    assert "m.bin" in refused.output and "--force" in refused.output
    assert (out / "m.bin").read_bytes() == b"precious"
    run("download", "d", "-o", str(out), "--force")
    assert (out / "m.bin").read_bytes() == b"stored"


def test_diff_does_not_report_an_unchanged_nan(run, tmp_path):
    # An older writer could store NaN in plugin metadata (JSON's NaN); it is not a change.
    store = ModelStore(tmp_path / "store")
    model = tmp_path / "m.bin"
    for content in (b"a", b"b"):
        model.write_bytes(content)
        store.upload("d", files=[model])
    for n in (1, 2):
        key = f"domains/d/versions/{n:010d}.json"
        data, token = store.storage.read(key)
        doc = json.loads(data)
        doc["model"] = {"missing": float("nan"), "depth": n}
        assert store.storage.compare_and_swap(key, json.dumps(doc).encode(), token)
    result = json.loads(run("diff", "d", "1", "2", "--json").output)
    assert result["sections"]["model"] == [{"key": "model.depth", "change": "changed", "old": 1, "new": 2}]

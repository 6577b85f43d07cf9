"""The `modelstore` command against an s3:// store on moto's server (in-process, through click's
runner: the console script and terminals are tested by the core's CLI tests)."""

from __future__ import annotations

import json
import os
import traceback
import warnings
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from modelstore_core.cli import main


class EntryPoint:
    """What click's runner invokes (it calls ``.main(args=...)``): the console script's ``main()``."""

    @staticmethod
    def main(args, **_) -> None:
        main(list(args))


@pytest.fixture
def modelstore(moto_server, s3_url, tmp_path):
    """Run the command, the store given by --store (or $MODELSTORE_URL); the process env points at moto."""
    env = {"MODELSTORE_CACHE_DIR": str(tmp_path / "cache"), "MODELSTORE_URL": None}

    def run(*args: str, store: str | None = s3_url, check: bool = True) -> SimpleNamespace:
        cmd = [*(["--store", store] if store else []), *args]
        with warnings.catch_warnings():  # main() replaces warnings.showwarning
            result = CliRunner().invoke(EntryPoint, cmd, env=env, prog_name="modelstore")
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += "".join(traceback.format_exception(*result.exc_info))  # what the interpreter prints
        result = SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=stderr)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run


def test_cli_round_trip_on_s3(modelstore, tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(os.urandom(20_000))
    assert modelstore("upload", "churn", str(model), "--tag", "team=risk").stdout == "1\n"  # piped: the number only
    model.write_bytes(os.urandom(20_000))
    assert modelstore("upload", "churn", str(model)).stdout == "2\n"

    assert modelstore("ls").stdout.split("\t")[:3] == ["churn", "2", "2"]
    rows = json.loads(modelstore("--json", "ls", "churn").stdout)
    assert [(r["version"], r["tags"]) for r in rows] == [(2, {}), (1, {"team": "risk"})]

    modelstore("state", "set", "churn", "1", "production")
    assert json.loads(modelstore("--json", "info", "churn", "--state", "production").stdout)["version"] == 1
    out = tmp_path / "out"
    assert modelstore("download", "churn", "--state", "production", "-o", str(out)).stdout.strip() == str(out)
    assert (out / "model.onnx").stat().st_size == 20_000

    assert modelstore("verify").returncode == 0
    modelstore("delete", "churn", "2", "--yes")
    assert json.loads(modelstore("--json", "ls", "churn").stdout)[0]["version"] == 1
    report = json.loads(modelstore("--json", "gc", "--apply").stdout)  # the deleted version's upload committed: gc reads its record
    assert len(report["objects"]) == 1  # version 2's file


def test_cli_errors_on_s3_are_one_line(modelstore, moto_server):
    missing = modelstore("ls", "nope", check=False)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "nope" in missing.stderr
    assert "Traceback" not in missing.stderr

    no_bucket = modelstore("ls", store="s3://no-such-bucket/x", check=False)
    assert no_bucket.returncode == 1 and no_bucket.stderr.count("\n") == 1, no_bucket.stderr
    assert "no-such-bucket" in no_bucket.stderr and "Traceback" not in no_bucket.stderr
    assert moto_server.env["AWS_SECRET_ACCESS_KEY"] not in no_bucket.stderr

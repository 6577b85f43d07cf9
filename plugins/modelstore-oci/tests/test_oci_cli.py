"""``modelstore push`` and ``modelstore pull`` from a shell."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import open_store


def modelstore(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelstore_core", *args], capture_output=True, text=True, timeout=300, check=False)


def test_push_and_pull_from_the_command_line(tmp_path, repo):
    (tmp_path / "model.bin").write_bytes(b"weights" * 50)
    store = open_store(tmp_path, "a")
    store.upload("churn", files=[tmp_path / "model.bin"])
    store.upload("churn", files=[tmp_path / "model.bin"], tags={"stage": "candidate"})
    store.set_state("churn", 1, "production")

    pushed = modelstore("push", "churn@production", f"{repo}:prod", "--plain-http", "--store", str(tmp_path / "a"))
    assert pushed.returncode == 0, pushed.stderr
    pinned = pushed.stdout.strip()  # piped: the pinned reference alone
    assert pinned.startswith(f"{repo}:prod@sha256:")

    pulled = modelstore("pull", pinned, "--plain-http", "--store", str(tmp_path / "b"), "--json")
    assert pulled.returncode == 0, pulled.stderr
    answer = json.loads(pulled.stdout)
    assert (answer["domain"], answer["version"]) == ("churn", 1)
    assert answer["pulled_from"]["ref"] == pinned

    latest = modelstore("push", "churn", repo, "--plain-http", "--store", str(tmp_path / "a"), "--json")
    assert json.loads(latest.stdout)["version"] == 2  # latest by default, tagged with its number
    assert modelstore("pull", f"{repo}:2", "--plain-http", "--store", str(tmp_path / "b")).stdout.split() == ["churn", "2"]

    failed = modelstore("pull", f"{repo}:nope", "--plain-http", "--store", str(tmp_path / "b"))
    assert failed.returncode == 1 and "404" in failed.stderr and "Traceback" not in failed.stderr

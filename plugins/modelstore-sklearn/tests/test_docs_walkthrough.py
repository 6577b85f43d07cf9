"""The "Experiment to production" walkthrough of docs/experiments.md, run as it is written: its Python
block in a fresh interpreter, then each command of its shell block, in one directory."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from modelstore_core.testing.faults import HANG_TIMEOUT

WALKTHROUGH = Path(__file__).resolve().parents[3] / "docs" / "experiments.md"
SCRIPT = Path(sys.executable).parent / "modelstore"


def block(kind: str) -> str:
    """The fenced block right after ``<!-- walkthrough:KIND -->`` in docs/experiments.md."""
    match = re.search(rf"<!-- walkthrough:{kind} -->\s*```\w*\n(.*?)```", WALKTHROUGH.read_text(), re.S)
    assert match, f"docs/experiments.md has no walkthrough:{kind} block"
    return match.group(1)


def test_the_walkthrough_runs(tmp_path):
    env = {**os.environ, "MODELSTORE_URL": str(tmp_path / "models"), "MODELSTORE_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("MODELSTORE_DISABLE_PLUGINS", None)
    command = [sys.executable, "-c", block("python")]
    python = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert python.returncode == 0, python.stderr
    assert "scikit-learn==" in python.stdout and "skops==" in python.stdout  # the requirements it printed
    assert "warning" not in python.stderr.lower()

    commands = [line for line in block("shell").splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands
    for line in commands:
        args = shlex.split(line, comments=True)
        assert args[0] == "modelstore", line
        result = subprocess.run([str(SCRIPT), *args[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=HANG_TIMEOUT)
        assert result.returncode == 0, f"{line}\n{result.stderr}"
        assert result.stdout or "--check" in args, line  # --check prints nothing when nothing differs

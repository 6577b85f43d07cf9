"""The "Experiment to production" walkthrough of docs/experiments.md, run as it is written: its Python
block in a fresh interpreter that can import only what the README's first command installs, then
each command of its shell block, in one directory."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from modelstore_core.testing.faults import HANG_TIMEOUT

WALKTHROUGH = Path(__file__).resolve().parents[3] / "docs" / "experiments.md"
SCRIPT = Path(sys.executable).parent / "modelstore"
#: what `pip install -e . -e "plugins/modelstore-sklearn[sklearn]"` (the README's first command) asks for
README_INSTALLS = ("modelstore-core", "modelstore-sklearn[sklearn]")
#: runs a block with every top-level module of $REFUSED unimportable, as if not installed
GUARDED = """
import importlib.abc, os, sys
refused = set(os.environ["REFUSED"].split(","))
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in refused:
            raise ModuleNotFoundError(f"No module named {name!r} (the README's first command does not install it)", name=name)
sys.meta_path.insert(0, NotInstalled())
exec(compile(sys.argv[1], "docs/experiments.md", "exec"))
"""


def installed_by(requirements: tuple[str, ...]) -> set[str]:
    """The distributions pip installs for ``requirements``: each, with what it requires (and its
    extras require), recursively, as installed here."""
    found: set[tuple[str, frozenset[str]]] = set()
    pending = [Requirement(r) for r in requirements]
    while pending:
        requirement = pending.pop()
        name, extras = canonicalize_name(requirement.name), frozenset(requirement.extras)
        if (name, extras) in found:
            continue
        found.add((name, extras))
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:  # required only on other platforms
            continue
        for line in map(Requirement, requires):
            if line.marker is None or any(line.marker.evaluate({"extra": extra}) for extra in extras | {""}):
                pending.append(line)
    return {name for name, _ in found}


def not_installed_by_the_readme() -> set[str]:
    """Top-level modules installed here (for the tests) that the README's first command does not install."""
    wanted = installed_by(README_INSTALLS)
    return {
        module
        for module, distributions in metadata.packages_distributions().items()
        if not any(canonicalize_name(d) in wanted for d in distributions)
    }


def block(kind: str) -> str:
    """The fenced block right after ``<!-- walkthrough:KIND -->`` in docs/experiments.md."""
    match = re.search(rf"<!-- walkthrough:{kind} -->\s*```\w*\n(.*?)```", WALKTHROUGH.read_text(), re.S)
    assert match, f"docs/experiments.md has no walkthrough:{kind} block"
    return match.group(1)


def test_the_walkthrough_runs(tmp_path):
    env = {**os.environ, "MODELSTORE_URL": str(tmp_path / "models"), "MODELSTORE_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("MODELSTORE_DISABLE_PLUGINS", None)
    refused = not_installed_by_the_readme()
    assert {"pandas", "pytest"} <= refused  # what the test extra installs besides
    guarded = {**env, "REFUSED": ",".join(sorted(refused))}
    python = subprocess.run(
        [sys.executable, "-c", GUARDED, block("python")], cwd=tmp_path, env=guarded, capture_output=True, text=True, timeout=HANG_TIMEOUT
    )
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

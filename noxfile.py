"""Test sessions: the core, then one isolated venv per plugin (core + that plugin + its test extra)."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"  # plain pip: it finds the CPU torch wheel this machine ships
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())


@nox.session
def tests(session: nox.Session) -> None:
    """The core: storage protocol, local backend, metadata, CLI, conformance kit."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests", "--ignore=tests/core_only", *session.posargs)


@nox.session
def core_only(session: nox.Session) -> None:
    """Only the core installed: framework models get the error that names the plugin to install."""
    session.install("-e", ".[test]", "scikit-learn")
    session.run("pytest", "tests/core_only", *session.posargs)


@nox.session
@nox.parametrize("plugin", PLUGINS, ids=PLUGINS)
def plugin(session: nox.Session, plugin: str) -> None:
    """One plugin in its own venv: the core, the plugin with its ``test`` extra, nothing else."""
    session.install("-e", ".[test]", "-e", f"plugins/{plugin}[test]")
    session.run("pytest", f"plugins/{plugin}/tests", *session.posargs)

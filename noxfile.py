"""Test sessions: the core, then one isolated venv per plugin (core + that plugin + its test extra).

Venvs are made by uv (seconds, from its cache) and made afresh each run: an isolated venv per
plugin is what checks that each plugin declares its own dependencies, and with uv a fresh one
costs little. ``nox -R`` reuses them for the inner loop.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nox
import tomllib  # Python 3.11+: nox runs on the developer's interpreter

nox.options.default_venv_backend = "uv|venv"  # venv + pip where uv is not installed
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())

# uv does not read pip's configuration: hand it the directory with this machine's CPU torch wheel.
FIND_LINKS = os.environ.get("UV_FIND_LINKS") or os.environ.get("PIP_FIND_LINKS") or "/opt/wheels"
os.environ["UV_FIND_LINKS"] = FIND_LINKS
os.environ.setdefault("PIP_FIND_LINKS", FIND_LINKS)  # the same for the venv + pip fallback

# A session starts many interpreters (children that import torch or transformers, workers, servers):
# they write bytecode into the session's venv, so that only the first compiles what it imports.
# With PYTHONDONTWRITEBYTECODE=1 inherited (some shells and CI images set it), every child compiled
# torch afresh: importing it cost 4 to 6 CPU seconds instead of 2, transformers 15 instead of 5.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# torch must be the local CPU build: PyPI's torch 2.13.0 pulls CUDA (gigabytes). With this
# constraint a missing wheel is a resolution error, never a CUDA download.
CONSTRAINTS = ROOT / ".ci" / "constraints.txt"


def install(session: nox.Session, *args: str) -> None:
    session.install("--constraint", str(CONSTRAINTS), *args)


@nox.session
def tests(session: nox.Session) -> None:
    """The core: storage protocol, local backend, metadata, CLI, conformance kit, signing."""
    install(session, "-e", ".[test,signing]")
    session.run("pytest", "tests", "--ignore=tests/core_only", "--ignore=tests/interop", *session.posargs)


@nox.session
def core_only(session: nox.Session) -> None:
    """Only the core installed: framework models get the error that names the plugin to install."""
    install(session, "-e", ".[test]", "scikit-learn")
    session.run("pytest", "tests/core_only", *session.posargs)


def local_dependencies(plugin: str) -> list[str]:
    """``-e plugins/<name>`` for each plugin of this repository that ``plugin`` depends on (no index
    serves them yet), recursively: modelstore-lightning needs modelstore-torch."""
    found: list[str] = []
    pending = [plugin]
    while pending:
        project = tomllib.loads((ROOT / "plugins" / pending.pop() / "pyproject.toml").read_text())["project"]
        for requirement in project.get("dependencies", []):
            name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
            if name not in found and name != plugin and (ROOT / "plugins" / name / "pyproject.toml").is_file():
                found.append(name)
                pending.append(name)
    return [arg for name in sorted(found) for arg in ("-e", f"plugins/{name}")]


def checkout_plugins_for_tests(plugin: str) -> list[str]:
    """Other plugins of this checkout that ``plugin``'s tests use (``[tool.modelstore] test-plugins``
    in its pyproject.toml): no package index serves them yet, so they are installed from here."""
    import tomllib  # Python 3.11+, which nox runs on here

    config = tomllib.loads((ROOT / "plugins" / plugin / "pyproject.toml").read_text())
    return config.get("tool", {}).get("modelstore", {}).get("test-plugins", [])


@nox.session
def interop(session: nox.Session) -> None:
    """Between backends: copies and mirrors between every pair of local, S3 (moto) and GCS
    (fake-gcs-server), and imports of stores written by the original modelstore (0.0.82), its
    models of each framework whose plugin the importer maps them to loaded back by that plugin.

    Needs both cloud plugins' test extras at once, so it is a session of its own rather than a
    plugin's. The legacy library goes into a directory of its own (``--target``): its console
    script is also called ``modelstore`` and would replace ours in the venv; the tests import it
    from there ($MODELSTORE_LEGACY_PATH).
    """
    needed = ("modelstore-s3", "modelstore-gcs", "modelstore-sklearn", "modelstore-xgboost")
    plugins = [arg for p in needed for arg in ("-e", f"plugins/{p}[test]")]
    # The legacy kinds the importer maps to these plugins: only their frameworks, not their test
    # extras (transformers' models need torch: the CPU build, by the constraints).
    mapped = ("lightgbm", "onnx", "prophet", "statsmodels", "transformers")
    plugins += [arg for name in mapped for arg in ("-e", f"plugins/modelstore-{name}[{name}]")]
    install(session, "-e", ".[test]", *plugins, "torch")
    legacy = Path(session.create_tmp()) / "legacy-modelstore"
    session.install("--target", str(legacy), "modelstore==0.0.82")
    session.run("pytest", "tests/interop", *session.posargs, env={"MODELSTORE_LEGACY_PATH": str(legacy)})


@nox.session
@nox.parametrize("plugin", PLUGINS, ids=PLUGINS)
def plugin(session: nox.Session, plugin: str) -> None:
    """One plugin in its own venv: the core, the plugin with its ``test`` extra, nothing else but
    the plugins of this checkout it depends on, or its tests use (no index serves them yet)."""
    others = [arg for name in checkout_plugins_for_tests(plugin) for arg in ("-e", f"plugins/{name}")]
    install(session, "-e", ".[test]", "-e", f"plugins/{plugin}[test]", *local_dependencies(plugin), *others)
    session.run("pytest", f"plugins/{plugin}/tests", *session.posargs)

"""Real MLflow stores for the tests, written by MLflow itself in a virtual environment of its own.

The writer's environment holds the MLflow release installed here (``mlflow-skinny`` at the same
version, so the database schema is the one this side reads, with what the SQL store and the
flavors need) and the frameworks. It is made once per machine with uv (or venv + pip) under
``~/.cache/modelstore-tests`` ($MODELSTORE_TEST_CACHE), named after a hash of what it holds, and
reused while that matches. One child process then writes every store of the session
(``mlflow_writer.py``); the tests import copies of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CONSTRAINTS = HERE.parents[2] / ".ci" / "constraints.txt"


def writer_requirements() -> list[str]:
    """What the writer's environment holds: this side's MLflow release, the SQL store's libraries,
    what MLflow's flavors need to save, and the frameworks (torch: the CPU build, by the constraints)."""
    return [
        f"mlflow-skinny=={version('mlflow-skinny')}",
        "sqlalchemy",
        "alembic",
        "pandas",
        "scikit-learn",
        "skops",
        "cloudpickle",
        "xgboost-cpu",
        "torch==2.13.0",
        "onnx",
        "onnxruntime",
        "transformers",
        "tokenizers",
        "safetensors",
    ]


def _cache_root() -> Path:
    return Path(os.environ.get("MODELSTORE_TEST_CACHE") or Path.home() / ".cache" / "modelstore-tests")


@pytest.fixture(scope="session")
def writer_python() -> Path:
    """The Python of the writer's environment (made on first use, then reused)."""
    requirements = writer_requirements()
    constraints = CONSTRAINTS.read_text() if CONSTRAINTS.is_file() else ""
    key = hashlib.sha256(json.dumps([sys.version_info[:2], requirements, constraints]).encode()).hexdigest()[:16]
    home = _cache_root() / f"mlflow-writer-{key}"
    python = home / "bin" / "python"
    if (home / "complete").is_file():
        return python
    building = home.with_name(f"{home.name}.{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    constraint = ["--constraint", str(CONSTRAINTS)] if constraints else []
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(building)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(building / "bin" / "python"), *constraint, *requirements], check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
        subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "-q", *constraint, *requirements], check=True)
    (building / "complete").write_text("\n".join(requirements) + "\n")
    try:
        building.rename(home)  # another session may have finished first: theirs is as good
    except OSError:
        shutil.rmtree(building, ignore_errors=True)
    return python


@pytest.fixture(scope="session")
def mlflow_stores(writer_python, tmp_path_factory) -> Path:
    """The stores ``mlflow_writer.py`` wrote (``sqlite/``, ``file/``, ``expected.json``): never
    changed by a test (tests that edit one work on a copy, :func:`copy_store`)."""
    root = tmp_path_factory.mktemp("mlflow-stores")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "TOKENIZERS_PARALLELISM": "false"}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "PYTHONPATH"):
        env.pop(name, None)
    proc = subprocess.run(
        [str(writer_python), str(HERE / "mlflow_writer.py"), str(root)], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"the MLflow writer failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return root


@pytest.fixture(scope="session")
def expected(mlflow_stores) -> dict:
    return json.loads((mlflow_stores / "expected.json").read_text())


def copy_store(stores: Path, kind: str, where: Path) -> Path:
    """A copy of a written store (``sqlite`` or ``file``) at ``where``, with the artifact locations
    the database names moved along (they are absolute paths)."""
    shutil.copytree(stores / kind, where, symlinks=True)
    if kind == "sqlite":
        import sqlite3

        old, new = str(stores / kind), str(where)
        with sqlite3.connect(where / "mlflow.db") as db:
            for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri"), ("logged_models", "artifact_location")):
                db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))  # noqa: S608 - fixed names
            db.execute("UPDATE model_versions SET storage_location = replace(storage_location, ?, ?)", (old, new))
        db.close()
    else:  # a file store's meta.yaml files name absolute locations
        for meta in where.rglob("meta.yaml"):
            meta.write_text(meta.read_text().replace(str(stores / kind), str(where)))
    return where


def tree(directory: Path) -> dict[str, str]:
    """Every file below ``directory`` (links as links) -> its sha256: what a read-only import must leave as it was."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(directory))] = "link:" + os.readlink(path)
        elif path.is_file() and path.stat().st_size < (1 << 30):
            found[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_file():
            found[str(path.relative_to(directory))] = f"size:{path.stat().st_size}"
    return found

"""Shared by this plugin's tests (a plain module: imported by name, fixtures re-exported)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelstore_core import ModelStore
from modelstore_core.plugins import reset_plugins


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Never touch the real per-user store or cache; rediscover plugins around each test."""
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.setenv("MODELSTORE_URL", str(tmp_path / "user-store"))
    monkeypatch.delenv("MODELSTORE_DISABLE_PLUGINS", raising=False)
    reset_plugins()
    yield
    reset_plugins()


def open_store(tmp_path: Path, cache: str = "cache") -> ModelStore:
    """A new ModelStore object on the test's store (a fresh cache name gives a cold cache)."""
    return ModelStore(tmp_path / "store", cache_dir=tmp_path / cache)


def stored_objects(tmp_path: Path) -> set[Path]:
    return {p for p in (tmp_path / "store" / "objects").rglob("*") if p.is_file()}


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; raises with its output if it fails."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return proc

"""Fixtures of the CLI tests: the command against a store in tmp_path, and files to upload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_helpers import CLI


@pytest.fixture
def cli(tmp_path) -> CLI:
    return CLI(tmp_path)


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """A few small files to upload."""
    src = tmp_path / "src"
    src.mkdir()
    out = {}
    for name, content in {"model.bin": os.urandom(5000), "config.json": b'{"layers": 3}', "notes.txt": b"trained on v2 data"}.items():
        (src / name).write_bytes(content)
        out[name] = src / name
    return out

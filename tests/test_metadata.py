"""What each version records: runtime, dependencies, git state, tags; all JSON-safe, no local paths."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
from datetime import datetime, timezone

import numpy as np
import pytest

from modelstore_core import ModelStore
from modelstore_core.default_plugins.git import git_info, strip_credentials
from modelstore_core.hookspecs import hookimpl
from modelstore_core.jsonvalues import json_value, restored_value
from modelstore_core.plugins import get_plugins

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@x",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@x",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd, *args) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('train')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    commit = git(path, "rev-parse", "HEAD")
    git(path, "remote", "add", "origin", "https://alice:s3cr3t-token@git.example.com/team/models.git?x=1")
    return path, commit


@needs_git
def test_git_clean_dirty_detached(repo):
    path, commit = repo
    info = git_info(str(path))
    assert info == {"commit": commit, "branch": "main", "dirty": False, "remote": "https://git.example.com/team/models.git"}
    (path / "untracked.txt").write_text("not part of the model's code")
    assert git_info(str(path))["dirty"] is False  # untracked files do not make a tree dirty
    (path / "train.py").write_text("print('changed')\n")
    assert git_info(str(path))["dirty"] is True
    git(path, "checkout", "-q", "train.py")
    git(path, "checkout", "-q", "--detach")
    detached = git_info(str(path))
    assert detached["commit"] == commit and detached["branch"] is None and detached["dirty"] is False


@needs_git
def test_git_outside_a_repository_is_none(tmp_path):
    assert git_info(str(tmp_path)) is None


@needs_git
def test_git_repo_without_commits(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    assert git_info(str(tmp_path)) == {"commit": None, "branch": "main", "dirty": False, "remote": None}


def test_credentials_are_stripped_from_remotes():
    assert strip_credentials("https://user:pw@host:8443/a/b.git?token=1#x") == "https://host:8443/a/b.git"
    assert strip_credentials("ssh://git@host/repo.git") == "ssh://host/repo.git"
    assert strip_credentials("git@github.com:org/repo.git") == "git@github.com:org/repo.git"
    assert strip_credentials("/home/alice/repos/models") is None  # no local paths in metadata
    assert strip_credentials("../models.git") is None
    assert strip_credentials("file:///srv/git/models.git") is None


@needs_git
def test_upload_records_git_runtime_dependencies(repo, tmp_path, monkeypatch):
    path, commit = repo
    monkeypatch.chdir(path)
    (path / "train.py").write_text("dirty\n")
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    before = datetime.now(timezone.utc)
    v = store.upload("d", files=[model], tags={"team": "risk", "n": 3})
    after = datetime.now(timezone.utc)
    meta = store.info("d", v.version).metadata  # read back from storage
    assert meta["git"] == {"commit": commit, "branch": "main", "dirty": True, "remote": "https://git.example.com/team/models.git"}
    assert meta["runtime"]["python"] == platform.python_version()
    assert meta["dependencies"]["modelstore-core"]
    assert meta["tags"] == {"team": "risk", "n": 3}  # numbers stay numbers
    assert meta["flavor"]["name"] == "files" and meta["flavor"]["plugin"] == "modelstore-core"
    assert meta["files"] == [{"path": "m.bin", "size": 1, "sha256": v.files[0].sha256}]
    created = datetime.fromisoformat(meta["created"])
    assert created.tzinfo == timezone.utc and before <= created <= after
    assert created.microsecond == v.created.microsecond
    raw = store.storage.read(f"domains/d/versions/{v.version:010d}.json")[0].decode()
    assert str(tmp_path) not in raw and "s3cr3t" not in raw  # no local paths, no credentials


def test_json_value_converts_numpy_and_odd_values(tmp_path):
    value = {
        "i": np.int64(3),
        "f": np.float32(0.5),
        "b": np.bool_(True),
        "arr": np.arange(3),
        "nan": float("nan"),
        "path": tmp_path / "x" / "model.bin",
        "set": {2, 1},
        "tuple": (1, "a"),
        "bytes": b"\x01",
        "type": int,
        1: "int key",
        "obj": object(),
    }
    out = json_value(value)
    json.dumps(out, allow_nan=False)
    assert out["i"] == 3 and out["f"] == 0.5 and out["b"] is True and out["arr"] == [0, 1, 2]
    # One policy for every value written into a record: a non-finite float keeps its value as a marker.
    assert out["nan"] == {"float": "nan"} and math.isnan(restored_value(out)["nan"])
    assert out["path"] == "model.bin" and out["set"] == [1, 2] and out["1"] == "int key"
    assert out["type"] == "builtins.int" and out["obj"].startswith("<object")


class Contributor:
    """A throwaway plugin: registered for one test, like llm's tests do."""

    def __init__(self):
        self.asked: list[tuple] = []

    @hookimpl
    def modelstore_collect_metadata(self, model, flavor, domain):
        self.asked.append((model, flavor))
        return {"training": {"rows": np.int64(1000), "score": np.float64(0.93), "domain": domain}, "domain": "hijack"}


def test_plugins_contribute_metadata_merged_and_json_safe(store, tmp_path):
    pm = get_plugins().manager
    plugin = Contributor()
    pm.register(plugin, name="contributor")
    try:
        model = tmp_path / "m.bin"
        model.write_bytes(b"x")
        meta = store.upload("d", files=[model]).metadata
    finally:
        pm.unregister(plugin)
    assert meta["training"] == {"rows": 1000, "score": 0.93, "domain": "d"}
    assert meta["domain"] == "d"  # plugins cannot override the core's keys
    assert "runtime" in meta and "git" in meta
    # What the hookspec says a raw-files upload passes: no model, the core's own "files" flavor.
    [(model, flavor)] = plugin.asked
    assert model is None and (flavor.name, flavor.format, flavor.plugin) == ("files", "files", "modelstore-core")
    from modelstore_core.hookspecs import modelstore_collect_metadata

    assert 'Flavor(name="files", format="files", plugin="modelstore-core")' in " ".join(modelstore_collect_metadata.__doc__.split())

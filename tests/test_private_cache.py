"""The per-user cache is its user's alone, or it is not trusted: a view, proof, record or memory in a
directory that another user can write could be theirs (issue 22, item 4)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelstore_core import ModelStore
from modelstore_core.cache import COMPLETE, _file_state
from modelstore_core.cli import cli
from modelstore_core.errors import NotCachedError, UnsafeCacheError
from modelstore_core.protocol import keys

#: a uid that is not the test's (the tests run as root in CI, where os.chown can give files away)
OTHER = 4242


@pytest.fixture
def store(tmp_path) -> ModelStore:
    model = tmp_path / "model.bin"
    model.write_bytes(b"genuine weights" * 1000)
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.upload("d", files=[model])
    return store


def give_away(path: Path) -> None:
    """Make ``path`` another user's: chown where this process may (root), else a link to a directory
    of root's (what another user's directory looks like to an unprivileged one)."""
    if os.geteuid() == 0:
        os.chown(path, OTHER, OTHER)
    else:
        shutil.rmtree(path)
        path.symlink_to("/")


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_the_cache_is_created_for_its_user_alone(store, tmp_path):
    store.load("d")
    store.download("d", to=tmp_path / "out")  # keeps the record in records/
    found = modes(tmp_path / "cache")
    directories = {name for name in found if (tmp_path / "cache" / name).is_dir()}
    assert {"versions", "records", "resolved"} <= directories
    assert {name: found[name] for name in directories} == dict.fromkeys(directories, 0o700)
    json_files = [name for name in found if name.endswith(".json")]
    assert json_files and {found[name] for name in json_files} == {0o600}


def test_another_users_store_object_is_copied_read_only_not_linked(store, tmp_path):
    """A link to another user's object is a file they can rewrite under the cache's proof."""
    obj = store.storage.local_path(keys.object_key(store.latest("d").files[0].sha256))
    if os.geteuid() != 0:
        assert obj.stat().st_uid == os.geteuid()  # an unprivileged user cannot give a file away: their own is linked
        [path] = store.load("d")
        assert path.stat().st_ino == obj.stat().st_ino
        return
    os.chown(obj, OTHER, OTHER)
    [path] = store.load("d")
    assert path.stat().st_ino != obj.stat().st_ino and path.read_bytes() == obj.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o400 and path.stat().st_uid == os.geteuid()


@pytest.mark.parametrize("where", ["cache root", "versions", "the view"])
def test_a_cache_directory_others_can_write_is_refused(store, tmp_path, where):
    store.load("d")
    cache = tmp_path / "cache"
    directory = {"cache root": cache, "versions": cache / "versions", "the view": store.cache.version_dir(store.storage, "d", 1)}[where]
    directory.chmod(0o777)
    with pytest.raises(UnsafeCacheError, match=r"can be written by every user \(mode 777\).*modelstore cache clear") as err:
        store.load("d")
    assert err.value.path == str(directory)
    result = CliRunner().invoke(cli, ["cache", "clear", "--yes"], env={"MODELSTORE_CACHE_DIR": str(cache)})
    assert result.exit_code == 0, result.output
    assert store.load("d")[0].read_bytes().startswith(b"genuine") and stat.S_IMODE(cache.stat().st_mode) == 0o700


@pytest.mark.parametrize("where", ["cache root", "a store's views"])
def test_a_cache_directory_of_another_user_is_refused(store, tmp_path, where):
    store.load("d")
    cache = tmp_path / "cache"
    directory = cache if where == "cache root" else store.cache.version_dir(store.storage, "d", 1).parent.parent
    give_away(directory)
    with pytest.raises(UnsafeCacheError, match="belongs to another user"):
        store.load("d")


def plant(store: ModelStore, data: bytes) -> Path:
    """What another user with write access to the view would do: replace the file and forge a proof
    that vouches for the new file's state with the recorded sha256."""
    view = store.cache.version_dir(store.storage, "d", 1)
    entry = store.latest("d").files[0]
    (view / entry.path).unlink()
    (view / entry.path).write_bytes(data)
    proof = json.loads((view / COMPLETE).read_text())
    proof["verified"] = {entry.path: [*_file_state(view / entry.path), entry.sha256]}
    (view / COMPLETE).write_text(json.dumps(proof))
    return view


def test_a_planted_view_with_a_forged_proof_in_a_shared_cache_is_refused(store, tmp_path):
    store.load("d")
    for directory in [tmp_path / "cache", *(tmp_path / "cache").rglob("*")]:
        if directory.is_dir():
            directory.chmod(0o777)  # a shared cache directory
    plant(store, b"planted")
    with pytest.raises(UnsafeCacheError):
        store.load("d")


def test_a_forged_proof_file_others_can_write_is_not_trusted(store, tmp_path):
    store.load("d")
    view = plant(store, b"planted")
    (view / COMPLETE).chmod(0o666)
    [path] = store.load("d")  # the proof is ignored: the view is checked, found wrong and built again
    assert path.read_bytes().startswith(b"genuine")
    assert stat.S_IMODE((view / COMPLETE).stat().st_mode) == 0o600


def test_offline_memories_in_a_shared_directory_are_refused(store, tmp_path):
    store.load("d")
    store.download("d", to=tmp_path / "out")
    offline = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache", offline=True)
    assert offline.load("d", version=1)[0].read_bytes().startswith(b"genuine")
    resolved = next((tmp_path / "cache" / "resolved").iterdir())
    resolved.chmod(0o777)
    with pytest.raises(UnsafeCacheError, match="resolved"):
        offline.load("d")
    resolved.chmod(0o700)
    # A kept record that is not this user's alone is not used: the version is not cached, as far as offline loads go.
    shutil.rmtree(store.cache.version_dir(store.storage, "d", 1))
    record = tmp_path / "cache" / "records" / store.cache.store_id(store.url) / "d" / "1.json"
    assert offline.info("d", 1).version == 1
    record.chmod(0o666)
    with pytest.raises(NotCachedError):
        offline.info("d", 1)


HOLD_SCRATCH = """
import sys, time
from pathlib import Path
from modelstore_core.cache import Cache
with Cache(Path(sys.argv[1])).scratch("upload-") as where:
    (where / "model.bin").write_bytes(b"half a model")
    print(where, flush=True)
    sys.stdin.readline()  # held until told (or killed)
"""


def _hold_scratch(cache_root):
    """A child process inside ``Cache.scratch``; returns it and its scratch directory."""
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRATCH, str(cache_root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    return child, Path(child.stdout.readline().strip())


def test_a_killed_processes_scratch_directory_is_removed_and_one_in_use_is_not(tmp_path):
    """Scratch directories are held with flock: the next ``scratch`` of another process removes the
    one a SIGKILLed process left (its files with it) and leaves the one a live process holds."""
    from modelstore_core.cache import Cache

    root = tmp_path / "cache"
    live, held = _hold_scratch(root)
    killed, left = _hold_scratch(root)
    killed.kill()
    killed.wait()
    assert (left / "model.bin").exists() and (held / "model.bin").exists()
    cache = Cache(root)
    with cache.scratch("upload-") as mine:
        assert mine.parent == left.parent == held.parent == root / "scratch"
        assert stat.S_IMODE(mine.stat().st_mode) == 0o700 and list(mine.iterdir()) == []
        assert not left.exists()  # the killed process's, swept
        assert (held / "model.bin").read_bytes() == b"half a model"  # the live one's, kept
    assert not mine.exists()
    live.communicate("done\n", timeout=60)
    assert live.returncode == 0 and not held.exists()  # removed by its own process when done


def test_cache_clear_leaves_a_scratch_directory_in_use(tmp_path):
    from modelstore_core.cache import Cache

    root = tmp_path / "cache"
    live, held = _hold_scratch(root)
    killed, left = _hold_scratch(root)
    killed.kill()
    killed.wait()
    try:
        Cache(root).clear()
        assert not left.exists() and (held / "model.bin").exists()
    finally:
        live.communicate("done\n", timeout=60)
    assert live.returncode == 0


def test_a_cache_that_cannot_hold_scratch_directories_leaves_the_operation_a_temporary_one(tmp_path):
    """A cache root others can write (or one this process cannot write) is not used for scratch: an
    upload to a remote store still gets a private directory, in the system's temporary directory."""
    from modelstore_core.cache import Cache

    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    os.chmod(root, 0o777)
    with Cache(root).scratch("upload-") as where:
        assert root not in where.parents and where.is_dir() and stat.S_IMODE(where.stat().st_mode) == 0o700
    assert not where.exists()

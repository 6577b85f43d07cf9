"""The local store as untrusted input: links planted in it, files where directories belong,
interrupted deletes, concurrent loaders, uploads that could not round-trip, servers whose
conditional writes are not conditional. (The backend-independent tampering is the kit's
TamperContract, run in test_conformance_local.py.)"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelstore_core import (
    DanglingStateError,
    InvalidNameError,
    ModelStore,
    StorageError,
    UnsafeServerError,
    UsageError,
)
from modelstore_core.default_plugins.local_storage import LocalStorage
from modelstore_core.hookspecs import hookimpl
from modelstore_core.plugins import get_plugins
from modelstore_core.protocol import keys, probe
from modelstore_core.testing.faults import HANG_TIMEOUT


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(50_000))
    return path


@pytest.fixture
def outside(tmp_path) -> Path:
    """A directory outside the store with a file nobody may delete or overwrite."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "precious.json").write_text('{"keep": true}')
    return path


# --- links and files planted inside the store ------------------------------------------------------


def test_gc_never_walks_a_linked_tmp_or_uploads_directory(store, model, outside):
    store.upload("d", files=[model])
    root = Path(store.storage.root)
    shutil.rmtree(root / "uploads", ignore_errors=True)  # the upload's marker (kept a grace after it)
    os.symlink(outside, root / "uploads")
    (outside / "0123.1.otherhost.part").write_text("old")
    os.utime(outside / "0123.1.otherhost.part", (0, 0))
    report = store.gc()
    assert sorted(p.name for p in outside.iterdir()) == ["0123.1.otherhost.part", "precious.json"]
    assert report.temporary == [] and report.markers == []
    assert any("uploads/ is a symbolic link" in p for p in report.problems)
    shutil.rmtree(root / ".tmp", ignore_errors=True)
    os.symlink(outside, root / ".tmp")
    with pytest.raises(StorageError, match=r"\.tmp is a symbolic link"):
        store.gc()  # its own document would be written through the link: refused, naming it
    assert sorted(p.name for p in outside.iterdir()) == ["0123.1.otherhost.part", "precious.json"]
    with pytest.raises(StorageError, match="symbolic link"):
        store.upload("d", files=[model])  # its marker would go through the link
    assert sorted(p.name for p in outside.iterdir()) == ["0123.1.otherhost.part", "precious.json"]


def test_a_linked_objects_directory_is_refused_not_followed(store, model, outside):
    v = store.upload("d", files=[model])
    root = Path(store.storage.root)
    os.rename(root / "objects", outside / "objects")
    os.symlink(outside / "objects", root / "objects")
    with pytest.raises(StorageError, match="symbolic link"):
        store.load("d", version=v.version)
    with pytest.raises(StorageError, match="symbolic link"):
        store.upload("d", files=[model])
    assert (outside / "objects").is_dir()


def test_a_file_where_claims_belong_fails_at_once(store, model):
    store.upload("d", files=[model])
    root = Path(store.storage.root)
    claims = root / "domains" / "d" / "claims"
    for child in claims.iterdir():
        child.unlink()
    claims.rmdir()
    claims.write_text("not a directory")
    started = time.monotonic()
    with pytest.raises(StorageError, match="is a file where the store needs a directory"):
        store.upload("d", files=[model])
    assert time.monotonic() - started < 60  # not retried until some deadline (a bound on a hang, not a timing)
    assert [v.version for v in store.list_versions("d")] == [1]


def test_download_never_writes_through_a_link_in_the_target(store, model, tmp_path, outside):
    store.upload("d", files=[model], extras=[model])
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "extras")
    with pytest.raises(UsageError, match="leads outside"):
        store.download("d", to=target)
    assert sorted(p.name for p in outside.iterdir()) == ["precious.json"]


# --- interrupted deletes ----------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["states-cleared", "record-deleted"])
def test_a_delete_killed_at_any_step_leaves_no_state_on_a_deleted_version(tmp_path, model, step):
    root = tmp_path / "store"
    store = ModelStore(root, cache_dir=tmp_path / "cache")
    store.upload("d", files=[model])
    store.upload("d", files=[model])
    store.set_state("d", 1, "production")
    script = textwrap.dedent(
        """
        import os, signal, sys
        from modelstore_core import ModelStore
        from modelstore_core.protocol import commit

        def crash(step):
            if step == sys.argv[2]:
                os.kill(os.getpid(), signal.SIGKILL)

        commit.checkpoint = crash
        ModelStore(sys.argv[1]).delete("d", 1)
        """
    )
    result = subprocess.run([sys.executable, "-c", script, str(root), step], capture_output=True, timeout=HANG_TIMEOUT)
    assert result.returncode == -9, result.stderr
    states = store.states("d")
    assert "production" not in states
    versions = [v.version for v in store.list_versions("d")]
    assert versions == ([2] if step == "record-deleted" else [2, 1])
    assert store.verify().ok
    if step == "states-cleared":
        store.delete("d", 1)  # running it again finishes the job
    assert [v.version for v in store.list_versions("d")] == [2] and store.latest("d").version == 2


def test_a_state_left_by_another_tool_is_explained(store, model):
    store.upload("d", files=[model])
    store.set_state("d", 1, "production")
    store.storage.delete(keys.version_key("d", 1))
    with pytest.raises(DanglingStateError, match="points at version 1, which was deleted"):
        store.load("d", state="production")


# --- concurrent loaders -----------------------------------------------------------------------------


def test_concurrent_cold_loads_share_the_cache_without_deleting_each_others_views(tmp_path):
    root, cache = tmp_path / "store", tmp_path / "cache"
    files = []
    for i in range(6):
        files.append(tmp_path / f"f{i}.bin")
        files[-1].write_bytes(os.urandom(300_000))
    ModelStore(root, cache_dir=cache).upload("d", files=files)
    expected = {f.name: f.read_bytes().hex()[:64] for f in files}
    script = textwrap.dedent(
        """
        import json, os, sys, time
        from modelstore_core import ModelStore
        root, cache, sync, me, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])

        def meet(stage):  # every loader reaches this point before any goes on
            open(os.path.join(sync, stage + "-" + me), "w").close()
            while len([n for n in os.listdir(sync) if n.startswith(stage + "-")]) < count:
                time.sleep(0.001)

        meet("ready")  # imported and started: the loads below overlap
        seen = []
        for _ in range(5):
            paths = ModelStore(root, cache_dir=cache).load("d")
            seen.append({p.name: p.read_bytes().hex()[:64] for p in paths})
        meet("done")  # the other loaders are done: every returned path must still be there
        seen.append({p.name: p.read_bytes().hex()[:64] for p in paths})
        print(json.dumps(seen))
        """
    )
    sync = tmp_path / "sync"
    sync.mkdir()
    loaders = 4
    command = [sys.executable, "-c", script, str(root), str(cache), str(sync)]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [subprocess.Popen([*command, str(i), str(loaders)], **pipes) for i in range(loaders)]
    for proc in procs:
        out, err = proc.communicate(timeout=HANG_TIMEOUT)
        assert proc.returncode == 0, err
        assert all(seen == expected for seen in json.loads(out))


# --- uploads that could not round-trip --------------------------------------------------------------


def test_uploads_refuse_special_files_and_links_out(store, tmp_path, outside):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidNameError, match=f"{fifo} is a FIFO"):
        store.upload("d", files=[fifo])

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "weights.bin").write_bytes(b"w")
    os.symlink(tree / "weights.bin", tree / "alias.bin")  # inside: stored as the file it names
    v = store.upload("d", files=[tree])
    assert sorted(f.path for f in v.files) == ["tree/alias.bin", "tree/weights.bin"]
    assert {p.name: p.read_bytes() for p in store.load("d")} == {"alias.bin": b"w", "weights.bin": b"w"}

    cases = {
        "link-out": lambda d: os.symlink(outside / "precious.json", d / "stolen.json"),
        "dir-link": lambda d: os.symlink(outside, d / "more"),
        "loop": lambda d: os.symlink(d, d / "loop"),
        "fifo": lambda d: os.mkfifo(d / "fifo"),
        "socket": lambda d: socket.socket(socket.AF_UNIX).bind(str(d / "sock")),
        "broken": lambda d: os.symlink(d / "nothing", d / "broken"),
    }
    for name, plant in cases.items():
        bad = tmp_path / name
        bad.mkdir()
        (bad / "ok.bin").write_bytes(b"ok")
        plant(bad)
        with pytest.raises(InvalidNameError, match=str(bad)):
            store.upload("bad", files=[bad])
    assert "bad" not in store.list_domains()


def test_uploads_refuse_names_that_clash(store, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "m").write_bytes(b"file")
    (tmp_path / "b" / "m").mkdir(parents=True)
    (tmp_path / "b" / "m" / "x").write_bytes(b"inside")
    with pytest.raises(InvalidNameError, match="'m' is both a file and the directory of 'm/x'"):
        store.upload("d", files=[tmp_path / "a" / "m", tmp_path / "b" / "m"])
    (tmp_path / "extras").write_bytes(b"a file named extras")
    with pytest.raises(InvalidNameError, match="'extras' is both a file"):
        store.upload("d", files=[tmp_path / "extras"], extras=[tmp_path / "a" / "m"])
    for tag in ({"t": "line\nbreak"}, {"t": "\x1b[31mred"}, {"t": "bell\x07"}):
        with pytest.raises(InvalidNameError, match="control character"):
            store.upload("d", files=[tmp_path / "a" / "m"], tags=tag)
    assert store.list_domains() == []


# --- servers whose conditional writes are not conditional --------------------------------------------


class IgnoresConditions(LocalStorage):
    """A backend whose server ignores If-None-Match and If-Match, as s3rver does: every conditional
    write succeeds and overwrites."""

    conditional_writes_need_proof = True
    probes = 0

    def put_if_absent(self, key, data):
        if key.startswith("probes/"):
            type(self).probes += 1
        import io

        self.put(key, io.BytesIO(data))
        return True

    def compare_and_swap(self, key, data, token):
        import io

        self.put(key, io.BytesIO(data))
        return True


class HonoursConditions(LocalStorage):
    conditional_writes_need_proof = True
    probes = 0

    def put_if_absent(self, key, data):
        if key.startswith("probes/"):
            type(self).probes += 1
        return super().put_if_absent(key, data)


class Backends:
    @hookimpl
    def modelstore_store(self, url, scheme, options):
        kinds = {"ignoring": IgnoresConditions, "honouring": HonoursConditions}
        if scheme in kinds:
            return kinds[scheme](url.split("://", 1)[1])

    @hookimpl
    def modelstore_schemes(self):
        return ["ignoring", "honouring"]


@pytest.fixture
def backends():
    plugins = get_plugins()
    plugins.manager.register(Backends(), name="test-backends")
    probe.forget_verdicts()
    IgnoresConditions.probes = HonoursConditions.probes = 0
    yield
    probe.forget_verdicts()


def test_a_server_ignoring_conditional_writes_is_refused_before_anything_is_written(backends, tmp_path, model):
    store = ModelStore(f"ignoring://{tmp_path / 'bucket'}", cache_dir=tmp_path / "cache")
    with pytest.raises(UnsafeServerError, match="create-if-absent and compare-and-swap") as err:
        store.upload("d", files=[model])
    assert "single_writer=True" in str(err.value) and "nothing was written" in str(err.value)
    assert store.list_domains() == [] and list(store.storage.list("objects/")) == [] and list(store.storage.list("probes/")) == []
    for write in (lambda: store.set_state("d", 1, "p"), lambda: store.delete("d", 1)):
        with pytest.raises(UnsafeServerError):
            write()
    assert IgnoresConditions.probes == 2  # the verdict is kept for the process: one probe
    single = ModelStore(f"ignoring://{tmp_path / 'bucket'}", cache_dir=tmp_path / "cache", single_writer=True)
    with pytest.warns(RuntimeWarning, match="single_writer=True"):
        v = single.upload("d", files=[model])
    assert single.load("d", version=v.version)[0].read_bytes() == model.read_bytes()


def test_a_server_honouring_them_is_probed_once_per_process(backends, tmp_path, model):
    """A verdict vouches for the server process that gave it: another process probes again (another
    server may answer on the same endpoint by then), and nothing is remembered on disk."""
    url = f"honouring://{tmp_path / 'bucket'}"
    ModelStore(url, cache_dir=tmp_path / "cache").upload("d", files=[model])
    ModelStore(url, cache_dir=tmp_path / "cache").upload("d", files=[model])
    assert HonoursConditions.probes == 2  # two create-if-absent of one probe key, once
    probe.forget_verdicts()  # as a new process would
    ModelStore(url, cache_dir=tmp_path / "cache").upload("d", files=[model])
    assert HonoursConditions.probes == 4  # probed again
    assert not (tmp_path / "cache" / "servers").exists()


def test_a_dead_uploads_scratch_directory_is_collected(store, model, tmp_path):
    """Serializers write inside the store's .tmp (so staging can take their files without a copy);
    an upload's heartbeat touches its scratch directory, and gc removes one untouched for a grace
    (by the store's clock: the file system's mtimes)."""
    store.upload("d", files=[model])
    root = Path(store.storage.root)
    dead = root / ".tmp" / f"{'ab' * 16}.scratch"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "model.safetensors").write_bytes(b"x" * 100)
    os.utime(dead, (time.time() - 7200, time.time() - 7200))  # last touched two hours ago
    live = store.storage.scratch_dir()
    live.mkdir()
    report = store.gc(grace=3600)
    assert f".tmp/{dead.name}" in report.temporary and not dead.exists()
    assert live.exists()  # touched just now: its upload is alive

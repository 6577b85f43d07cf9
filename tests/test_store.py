"""The local store end to end: crashes at random moments, relocation, caches, argument errors."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from modelstore_core import (
    DomainNotFoundError,
    IntegrityError,
    InvalidNameError,
    ModelStore,
    StateNotFoundError,
    UsageError,
    VersionNotFoundError,
)
from modelstore_core.protocol import keys
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.store_contract import collect_now


def worker(store_root, *args, **popen):
    cmd = [sys.executable, "-m", "modelstore_core.testing.worker", str(store_root), *map(str, args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_kill_at_random_moments_of_a_large_upload(tmp_path, fast_heartbeat):
    """SIGKILL while a 64 MB file streams in: never a visible or broken version, always recoverable.

    Each kill lands at a random moment after the worker's first partial file appears, and the test
    checks it landed mid-upload: no version printed, none committed, and the partial upload (a part
    file, a marker or an unreferenced object) left in the store."""
    root = tmp_path / "store"
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    store = ModelStore(root, cache_dir=tmp_path / "cache")
    small = tmp_path / "small.bin"
    small.write_bytes(b"v1")
    store.upload("d", files=[small])
    rng = random.Random(1234)
    for i in range(5):
        start = tmp_path / f"start-{i}"
        before = set((root / ".tmp").glob("*.part"))
        proc = worker(root, "d", big, "--start-file", start)
        start.touch()
        deadline = time.monotonic() + HANG_TIMEOUT
        while not set((root / ".tmp").glob("*.part")) - before:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.05))  # a 64 MB upload takes ~0.25 s here from its first part file
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        assert (proc.returncode, out) == (-signal.SIGKILL, "")  # killed before it printed a version

        assert [v.version for v in store.list_versions("d")] == [1]  # nothing committed
        partial = collect_now(store, dry_run=True)
        assert partial.temporary or partial.markers or partial.objects  # what the killed upload left
        assert [p.read_bytes() for p in store.load("d", version=1)] == [b"v1"]
        assert store.verify().ok
    collect_now(store)
    assert store.verify().ok
    leftovers = [p for p in (root / ".tmp").iterdir()] if (root / ".tmp").exists() else []
    assert leftovers == []
    committed = {f.sha256 for v in store.list_versions("d") for f in v.files}
    assert {i.key.rsplit("/", 1)[1] for i in store.storage.list(keys.OBJECTS)} == committed
    assert store.upload("d", files=[big]).version == 2


def test_gc_leaves_a_live_upload_alone(tmp_path, fast_heartbeat):
    root = tmp_path / "store"
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(10_000))
    paused = tmp_path / "paused"
    proc = worker(root, "d", model, "--pause-at", "objects-stored", "--paused-file", paused)
    try:
        deadline = time.monotonic() + HANG_TIMEOUT
        while not paused.exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
            time.sleep(0.01)
        store = ModelStore(root, cache_dir=tmp_path / "cache")
        report = collect_now(store)  # a grace passed: the upload's heartbeat kept its marker fresh
        assert report.empty
        assert len(list(store.storage.list(keys.OBJECTS))) == 1
    finally:
        proc.kill()
        proc.wait()
    report = collect_now(store)
    assert len(report.objects) == 1 and len(report.markers) == 1
    assert list(store.storage.list("")) == []


def test_dry_run_gc_removes_nothing(tmp_path, fast_heartbeat):
    root = tmp_path / "store"
    model = tmp_path / "m.bin"
    model.write_bytes(b"abc")
    proc = worker(root, "d", model, "--crash-at", "objects-stored")
    proc.wait()
    store = ModelStore(root)
    report = collect_now(store, dry_run=True)
    assert len(report.objects) == 1 and report.bytes == 3 and report.dry_run
    assert len(list(store.storage.list(keys.OBJECTS))) == 1
    assert len(collect_now(store).objects) == 1
    assert list(store.storage.list(keys.OBJECTS)) == []


def test_a_moved_store_keeps_working(tmp_path):
    store = ModelStore(tmp_path / "here", cache_dir=tmp_path / "cache")
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights")
    store.upload("d", files=[model])
    store.set_state("d", 1, "production")
    shutil.move(tmp_path / "here", tmp_path / "there")
    moved = ModelStore((tmp_path / "there").as_uri(), cache_dir=tmp_path / "other-cache")
    assert moved.states("d") == {"production": 1}
    [path] = moved.load("d", state="production")
    assert path.read_bytes() == b"weights"
    assert moved.upload("d", files=[model]).version == 2


def test_a_local_load_links_the_read_only_object_and_any_edit_is_caught(store, tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"original")
    v = store.upload("d", files=[model])
    [path] = store.load("d")
    obj = store.storage.local_path(keys.object_key(v.files[0].sha256))
    assert os.stat(path).st_ino == os.stat(obj).st_ino  # no copy: a local load costs no disk space
    assert os.stat(path).st_mode & 0o222 == 0  # read-only: an unprivileged edit is refused
    if os.geteuid() != 0:
        with pytest.raises(PermissionError):
            path.write_bytes(b"edited by the user")
    else:
        path.write_bytes(b"edited by the user")  # root ignores modes: the edit reaches the store's object...
        with pytest.raises(IntegrityError, match="m.bin"):
            store.load("d")  # ...and is caught before anything is returned
        assert [p.problem for p in store.verify().problems] == ["corrupted"]
        store.verify(repair=True)
        store.upload("d", files=[model])  # the same bytes heal every version that names them
    [again] = store.load("d", version=1)
    assert again.read_bytes() == b"original" and store.verify().ok


def test_a_download_is_a_copy_the_caller_may_edit(store, tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"original")
    store.upload("d", files=[model])
    out = store.download("d", to=tmp_path / "out")
    (out / "m.bin").write_bytes(b"edited by the user")
    assert store.load("d")[0].read_bytes() == b"original" and store.verify().ok


def test_download_leaves_nothing_behind_on_corruption(store, tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"aaaa")
    b.write_bytes(b"bbbb")
    v = store.upload("d", files=[a, b])
    obj = store.storage.local_path(keys.object_key(v.files[1].sha256))
    obj.write_bytes(b"bbbX")
    out = tmp_path / "out"
    with pytest.raises(IntegrityError, match="b.bin"):
        store.download("d", to=out)
    assert list(out.iterdir()) == []


def test_argument_errors(store, tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    with pytest.raises(UsageError, match="neither model= nor files="):
        store.upload("d")
    with pytest.raises(UsageError, match="both model= and files="):
        store.upload("d", model=object(), files=[model])
    with pytest.raises(FileNotFoundError):
        store.upload("d", files=[tmp_path / "missing.bin"])
    assert store.list_domains() == []
    store.upload("d", files=model)  # a single path is accepted
    with pytest.raises(UsageError, match="not both"):
        store.load("d", version=1, state="production")
    with pytest.raises(DomainNotFoundError):
        store.states("nope")
    with pytest.raises(DomainNotFoundError):
        store.list_versions("nope")
    with pytest.raises(StateNotFoundError):
        store.remove_state("d", "production")
    with pytest.raises(VersionNotFoundError):
        store.delete("d", 5)
    store.delete("d", 1)
    with pytest.raises(VersionNotFoundError):
        store.latest("d")
    with pytest.raises(VersionNotFoundError):
        store.info("d", 1)


def test_reading_an_absent_store_creates_nothing(tmp_path):
    store = ModelStore(tmp_path / "nowhere")
    assert store.list_domains() == []
    with pytest.raises(DomainNotFoundError):
        store.latest("d")
    assert not (tmp_path / "nowhere").exists()


def test_stale_latest_hint_is_corrected_by_listing(store, tmp_path):
    model = tmp_path / "m.bin"
    for i in range(3):
        model.write_bytes(bytes([i]))
        store.upload("d", files=[model])
    # A writer that died between commit and hint update leaves the hint behind: readers still see v3.
    store.storage.delete(keys.latest_key("d"))
    assert store.latest("d").version == 3
    store.storage.put_if_absent(keys.latest_key("d"), b'{"version": 1}')
    assert store.latest("d").version == 3
    assert store.upload("d", files=[model]).version == 4


def test_list_versions_defers_metadata(store, tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    for _ in range(3):
        store.upload("d", files=[model], tags={"k": "v"})
    versions = store.list_versions("d")
    assert all(v._record is None for v in versions)
    assert versions[0].tags == {"k": "v"} and versions[0]._record is not None


def test_a_file_changed_during_upload_commits_nothing(store, tmp_path, monkeypatch, fast_heartbeat):
    from modelstore_core import SourceChangedError
    from modelstore_core.protocol import commit

    model = tmp_path / "m.bin"
    model.write_bytes(b"version one of the weights")

    def rewrite_after_staging(step):
        if step == "staged":
            model.write_bytes(b"a training job overwrote the file meanwhile")

    monkeypatch.setattr(commit, "checkpoint", rewrite_after_staging)
    with pytest.raises(SourceChangedError, match="m.bin"):
        store.upload("d", files=[model])
    monkeypatch.setattr(commit, "checkpoint", lambda step: None)
    assert store.list_domains() == []
    collect_now(store)
    assert list(store.storage.list("")) == []


def test_delete_domain_removes_it_from_listings_and_starts_numbering_again(store, tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights")
    for _ in range(3):
        store.upload("gone", files=[model])
    store.upload("kept", files=[model])
    store.set_state("gone", 2, "production")
    assert store.delete_domain("gone") == [1, 2, 3]
    assert store.list_domains() == ["kept"]
    with pytest.raises(DomainNotFoundError):
        store.list_versions("gone")
    with pytest.raises(DomainNotFoundError):
        store.delete_domain("gone")
    assert list(store.storage.list(keys.domain_prefix("gone"))) == []
    assert store.upload("gone", files=[model]).version == 1
    assert store.load("kept")[0].read_bytes() == b"weights"
    report = store.gc()
    assert report.objects == [] and store.verify().ok  # the object is still used by "kept" and the new "gone"


def test_download_never_overwrites_without_being_asked(store, tmp_path):
    from modelstore_core import TargetExistsError

    model = tmp_path / "m.bin"
    model.write_bytes(b"new weights")
    store.upload("d", files=[model])
    out = tmp_path / "out"
    out.mkdir()
    (out / "m.bin").write_bytes(b"my own file")
    with pytest.raises(TargetExistsError, match="m.bin") as err:
        store.download("d", to=out)
    assert isinstance(err.value, FileExistsError) and "overwrite=True" in str(err.value)
    assert (out / "m.bin").read_bytes() == b"my own file" and sorted(p.name for p in out.iterdir()) == ["m.bin"]
    store.download("d", to=out, overwrite=True)
    assert (out / "m.bin").read_bytes() == b"new weights"


def test_tags_keep_their_types_and_refuse_what_cannot_round_trip(store, tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    v = store.upload("d", files=[model], tags={"epochs": 3, "lr": 0.1, "final": True, "team": "risk"})
    assert store.info("d", v.version).tags == {"epochs": 3, "lr": 0.1, "final": True, "team": "risk"}
    for bad in ({"x": float("nan")}, {"x": [1]}, {"bad name": "v"}):
        with pytest.raises(InvalidNameError):
            store.upload("d", files=[model], tags=bad)


def test_a_repeated_load_trusts_an_unchanged_view_and_rehashes_a_touched_one(store, tmp_path, monkeypatch):
    from modelstore_core import cache as materialize

    files = []
    for name in ("a.bin", "b.bin"):
        files.append(tmp_path / name)
        files[-1].write_bytes(os.urandom(10_000))
    store.upload("d", files=files)
    store.load("d")
    hashed = []
    real = materialize.hash_file
    monkeypatch.setattr(materialize, "hash_file", lambda path, progress=None: hashed.append(path.name) or real(path, progress))
    fresh_store = ModelStore(store.storage.root, cache_dir=tmp_path / "cache")  # another process, same cache
    paths = fresh_store.load("d")
    assert hashed == []  # (device, inode, size, mtime, ctime) unchanged since verified: no read at all
    os.utime(paths[0])  # any change of state, even without new bytes, costs a hash again
    fresh_store.load("d")
    assert hashed == ["a.bin"]


@pytest.fixture(params=[False, True], ids=["stat-probes", "listing-from-a-key"])
def history(request, store, tmp_path):
    """40 versions of "d" (8 and 9 deleted), on the local store as it is (single keys probed) and
    as a store whose listings start at a key (the object-store path)."""
    from modelstore_core.testing.history import build_history

    store.storage.lists_from_a_key = request.param
    build_history(store, "d", 40, tmp_path)
    for n in (8, 9):
        store.delete("d", n)
    return store


def set_hint(store, version: int) -> None:
    store.storage.delete(keys.latest_key("d"))
    store.storage.put_if_absent(keys.latest_key("d"), f'{{"version": {version}}}'.encode())


def test_latest_from_a_right_lagging_or_leading_hint(history, tmp_path):
    assert history.latest("d").version == 40
    for hint in (40, 35, 1, 500):
        set_hint(history, hint)
        assert history.latest("d").version == 40
    history.delete("d", 40)
    assert history.latest("d").version == 39
    # A claim whose upload failed (no record), then a committed version above it, hint behind both.
    history.storage.put_if_absent(keys.claim_key("d", 41), b"{}")
    model = tmp_path / "m.bin"
    model.write_bytes(b"m")
    set_hint(history, 39)
    assert history.upload("d", files=[model]).version == 42
    set_hint(history, 39)
    assert history.latest("d").version == 42


def test_a_local_latest_reads_single_keys_not_the_whole_domain(store, tmp_path, monkeypatch):
    from modelstore_core.testing.history import build_history

    build_history(store, "d", 30, tmp_path)
    listed = []
    real = type(store.storage).list
    monkeypatch.setattr(type(store.storage), "list", lambda self, prefix, **kw: listed.append(prefix) or real(self, prefix, **kw))
    assert store.latest("d").version == 30
    assert [v.version for v in store.list_versions("d", limit=3)] == [30, 29, 28]
    assert store.states("d") == {}  # the domain exists: its hint says so
    assert listed == []


@pytest.mark.parametrize("limit", [1, 3, 31, 38, 39, 1000])
def test_the_newest_versions_page_from_the_end(history, limit):
    everything = [v.version for v in history.list_versions("d")]
    assert everything == [n for n in range(40, 0, -1) if n not in (8, 9)]
    assert [v.version for v in history.list_versions("d", limit=limit)] == everything[:limit]
    set_hint(history, 2)  # far behind: still right
    assert [v.version for v in history.list_versions("d", limit=limit)] == everything[:limit]


def test_list_versions_limit_is_checked(store, tmp_path):
    from modelstore_core.errors import DomainNotFoundError, UsageError

    with pytest.raises(DomainNotFoundError):
        store.list_versions("nope", limit=3)
    for bad in (0, -1, True, "3"):
        with pytest.raises(UsageError, match="limit"):
            store.list_versions("d", limit=bad)

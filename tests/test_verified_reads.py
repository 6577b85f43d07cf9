"""Loads verify in the pass that reads: the core's VerifyingReader, and deserializers that take
``verified`` (files of a local store are linked unhashed and checked as the plugin reads them)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from modelstore_core import ModelStore
from modelstore_core.cache import _file_state
from modelstore_core.errors import CorruptArtifactError, IntegrityError
from modelstore_core.hashing import VerifyingReader
from modelstore_core.plugin_api import Flavor, hookimpl
from modelstore_core.plugins import get_plugins
from modelstore_core.protocol import keys

BIG = 9 * 1024 * 1024 + 123  # more than two of the reader's threaded pieces


def big_file(path: Path, size: int = BIG) -> tuple[Path, str]:
    path.write_bytes(os.urandom(size))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def flip_last_byte(path: Path) -> None:
    os.chmod(path, 0o644)  # a store's objects are read-only; their owner can still change them
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))


# --- the reader ------------------------------------------------------------------------------


@pytest.mark.parametrize("piece", [1 << 20, BIG])  # small reads hashed inline; one big readinto, hashed on a thread
def test_the_reader_verifies_at_the_end_of_the_file(tmp_path, piece):
    path, sha = big_file(tmp_path / "w.bin")
    with VerifyingReader(path, sha, BIG, "w.bin") as reader:
        out = bytearray(BIG)
        view = memoryview(out)
        done = 0
        while done < BIG:
            done += reader.readinto(view[done : done + piece])
        assert reader.verified
    assert bytes(out) == path.read_bytes()


@pytest.mark.parametrize("piece", [1 << 20, BIG])
def test_a_corrupted_last_byte_raises_on_the_read_that_reaches_it(tmp_path, piece):
    path, sha = big_file(tmp_path / "w.bin")
    flip_last_byte(path)
    with VerifyingReader(path, sha, BIG, "w.bin") as reader:
        buffer = memoryview(bytearray(BIG))
        done = 0
        with pytest.raises(IntegrityError, match="'w.bin' is corrupted"):
            while done < BIG:
                done += reader.readinto(buffer[done : done + piece])
        assert not reader.verified
        if piece < BIG:
            assert done == BIG - (BIG % piece)  # every read before the last one returned


def test_finish_reads_the_rest_and_checks_it(tmp_path):
    path, sha = big_file(tmp_path / "w.bin")
    flip_last_byte(path)
    with VerifyingReader(path, sha, BIG, "w.bin") as reader:
        assert len(reader.read(100)) == 100
        with pytest.raises(IntegrityError):
            reader.finish()


def test_a_truncated_file_is_refused_when_opened(tmp_path):
    path, sha = big_file(tmp_path / "w.bin")
    with open(path, "r+b") as f:
        f.truncate(BIG - 1)
    with pytest.raises(IntegrityError, match=f"holds {BIG - 1} bytes where the record says {BIG}"):
        VerifyingReader(path, sha, BIG, "w.bin")


def test_a_file_truncated_while_it_is_read_raises(tmp_path):
    path, sha = big_file(tmp_path / "w.bin")
    with VerifyingReader(path, sha, BIG, "w.bin") as reader:
        reader.read(1000)
        with open(path, "r+b") as f:
            f.truncate(5000)
        with pytest.raises(IntegrityError, match="ended at byte 5000"):
            reader.skip(BIG)


def test_a_proven_file_is_not_hashed_again_until_it_changes(tmp_path):
    path, sha = big_file(tmp_path / "w.bin", 1000)
    st = os.stat(path)
    state = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    with VerifyingReader(path, sha, 1000, "w.bin", proven=state) as reader:
        assert not reader.hashing
        reader.finish()
    os.chmod(path, 0o600)  # moves the ctime: the proof no longer holds
    with VerifyingReader(path, sha, 1000, "w.bin", proven=state) as reader:
        assert reader.hashing


# --- through the store: a deserializer that reads through the core ---------------------------


class Blob:
    def __init__(self, data: bytes):
        self.data = data


#: The name of the blob plugin's check of its bytes, for the verdicts the cache keeps.
CHECK = "test-blobs/check-1"


class StreamingBlobs:
    """A throwaway flavor plugin whose deserializer verifies as it reads (takes ``verified``)."""

    def __init__(self):
        self.hashing: list[bool] = []  # per load: whether the read was hashed
        self.read_nothing = False
        self.checked: list[bool] = []  # per load: whether it ran its check of the bytes (no verdict remembered)
        self.asked_before_reading: list[bool] = []  # per load: what ``passed_before`` answered before the read

    @hookimpl
    def modelstore_serialize(self, model, directory, options):
        if not isinstance(model, Blob):
            return None
        (directory / "blob.bin").write_bytes(b"BLOB" + model.data)
        return Flavor(name="blob", format="blob", plugin="test-blobs", options={"file": "blob.bin"})

    @hookimpl
    def modelstore_deserialize(self, flavor, verified):
        if flavor.name != "blob":
            return None
        if self.read_nothing:
            return Blob(b"")  # the core verifies what was not read before load returns
        with verified.open(flavor.options["file"]) as f:
            self.hashing.append(f.hashing)
            if f.read(4) != b"BLOB":
                raise CorruptArtifactError("blob.bin", "it does not start with BLOB")
            self.asked_before_reading.append(verified.passed_before(flavor.options["file"], CHECK))
            data = bytearray(f.size - 4)
            f.readinto(data)  # reaches the end: raises IntegrityError if the bytes are not the recorded ones
        passed = verified.passed_before(flavor.options["file"], CHECK)
        self.checked.append(not passed)
        if not passed:
            verified.remember_passed(flavor.options["file"], CHECK)
        return Blob(bytes(data))

    @hookimpl
    def modelstore_flavors(self):
        return ["blob"]


@pytest.fixture
def blobs():
    manager = get_plugins().manager
    plugin = StreamingBlobs()
    manager.register(plugin, name="test-blobs")
    yield plugin
    manager.unregister(name="test-blobs")


def stored_object(store: ModelStore, version) -> Path:
    return store.storage.local_path(keys.object_key(version.files[0].sha256))


def test_a_streaming_deserializer_verifies_once_and_later_loads_trust_the_proof(blobs, tmp_path):
    data = os.urandom(BIG)
    v = ModelStore(tmp_path / "store", cache_dir=tmp_path / "uploader's cache").upload("d", model=Blob(data))
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")  # another cache: no proof from the upload
    assert store.load("d").data == data
    assert store.load("d").data == data
    assert ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache").load("d").data == data
    assert blobs.hashing == [True, False, False]  # hashed by the first load's read only
    view = store.cache.version_dir(store.storage, "d", v.version)
    assert os.stat(view / "blob.bin").st_ino == os.stat(stored_object(store, v)).st_ino  # linked: no copy


def test_a_corrupted_byte_at_the_end_raises_and_nothing_is_returned(blobs, tmp_path):
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    v = store.upload("d", model=Blob(os.urandom(BIG)))
    flip_last_byte(stored_object(store, v))
    with pytest.raises(IntegrityError, match="blob.bin"):
        store.load("d")
    assert blobs.hashing == [True]  # the deserializer ran, and its read found the damage
    with pytest.raises(IntegrityError):  # no proof was recorded: the next load checks again
        store.load("d")


def test_a_damaged_file_is_named_when_the_parser_fails_first(blobs, tmp_path):
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    v = store.upload("d", model=Blob(b"x" * 100))
    obj = stored_object(store, v)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"JUNK" + b"x" * 100)  # the parser refuses it before reaching the end
    with pytest.raises(IntegrityError, match="blob.bin"):
        store.load("d")


def test_a_truncated_object_raises_before_the_deserializer_reads(blobs, tmp_path):
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    v = store.upload("d", model=Blob(os.urandom(1000)))
    obj = stored_object(store, v)
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:
        f.truncate(500)
    with pytest.raises(IntegrityError, match="blob.bin"):
        store.load("d")
    assert blobs.hashing == []


def test_files_a_deserializer_did_not_read_are_verified_before_load_returns(blobs, tmp_path):
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    extra = tmp_path / "notes.txt"
    extra.write_bytes(b"notes")
    v = store.upload("d", model=Blob(b"data"), extras=[extra])
    blobs.read_nothing = True
    assert store.load("d").data == b""
    flip_last_byte(store.storage.local_path(keys.object_key(v.files[1].sha256)))  # the extras file
    fresh = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache2")
    with pytest.raises(IntegrityError, match="notes.txt"):
        fresh.load("d")


def test_verified_refuses_names_outside_the_version(blobs, tmp_path):
    from modelstore_core.errors import CorruptRecordError

    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    v = store.upload("d", model=Blob(b"data"))
    view = store.cache.view(store.storage, v.record)
    for name in ("../x", "/etc/passwd", "other.bin", 3):
        with pytest.raises(CorruptRecordError, match="not one of the version's files"):
            view.open(name)
        with pytest.raises(CorruptRecordError):
            view.path(name)


# --- a local upload's proof: the first load on the machine that wrote the objects ---------------

#: a uid that is not the test's (CI runs the tests as root, where os.chown can give files away)
OTHER = 4242


def upload_proof(store: ModelStore, version) -> Path:
    return store.cache._upload_proof_path(version.files[0].sha256)


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Change a file's bytes and set its size and mtime back as they were: only its ctime tells."""
    before = os.stat(path)
    assert len(data) == before.st_size
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.write(data)
    os.chmod(path, 0o444)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert after.st_ctime_ns != before.st_ctime_ns


def test_the_first_load_after_a_local_upload_trusts_the_uploads_hash(blobs, tmp_path):
    data = os.urandom(BIG)
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    v = store.upload("d", model=Blob(data))
    assert upload_proof(store, v).is_file()
    assert store.load("d").data == data
    assert ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache").load("d").data == data
    assert blobs.hashing == [False, False]  # hashed by the upload only
    assert not upload_proof(store, v).exists()  # served once: the view's link moved the object's ctime
    view = store.cache.version_dir(store.storage, "d", v.version)
    assert os.stat(view / "blob.bin").st_ino == os.stat(stored_object(store, v)).st_ino  # linked: no copy


def test_an_object_changed_after_the_upload_is_hashed_though_its_size_and_mtime_are_back(blobs, tmp_path):
    data = os.urandom(BIG)
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    v = store.upload("d", model=Blob(data))
    rewrite_in_place(stored_object(store, v), b"BLOB" + os.urandom(BIG))
    with pytest.raises(IntegrityError, match="blob.bin"):
        store.load("d")
    assert blobs.hashing == [True]


@pytest.mark.parametrize(
    "where, mode, proven",
    [
        ("the store", 0o777, False),
        ("the store", 0o775, False),  # its group
        ("objects", 0o777, False),
        (".tmp", 0o777, False),  # where the object was between its scratch directory and its place
        ("a directory above the store", 0o777, False),
        ("a directory above the store", 0o1777, True),  # sticky, as /tmp: no one can rename what is not theirs
    ],
)
def test_no_upload_proof_where_others_can_write(blobs, tmp_path, where, mode, proven):
    root = tmp_path / "shared" / "store"
    store = ModelStore(root, cache_dir=tmp_path / "cache")
    store.upload("other", model=Blob(b"makes the store's directories"))
    directory = {"the store": root, "objects": root / "objects", ".tmp": root / ".tmp", "a directory above the store": root.parent}[where]
    directory.mkdir(exist_ok=True)
    directory.chmod(mode)
    data = os.urandom(BIG)
    v = store.upload("d", model=Blob(data))
    assert upload_proof(store, v).is_file() == proven
    assert store.load("d").data == data
    assert blobs.hashing == [not proven]


def disown(path: Path) -> str:
    """Make the file ``path`` another user's where this process may (root, as in CI), else one that
    others can write (what an unprivileged process can make); returns which."""
    if os.geteuid() == 0:
        os.chown(path, OTHER, OTHER)
        return "another user's"
    path.chmod(0o666)
    return "others can write it"


@pytest.mark.parametrize("forged", ["others can write it", "another user's", "this user's own, private"])
def test_a_forged_upload_proof_is_trusted_only_if_this_user_wrote_it(blobs, tmp_path, forged):
    """Another user who rewrote the object (given write access to it) and forged the upload's proof
    to match its new state is not trusted: the load hashes and refuses the bytes. This user's own
    cache file is trusted (the cache is theirs alone): the control that shows the proof is read."""
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    v = store.upload("d", model=Blob(os.urandom(BIG)))
    planted = b"BLOB" + os.urandom(BIG)
    obj, proof = stored_object(store, v), upload_proof(store, v)
    rewrite_in_place(obj, planted)
    proof.write_text(json.dumps([*_file_state(obj), v.files[0].sha256]))
    if forged == "others can write it":
        proof.chmod(0o666)
    elif forged == "another user's":
        forged = disown(proof)
    if forged == "this user's own, private":
        assert store.load("d").data == planted[4:]
        assert blobs.hashing == [False]
        return
    with pytest.raises(IntegrityError, match="blob.bin"):
        store.load("d")
    assert blobs.hashing == [True]


# --- verdicts: a check of the same bytes passed once is not run again -------------------------


def test_a_check_passed_once_is_not_run_again_for_the_same_bytes_in_another_store(blobs, tmp_path):
    data = os.urandom(1000)
    first, second = (ModelStore(tmp_path / name, cache_dir=tmp_path / "cache") for name in ("store-a", "store-b"))
    for name in ("store-a", "store-b"):  # uploaded with another cache: no upload's proof in this one
        ModelStore(tmp_path / name, cache_dir=tmp_path / "uploader's cache").upload("d", model=Blob(data))
    assert first.load("d").data == data
    assert second.load("d").data == data  # another store, another view: the same bytes, verified as read
    assert ModelStore(tmp_path / "store-b", cache_dir=tmp_path / "other cache").load("d").data == data
    assert blobs.hashing == [True, True, True]  # every view's bytes are verified against the sha256
    assert blobs.checked == [True, False, True]  # the check: once per cache
    assert blobs.asked_before_reading == [False, False, False]  # never a verdict for bytes not verified yet


def test_a_verdict_is_used_only_for_bytes_that_match_its_sha256(blobs, tmp_path):
    data = os.urandom(1000)
    first, second = (ModelStore(tmp_path / name, cache_dir=tmp_path / "cache") for name in ("store-a", "store-b"))
    first.upload("d", model=Blob(data))
    v = second.upload("d", model=Blob(data))
    first.load("d")
    flip_last_byte(stored_object(second, v))
    with pytest.raises(IntegrityError, match="blob.bin"):
        second.load("d")
    assert blobs.checked == [True]  # the damaged bytes never reached the verdict


@pytest.mark.parametrize("shared", ["directory", "file"])
def test_a_verdict_others_can_write_is_not_trusted(blobs, tmp_path, shared):
    data = os.urandom(1000)
    first, second = (ModelStore(tmp_path / name, cache_dir=tmp_path / "cache") for name in ("store-a", "store-b"))
    for store in (first, second):
        store.upload("d", model=Blob(data))
    first.load("d")
    [verdict] = (tmp_path / "cache" / "verdicts").rglob("*.json")
    (verdict.parent if shared == "directory" else verdict).chmod(0o777 if shared == "directory" else 0o666)
    assert second.load("d").data == data
    assert blobs.checked == [True, True]  # the verdict was ignored: the check ran again
    if shared == "file":  # and the verdict kept is this user's alone again
        assert oct(os.stat(verdict).st_mode & 0o777) == oct(0o600)

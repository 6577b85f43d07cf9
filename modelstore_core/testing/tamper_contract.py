"""The tamper kit: a store edited by someone with write access, through the backend's own primitives.

Everything read back from a store is untrusted. Each check writes what a careless tool or an
attacker could (object bytes and record sha256 kept consistent where that makes the attack
stronger) and asserts that the library never writes outside the store, the target or the cache,
never loses a version, reports the problem as a :class:`~modelstore_core.errors.ModelStoreError`
that names the key and the field, and keeps every other version working. The checks of signed
pointers and signed search (a trust policy's) need the ``signing`` extra (``cryptography``):
they fail, never skip, without it::

    class TestMyTamper(TamperContract):
        @pytest.fixture
        def store_url(self):
            return "my://bucket/" + uuid.uuid4().hex
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ..errors import CorruptRecordError, DanglingStateError, IntegrityError, RollbackError, UntrustedPointerError
from ..protocol import keys
from ..protocol.records import parse_latest_hint
from ..store import ModelStore
from .store_contract import StoreFixtures, collect_now, matrix


def put(store: ModelStore, key: str, data: bytes) -> None:
    """Overwrite ``key`` with ``data``, as any writer of the bucket can."""
    store.storage.put(key, io.BytesIO(data))


def edit_record(store: ModelStore, domain: str, version: int, edit) -> dict[str, Any]:
    """Rewrite a version record: ``edit(document)`` changes it in place."""
    key = keys.version_key(domain, version)
    doc = json.loads(store.storage.read(key)[0])
    edit(doc)
    put(store, key, json.dumps(doc).encode())
    return doc


def damage_stored_file(store: ModelStore, version: Any, name: str, how: str) -> Path:
    """Change, in place, the object that holds file ``name`` of ``version`` (a :class:`Version`) in a
    local store, as the owner of its (read-only) object files can: ``how`` is ``"flip-last"`` (its
    last byte changed: only the hash that reaches the end sees it) or ``"truncate"`` (its last byte
    removed). Returns the object's path."""
    [entry] = [f for f in version.files if f.path == name]
    path = store.storage.local_path(keys.object_key(entry.sha256))
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        if how == "flip-last":
            f.seek(-1, os.SEEK_END)
            last = f.read(1)[0]
            f.seek(-1, os.SEEK_END)
            f.write(bytes([last ^ 1]))
        elif how == "truncate":
            f.truncate(entry.size - 1)
        else:
            raise ValueError(f"how={how!r}: 'flip-last' or 'truncate'")
    return path


def check_verdict_reuse(root: Path, model: Any, name: str, predict, plugin: str, **upload_options: Any) -> None:
    """The same bytes uploaded to two stores and loaded through one cache: the first load's check
    (``plugin``'s) leaves a verdict for the file ``name``'s sha256, the second load reuses it
    (nothing new is kept) and predicts what the model does (``predict(model)``: an array); once the
    second store's object is damaged, its load raises :class:`IntegrityError` (a verdict vouches for
    nothing but its sha256's bytes)."""
    import numpy as np

    stores = [root / "store-1", root / "store-2"]
    versions = [ModelStore(store, cache_dir=root / "uploader").upload("m", model=model, **upload_options) for store in stores]
    readers = [ModelStore(store, cache_dir=root / "reader") for store in stores]
    np.testing.assert_array_equal(predict(readers[0].load("m")), predict(model))
    verdicts = sorted((root / "reader" / "verdicts").rglob("*.json"))
    [entry] = [f for f in versions[0].files if f.path == name]
    assert [p.stem for p in verdicts] == [entry.sha256]
    kept = json.loads(verdicts[0].read_text())
    assert kept["sha256"] == entry.sha256 and [c.split("/")[0] for c in kept["passed"]] == [plugin]
    np.testing.assert_array_equal(predict(readers[1].load("m")), predict(model))
    assert sorted((root / "reader" / "verdicts").rglob("*.json")) == verdicts and json.loads(verdicts[0].read_text()) == kept
    damage_stored_file(readers[1], versions[1], name, "flip-last")
    with pytest.raises(IntegrityError, match=name):
        readers[1].load("m")


def files_under(root: Path, name: str) -> list[Path]:
    return [p for p in root.rglob(name)]


def make_key_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """A new ECDSA P-256 key pair as PEM files, ``(private, public)`` (needs the ``signing`` extra)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def delete_version_behind_its_back(store: ModelStore, domain: str, version: int) -> None:
    """Remove a version's record and signatures as someone editing the bucket can (no signed delete)."""
    store.storage.delete(keys.version_key(domain, version))
    for info in list(store.storage.list(keys.signatures_prefix(domain, version))):
        store.storage.delete(info.key)


class TamperContract(StoreFixtures):
    """Subclass and provide a ``store_url`` fixture naming a fresh, empty store; a network backend
    also sets :attr:`ranged_download_options`."""

    #: ``ModelStore`` options under which the download of a 1.5 MB object is split into parallel
    #: ranged requests (the backend's part size and threshold set low), so that the checks of a
    #: corrupted object go through its ranged, hashed-as-it-lands path too; empty where downloads
    #: are never ranged.
    ranged_download_options: dict[str, Any] = {}

    # --- records -----------------------------------------------------------------------------

    @matrix("path", ["../../escape.bin", "/tmp/escape.bin", "sub/../../escape.bin", "..", "a//escape.bin", ".hidden"])
    def test_record_file_paths_cannot_leave_the_target_or_cache(self, store, model_file, tmp_path, path):
        store.upload("d", files=[model_file])
        good = store.upload("d", files=[model_file])
        edit_record(store, "d", 1, lambda doc: doc["files"][0].update(path=path))
        with pytest.raises(CorruptRecordError, match=r"files\[0\]\.path") as err:
            store.load("d", version=1)
        assert keys.version_key("d", 1) in str(err.value)
        with pytest.raises(CorruptRecordError):
            store.download("d", version=1, to=tmp_path / "out")
        assert files_under(tmp_path, "escape.bin") == [] and not Path("/tmp/escape.bin").exists()
        report = store.verify()
        assert [(p.version, p.problem) for p in report.problems] == [(1, "corrupt-record")]
        assert store.load("d", version=good.version)[0].read_bytes() == model_file.read_bytes()

    @matrix("field,value", [("version", 2), ("domain", "other"), ("version", "2"), ("domain", "../other")])
    def test_record_identity_must_match_its_key(self, store, model_file, field, value):
        store.upload("d", files=[model_file])
        store.upload("d", files=[model_file])
        other = store.upload("other", files=[model_file])
        [view2] = store.load("d", version=2)
        [view_other] = store.load("other", version=other.version)
        edit_record(store, "d", 1, lambda doc: doc.update({field: value}))
        with pytest.raises(CorruptRecordError, match=field):
            store.load("d", version=1)
        # No other version's cached files were touched (the cache path is the requested version's).
        assert view2.read_bytes() == view_other.read_bytes() == model_file.read_bytes()

    @matrix(
        "damage",
        [
            pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
            pytest.param(lambda data: b"", id="empty"),
            pytest.param(lambda data: b"[1, 2]", id="not-an-object"),
            pytest.param(lambda data: _edit(data, lambda d: d.update(files="model.bin")), id="files-wrong-type"),
            pytest.param(lambda data: _edit(data, lambda d: d["files"][0].pop("sha256")), id="missing-sha256"),
            pytest.param(lambda data: _edit(data, lambda d: d["files"][0].update(sha256="../" * 21 + "x")), id="sha256-not-hex"),
            pytest.param(lambda data: _edit(data, lambda d: d["files"][0].update(size=-1)), id="negative-size"),
            pytest.param(lambda data: _edit(data, lambda d: d.update(schema=99)), id="newer-schema"),
            pytest.param(lambda data: _edit(data, lambda d: d["flavor"].update(name=7)), id="flavor-name-wrong-type"),
            pytest.param(lambda data: _edit(data, lambda d: d.update(tags={"t": {"nested": 1}})), id="tag-not-scalar"),
            pytest.param(
                lambda data: _edit(data, lambda d: d["files"].append({**d["files"][0], "path": "model.bin/x"})), id="file-and-dir"
            ),
        ],
    )
    def test_a_corrupt_record_is_reported_and_the_rest_keeps_working(self, store, model_file, tmp_path, damage):
        v1 = store.upload("d", files=[model_file])
        other = tmp_path / "other.bin"
        other.write_bytes(os.urandom(1000))
        store.upload("d", files=[other])
        key = keys.version_key("d", 1)
        put(store, key, damage(store.storage.read(key)[0]))
        with pytest.raises(CorruptRecordError) as err:
            store.info("d", 1)
        assert err.value.key == key and "modelstore verify" in str(err.value)
        assert [v.version for v in store.list_versions("d")] == [2, 1]
        assert store.load("d")[0].read_bytes() == other.read_bytes()
        report = store.verify()
        assert [(p.domain, p.version, p.problem) for p in report.problems] == [("d", 1, "corrupt-record")]
        assert report.versions == 1  # the readable one was still verified
        gc = store.gc()
        assert keys.object_key(v1.files[0].sha256) not in gc.objects  # a damaged version is not made worse
        assert any(key in problem for problem in gc.problems)
        assert store.storage.stat(keys.object_key(v1.files[0].sha256)) is not None

    # --- the latest hint ---------------------------------------------------------------------

    @matrix(
        "hint",
        [
            b'{"version": 1e20}',
            b'{"version": 9999999999}',
            b'{"version": -5}',
            b'{"version": Infinity}',
            b'{"version": NaN}',
            b'{"version": "2"}',
            b'{"version": true}',
            b"[]",
            b"garbage",
            b"",
        ],
    )
    def test_a_bad_latest_hint_never_loses_an_upload(self, store, model_file, hint):
        store.upload("d", files=[model_file])
        store.upload("d", files=[model_file])
        put(store, keys.latest_key("d"), hint)
        assert store.latest("d").version == 2
        v3 = store.upload("d", files=[model_file])
        assert v3.version == 3
        assert store.latest("d").version == 3 and [v.version for v in store.list_versions("d")] == [3, 2, 1]
        assert store.load("d")[0].read_bytes() == model_file.read_bytes()
        assert parse_latest_hint(store.storage.read(keys.latest_key("d"))[0]) == 3  # repaired by the upload

    # --- states -------------------------------------------------------------------------------

    @matrix("states", [b"{not json", b'{"states": []}', b'{"states": {"production": {"version": "1"}}}', b"null"])
    def test_garbage_states_are_reported_and_replaced_by_set_state(self, store, model_file, states):
        store.upload("d", files=[model_file])
        store.upload("d", files=[model_file])
        put(store, keys.states_key("d"), states)
        with pytest.raises(CorruptRecordError, match="states.json"):
            store.states("d")
        with pytest.raises(CorruptRecordError):
            store.load("d", state="production")
        store.delete("d", 1)  # not blocked by the states, and never half-done
        assert [v.version for v in store.list_versions("d")] == [2]
        store.set_state("d", 2, "production")
        assert store.states("d") == {"production": 2}
        assert store.load("d", state="production")[0].read_bytes() == model_file.read_bytes()

    def test_a_state_on_a_deleted_version_is_explained_and_repaired(self, store, model_file):
        store.upload("d", files=[model_file])
        store.upload("d", files=[model_file])
        store.set_state("d", 1, "production")
        store.set_state("d", 2, "staging")
        store.storage.delete(keys.version_key("d", 1))  # what an interrupted tool could leave
        with pytest.raises(DanglingStateError, match="verify --repair"):
            store.load("d", state="production")
        report = store.verify()
        assert [(p.version, p.problem) for p in report.problems] == [(1, "dangling-state")]
        repaired = store.verify(repair=True)
        assert repaired.problems[0].repaired
        assert store.states("d") == {"staging": 2} and store.verify().ok

    # --- objects ------------------------------------------------------------------------------

    def test_a_corrupted_object_is_repaired_by_verify_and_a_new_upload(self, store, model_file, tmp_path):
        v1 = store.upload("d", files=[model_file])
        key = keys.object_key(v1.files[0].sha256)
        data = bytearray(model_file.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size: a size check alone cannot tell
        put(store, key, bytes(data))
        with pytest.raises(IntegrityError):
            store.load("d", version=1)
        report = store.verify()
        assert [(p.version, p.problem) for p in report.problems] == [(1, "corrupted")]
        repaired = store.verify(repair=True)
        assert repaired.problems[0].repaired and store.storage.stat(key) is None
        assert [p.problem for p in store.verify().problems] == ["missing"]
        v2 = store.upload("d", files=[model_file])  # never deduplicated against the corrupt object
        assert v2.bytes_written == model_file.stat().st_size
        assert store.load("d", version=1)[0].read_bytes() == model_file.read_bytes()  # healed by the same bytes
        assert store.verify().ok

    @pytest.mark.parametrize("where", ["first byte", "middle", "last byte"])
    def test_a_corrupted_object_is_refused_by_a_ranged_download(self, store, store_url, store_options, tmp_path, where):
        """The object's parts arrive in parallel and are hashed as they land (where the backend has
        ranged downloads): a byte changed in any part (same size) is an IntegrityError, and nothing
        of it stays in the cache."""
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(1_500_000))
        v1 = store.upload("d", files=[big])
        options = {**store_options, **self.ranged_download_options}
        with ModelStore(store_url, cache_dir=tmp_path / "intact-cache", **options) as ranged:
            assert ranged.load("d")[0].read_bytes() == big.read_bytes()
        data = bytearray(big.read_bytes())
        data[{"first byte": 0, "middle": len(data) // 2, "last byte": -1}[where]] ^= 0xFF
        put(store, keys.object_key(v1.files[0].sha256), bytes(data))
        with ModelStore(store_url, cache_dir=tmp_path / "cache-2", **options) as ranged:
            with pytest.raises(IntegrityError):
                ranged.load("d")
        assert [p for p in (tmp_path / "cache-2").rglob("*") if p.is_file() and "objects" in p.parts] == []

    # --- the summary ------------------------------------------------------------------------------

    @matrix("damage", ["junk", "another domain", "forged entry", "entry of a deleted version"])
    def test_a_damaged_summary_never_changes_what_find_returns(self, store, model_file, damage):
        from ..protocol.summary import SummaryEntry, parse_segment, segment_document

        for auc in (0.8, 0.95, 0.9):
            store.upload("d", files=[model_file], metrics={"auc": auc})
        key = keys.summary_key("d", 1)
        entries = parse_segment(store.storage.read(key)[0], key, "d", 1)
        expected = [2, 3]
        if damage == "junk":
            put(store, key, b"\x00\xff{[")
        elif damage == "another domain":
            put(store, key, segment_document("e", 1, entries))
        elif damage == "forged entry":  # a valid segment whose entry of version 1 lies (its record size too)
            values = {**entries[1].values, "metrics": {"auc": 0.99}}
            forged = SummaryEntry(**{**entries[1].__dict__, "values": values, "record_bytes": 1})
            put(store, key, segment_document("d", 1, {**entries, 1: forged}))
        else:  # a delete that lost its summary update
            store.storage.delete(keys.version_key("d", 2))
            expected = [3]
        problems: list[str] = []
        found = store.find("d", "metrics.auc>=0.9", "-metrics.auc", problems=problems)
        assert [v.version for v in found] == expected
        assert [v.metrics for v in found] == [v.summary.metrics for v in found]  # what find said is what the record says
        assert (problems == []) == (damage == "entry of a deleted version"), problems
        assert all(key in p for p in problems)
        assert [v.version for v in store.find("d", "metrics.auc>=0.9", "-metrics.auc", problems=problems)] == expected  # repaired
        assert store.verify().ok

    # --- signed pointers and signed search (a trust policy) ------------------------------------

    @pytest.fixture
    def signed(self, store, store_url, store_options, tmp_path) -> Signed:
        """Stores on ``store_url`` that sign with a release key, and stores that trust it."""
        return Signed(store_url, store_options, tmp_path)

    def test_an_edited_or_replayed_state_is_refused(self, store, model_file, signed):
        w, reader_of = signed.writer(), signed.reader
        for _ in range(3):
            w.upload("d", files=[model_file])
        w.set_state("d", 1, "production")
        superseded = w.storage.read(keys.states_key("d"))[0]  # production -> 1, signed
        w.set_state("d", 3, "production")
        seen = reader_of("seen")
        assert seen.info("d", state="production").version == 3
        # The state edited to name the older (validly signed) version: nobody takes it.
        current = json.loads(w.storage.read(keys.states_key("d"))[0])
        current["states"]["production"]["version"] = 1
        put(store, keys.states_key("d"), json.dumps(current).encode())
        for reader in (seen, reader_of("fresh")):
            with pytest.raises(UntrustedPointerError, match="its signed statement names version 3"):
                reader.load("d", state="production")
        assert store.load("d", state="production")  # without a policy, states are as stored (unchanged)
        # The superseded statement put back whole: whoever saw the newer one refuses it.
        put(store, keys.states_key("d"), superseded)
        with pytest.raises(RollbackError, match="cache clear"):
            seen.load("d", state="production")
        assert seen.states("d") == {}  # left out of listings too
        report = seen.verify(signatures=True)
        assert [(p.version, p.problem) for p in report.problems] == [(1, "rolled-back")]
        # A reader that has seen nothing cannot tell a replayed statement from a current one.
        assert reader_of("new").info("d", state="production").version == 1
        # An unsigned state is refused under the policy, a signed one accepted again.
        store.set_state("d", 2, "production")  # by a writer without a key
        with pytest.raises(UntrustedPointerError, match="is not signed"):
            seen.load("d", state="production")
        w.set_state("d", 2, "production")
        assert seen.info("d", state="production").version == 2

    def test_deleting_the_newest_records_cannot_roll_back_latest(self, store, model_file, signed):
        w, reader_of = signed.writer(), signed.reader
        for _ in range(3):
            w.upload("d", files=[model_file])
        head_at_3 = w.storage.read(keys.latest_key("d"))[0]
        for _ in range(2):
            w.upload("d", files=[model_file])
        seen = reader_of("seen")
        assert seen.info("d").version == 5
        for n in (5, 4):
            delete_version_behind_its_back(store, "d", n)
        assert store.latest("d").version == 3  # without a policy, latest is the newest record left
        for reader in (seen, reader_of("fresh")):  # the signed head still names 5: even a fresh reader refuses
            with pytest.raises(UntrustedPointerError, match="version 5, which is not in the store"):
                reader.load("d")
        report = seen.verify(signatures=True)
        assert [(p.version, p.problem) for p in report.problems] == [(5, "missing-version")]
        # The head put back as it was when 3 was newest: refused by whoever saw 5.
        put(store, keys.latest_key("d"), head_at_3)
        with pytest.raises(RollbackError, match="number 3, naming version 3, but this machine saw number 5"):
            seen.load("d")
        assert [(p.version, p.problem) for p in seen.verify(signatures=True).problems] == [(3, "rolled-back")]
        assert reader_of("new").latest("d").version == 3  # what a reader that has seen nothing cannot tell
        # A head removed altogether is not vouched for either.
        store.storage.delete(keys.latest_key("d"))
        with pytest.raises(UntrustedPointerError, match="is not signed"):
            reader_of("other").load("d")

    def test_signed_moves_and_deletes_are_accepted(self, store, model_file, signed):
        w, reader_of = signed.writer(), signed.reader
        for _ in range(3):
            w.upload("d", files=[model_file])
        w.set_state("d", 3, "production")
        r = reader_of("r")
        assert (r.info("d").version, r.info("d", state="production").version) == (3, 3)
        w.set_state("d", 1, "production")  # moved back on purpose: a newer statement
        assert r.info("d", state="production").version == 1
        w.delete("d", 3)  # a signed delete moves latest back
        assert r.info("d").version == 2 and r.load("d")[0].read_bytes() == model_file.read_bytes()
        w.remove_state("d", "production")
        assert r.states("d") == {}
        w.set_state("d", 2, "production")  # set again after a signed removal: its serial goes past it
        assert r.info("d", state="production").version == 2
        # A writer on another machine (its own memory) moves them on from what the store says.
        other = signed.writer("other-writer")
        other.upload("d", files=[model_file])
        other.set_state("d", 4, "production")
        assert (r.info("d").version, r.info("d", state="production").version) == (4, 4)
        # A writer without a key keeps the signed head: its version is not vouched for.
        store.upload("d", files=[model_file])
        assert (store.latest("d").version, r.latest("d").version) == (5, 4)
        assert [(p.version, p.problem) for p in r.verify(signatures=True).problems] == [(5, "untrusted")]

    def test_an_edited_summary_entry_never_picks_the_winner_under_a_policy(self, store, model_file, signed):
        from ..protocol.summary import SummaryEntry, parse_segment, segment_document

        w, reader_of = signed.writer(), signed.reader
        for auc in (0.8, 0.95, 0.9):
            w.upload("d", files=[model_file], metrics={"auc": auc})
        key = keys.summary_key("d", 1)
        entries = parse_segment(store.storage.read(key)[0], key, "d", 1)
        values = {**entries[1].values, "metrics": {"auc": 0.99}}
        forged = SummaryEntry(**{**entries[1].__dict__, "values": values})  # its record untouched: same size
        put(store, key, segment_document("d", 1, {**entries, 1: forged}))  # checksum recomputed
        problems: list[str] = []
        found = reader_of("r").find("d", "metrics.auc>=0.85", "-metrics.auc", problems=problems)
        assert [(v.version, v.summary.metrics["auc"]) for v in found] == [(2, 0.95), (3, 0.9)]
        assert problems == []
        ranked = reader_of("r").find("d", sort="-metrics.auc")
        assert [v.version for v in ranked] == [2, 3, 1] and [v.metrics for v in ranked] == [v.summary.metrics for v in ranked]
        assert [p.problem for p in store.verify().problems] == ["bad-summary"]  # without a policy only verify notices
        # Versions no trusted key signed are left out, and said so.
        store.upload("d", files=[model_file], metrics={"auc": 0.999})
        problems = []
        assert [v.version for v in reader_of("r").find("d", sort="-metrics.auc", problems=problems)] == [2, 3, 1]
        assert problems == ["d: left out 1 version(s) not signed by a trusted key: 4"]

    # --- entries modelstore never writes -------------------------------------------------------

    def test_stray_entries_and_garbage_markers_do_not_break_the_store(self, store, model_file, fast_heartbeat):
        store.upload("d", files=[model_file])
        put(store, "domains/not a domain!/versions/0000000001.json", b"{}")
        put(store, keys.upload_key("junk"), b"\x00\xff not a marker")
        assert store.list_domains() == ["d"]
        report = store.verify()
        assert [(p.domain, p.problem) for p in report.problems] == [("not a domain!", "stray")]
        kept = store.gc(grace=3600)
        assert kept.markers == [] and any("junk" in p for p in kept.problems)
        removed = collect_now(store)
        assert removed.markers == [keys.upload_key("junk")]
        assert store.load("d")[0].read_bytes() == model_file.read_bytes()


class Signed:
    """Stores on one URL that sign with a release key (:meth:`writer`), and that trust it
    (:meth:`reader`), each with a cache of its own: another user, or another machine."""

    def __init__(self, url: str, options: dict, directory: Path):
        self.url, self.options, self.directory = url, options, directory
        self.private, self.public = make_key_pair(directory, "release")

    def writer(self, name: str = "writer") -> ModelStore:
        return ModelStore(self.url, cache_dir=self.directory / name, signer=self.private, **self.options)

    def reader(self, name: str) -> ModelStore:
        return ModelStore(self.url, cache_dir=self.directory / f"reader-{name}", trusted_keys=[self.public], **self.options)


def _edit(data: bytes, change) -> bytes:
    doc = json.loads(data)
    change(doc)
    return json.dumps(doc).encode()

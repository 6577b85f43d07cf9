"""The copy and mirror contract: what ``copy_to``/``mirror_to`` promise between two backends.

Subclass :class:`CopyContract` and provide the fixtures ``source_url`` and ``target_url`` (fresh,
empty stores, on the same or different backends)::

    class TestS3ToLocal(CopyContract):
        @pytest.fixture
        def source_url(self, s3_url): return s3_url

        @pytest.fixture
        def target_url(self, tmp_path): return str(tmp_path / "copy")

Every check uses real stores and, for resuming, a real child process killed (SIGKILL) at a named
step of the copy; it inherits the test's environment (credentials, endpoints).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ..errors import UsageError
from ..protocol import keys
from .faults import HANG_TIMEOUT
from .store_contract import check_scratch_reclaimed

#: Steps of a copy at which a killed copy must leave the target consistent and resumable.
COPY_STEPS = ("copy-object-stored", "copy-objects-stored", "copy-claimed", "copy-committed", "copy-evented")

_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from modelstore_core import ModelStore
    from modelstore_core.protocol import commit

    src, dst, step, cache = sys.argv[1:5]
    def crash(name):
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)
    commit.checkpoint = crash
    ModelStore(src, cache_dir=cache).copy_to(ModelStore(dst, cache_dir=cache))
    """
)


def copy_in_child(source_url: str, target_url: str, crash_at: str, cache: Path, tmpdir: Path | None = None) -> int:
    """Run a copy in a new process, killed with SIGKILL at ``crash_at``; its return code.
    ``tmpdir``: the child's system temporary directory (``$TMPDIR``)."""
    env = {**os.environ, "TMPDIR": str(tmpdir)} if tmpdir is not None else None
    cmd = [sys.executable, "-c", _CHILD, source_url, target_url, crash_at, str(cache)]
    return subprocess.run(cmd, timeout=HANG_TIMEOUT, env=env).returncode


@pytest.mark.usefixtures("isolated")
class CopyContract:
    """Copies and mirrors from ``source_url`` to ``target_url``.

    ``crash_steps`` are the steps at which ``test_a_killed_copy_resumes`` kills a copy (each in
    its own child process: a suite that runs the contract for many pairs may spread them out).
    """

    crash_steps: tuple[str, ...] = COPY_STEPS

    def pytest_generate_tests(self, metafunc):
        if "crash_step" in metafunc.fixturenames:
            metafunc.parametrize("crash_step", self.crash_steps)

    @pytest.fixture
    def source_url(self) -> str:
        raise NotImplementedError("provide a source_url fixture: a fresh, empty store")

    @pytest.fixture
    def target_url(self) -> str:
        raise NotImplementedError("provide a target_url fixture: a fresh, empty store")

    @pytest.fixture
    def source(self, source_url, tmp_path):
        from .. import ModelStore

        return ModelStore(source_url, cache_dir=tmp_path / "cache-src")

    @pytest.fixture
    def target(self, target_url, tmp_path):
        from .. import ModelStore

        return ModelStore(target_url, cache_dir=tmp_path / "cache-dst")

    @pytest.fixture
    def files(self, tmp_path) -> list[Path]:
        out = []
        for i, size in enumerate((3000, 200, 5000)):
            path = tmp_path / "in" / f"part{i}.bin"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(os.urandom(size))
            out.append(path)
        return out

    def record_bytes(self, store, domain: str, version: int) -> bytes:
        return store.storage.read(keys.version_key(domain, version))[0]

    # --- copy ---

    def test_copy_keeps_numbers_records_tags_and_states(self, source, target, files):
        for i in range(3):
            source.upload("churn", files=files[: i + 1], tags={"run": str(i)})
        source.upload("fraud", files=[files[1]])
        source.delete("churn", 2)  # a gap: numbers are kept, not renumbered
        source.set_state("churn", 1, "production")
        report = source.copy_to(target)
        assert report.ok and sorted(report.copied) == ["churn:1", "churn:3", "fraud:1"]
        assert report.objects == 3 and report.bytes_moved == sum(f.stat().st_size for f in files)
        assert [v.version for v in target.list_versions("churn")] == [3, 1]
        assert target.latest("churn").version == 3
        for domain, n in (("churn", 1), ("churn", 3), ("fraud", 1)):
            assert self.record_bytes(target, domain, n) == self.record_bytes(source, domain, n)
        assert target.info("churn", 3).tags == {"run": "2"}
        assert target.states("churn") == {"production": 1}
        assert [p.read_bytes() for p in target.load("churn", 3)] == [f.read_bytes() for f in files]
        assert target.verify().ok

    def test_second_copy_moves_nothing(self, source, target, files):
        source.upload("churn", files=files)
        source.copy_to(target)
        again = source.copy_to(target)
        assert again.ok and again.copied == [] and again.skipped == ["churn:1"]
        assert again.objects == 0 and again.bytes_moved == 0 and again.states == []

    def test_only_missing_objects_move(self, source, target, files):
        target.upload("other", files=[files[0]])  # the target holds this object already
        source.upload("churn", files=files)
        report = source.copy_to(target)
        assert report.objects == 2 and report.bytes_moved == files[1].stat().st_size + files[2].stat().st_size

    def test_a_different_version_under_the_number_is_a_conflict(self, source, target, files):
        source.upload("churn", files=[files[0]])
        source.upload("churn", files=[files[1]])
        target.upload("churn", files=[files[2]])  # its own version 1
        before = self.record_bytes(target, "churn", 1)
        report = source.copy_to(target)
        assert [(c.domain, c.version) for c in report.conflicts] == [("churn", 1)]
        assert report.copied == ["churn:2"] and not report.ok
        assert self.record_bytes(target, "churn", 1) == before  # never overwritten
        assert [p.read_bytes() for p in target.load("churn", 1)] == [files[2].read_bytes()]

    def test_a_number_deleted_in_the_target_is_a_conflict(self, source, target, files):
        target.upload("churn", files=[files[2]])
        target.delete("churn", 1)  # its number stays claimed: never reused
        source.upload("churn", files=[files[0]])
        report = source.copy_to(target)
        assert [(c.domain, c.version) for c in report.conflicts] == [("churn", 1)]
        from ..errors import NotFoundError

        with pytest.raises(NotFoundError):
            target.info("churn", 1)

    def test_one_version_alone_is_the_latest_and_uploads_continue_after_it(self, source, target, files):
        for f in files:
            source.upload("churn", files=[f])
        source.set_state("churn", 3, "production")
        source.set_state("churn", 1, "staging")
        report = source.copy_to(target, "churn", [3])
        assert report.copied == ["churn:3"] and target.latest("churn").version == 3
        assert target.states("churn") == {"production": 3}  # staging names a version not copied
        assert target.upload("churn", files=[files[0]]).version == 4

    def test_selection_by_state(self, source, target, files):
        for f in files:
            source.upload("churn", files=[f])
        source.set_state("churn", 2, "production")
        report = source.copy_to(target, select=["churn@production"])
        assert report.copied == ["churn:2"] and target.states("churn") == {"production": 2}

    def test_a_killed_copy_resumes(self, source, target, source_url, target_url, files, tmp_path, crash_step):
        source.upload("churn", files=files)
        source.upload("churn", files=[files[0]])
        source.set_state("churn", 1, "production")
        # The target's cache: the child finds the verdict on the server's conditional writes there.
        (tmp_path / "child-tmp").mkdir()
        assert copy_in_child(source_url, target_url, crash_step, tmp_path / "cache-dst", tmp_path / "child-tmp") == -9
        check_scratch_reclaimed(tmp_path / "child-tmp", tmp_path / "cache-dst")  # the target's scratch, or the cache's
        # Whatever the target shows is complete: a version is listed only with all its files.
        for v in target.list_versions("churn") if target.list_domains() else []:
            assert target.verify("churn", v.version).ok
        report = source.copy_to(target)
        assert report.ok and not report.conflicts
        assert [v.version for v in target.list_versions("churn")] == [2, 1]
        assert target.latest("churn").version == 2 and target.states("churn") == {"production": 1}
        for n in (1, 2):
            assert self.record_bytes(target, "churn", n) == self.record_bytes(source, "churn", n)
        assert target.verify().ok
        assert source.copy_to(target).copied == []
        events = [(e.event, e.version, e.state) for e in target.changes()]  # the killed copy's event once, not twice
        assert sorted(events[:2]) == [("copied", 1, None), ("copied", 2, None)] and events[2:] == [("state_set", 1, "production")]

    def test_a_copy_keeps_parents_and_is_in_the_feed(self, source, target, files):
        source.upload("churn", files=[files[0]])
        source.upload("churn", files=[files[1]], parents=["churn:1"], card={"description": "tuned", "license": "mit"})
        source.upload("small", files=[files[2]], parents=["churn:2"])
        report = source.copy_to(target, select=["churn:2", "small"])
        assert report.ok and sorted(report.copied) == ["churn:2", "small:1"]
        assert target.info("churn", 2).parents == ["churn:1"] and target.info("small", 1).parents == ["churn:2"]
        assert target.info("churn", 2).card == {"description": "tuned", "license": "mit"}
        tree = target.lineage("churn", 2)
        assert [(p.ref, p.exists) for p in tree.parents] == [("churn:1", False)]  # its parent was not copied
        assert [c.ref for c in tree.children] == ["small:1"]
        assert sorted((e.event, e.domain, e.version) for e in target.changes()) == [("copied", "churn", 2), ("copied", "small", 1)]

    def test_damaged_and_missing_source_objects_are_reported_and_not_copied(self, source, target, files):
        v = source.upload("churn", files=[files[0]])
        source.upload("churn", files=[files[1]])
        gone = source.upload("churn", files=[files[2]])
        key = keys.object_key(v.files[0].sha256)
        source.storage.delete(key)
        source.storage.put_file(key, files[2])  # other bytes under its name
        source.storage.delete(keys.object_key(gone.files[0].sha256))
        report = source.copy_to(target)
        assert report.copied == ["churn:2"] and not report.ok
        assert any("churn:1" in p and "corrupted" in p for p in report.problems), report.problems
        assert any("churn:3" in p and "missing from the source" in p for p in report.problems), report.problems
        assert target.storage.stat(key) is None  # a wrong object never becomes visible
        assert [v.version for v in target.list_versions("churn")] == [2]

    # --- mirror ---

    def test_mirror_follows_new_versions_states_and_deletes(self, source, target, files):
        source.upload("churn", files=[files[0]])
        source.upload("churn", files=[files[1]])
        source.upload("fraud", files=[files[2]])
        source.set_state("churn", 1, "production")
        assert source.mirror_to(target).copied == ["churn:1", "churn:2", "fraud:1"]
        source.upload("churn", files=[files[2]])
        source.set_state("churn", 3, "production")
        source.delete("churn", 2)
        source.delete_domain("fraud")
        report = source.mirror_to(target, delete=True)
        assert report.ok and report.copied == ["churn:3"]
        assert sorted(report.deleted) == ["churn:2", "fraud"]
        assert [v.version for v in target.list_versions("churn")] == [3, 1]
        assert target.states("churn") == {"production": 3} and target.list_domains() == ["churn"]
        quiet = source.mirror_to(target, delete=True)
        assert quiet.copied == quiet.deleted == quiet.states == [] and quiet.objects == 0

    def test_a_mirror_from_an_empty_source_deletes_nothing_unless_told(self, source, target, files):
        """A typo in the source's path or prefix reads as an empty store: ``delete`` must not empty the target."""
        source.upload("old", files=[files[1]])
        source.delete_domain("old")  # an empty store that exists (a local one's directory is there)
        target.upload("churn", files=[files[0]])
        with pytest.raises(UsageError, match="holds no domains, so mirroring it with delete would delete all 1 domains"):
            source.mirror_to(target, delete=True)
        assert target.list_domains() == ["churn"]
        assert source.mirror_to(target).ok  # without delete: nothing to do, nothing refused
        report = source.mirror_to(target, delete=True, allow_empty_source=True)
        assert report.deleted == ["churn"] and target.list_domains() == []

    def test_mirror_of_one_state(self, source, target, files):
        for f in files:
            source.upload("churn", files=[f])
        source.upload("fraud", files=[files[0]])  # no production state: not mirrored
        source.set_state("churn", 2, "production")
        source.set_state("churn", 3, "staging")
        report = source.mirror_to(target, states=["production"])
        assert report.copied == ["churn:2"] and target.states("churn") == {"production": 2}
        assert target.list_domains() == ["churn"]
        source.set_state("churn", 3, "production")
        assert source.mirror_to(target, states=["production"]).copied == ["churn:3"]
        source.remove_state("churn", "production")
        report = source.mirror_to(target, states=["production"], delete=True)
        assert report.deleted == ["churn@production"] and target.states("churn") == {}
        assert [v.version for v in target.list_versions("churn")] == [3, 2]  # versions stay: the source has them

    def test_mirror_of_a_state_with_prune_holds_what_the_states_name(self, source, target, files):
        for f in files:
            source.upload("churn", files=[f])
        source.set_state("churn", 1, "production")
        assert source.mirror_to(target, states=["production"], prune=True).copied == ["churn:1"]
        source.set_state("churn", 2, "production")
        report = source.mirror_to(target, states=["production"], prune=True)
        assert report.ok and report.copied == ["churn:2"] and report.deleted == ["churn:1"]  # production moved off it
        assert [v.version for v in target.list_versions("churn")] == [2] and target.states("churn") == {"production": 2}
        assert [v.version for v in source.list_versions("churn")] == [3, 2, 1]  # the source keeps them all

        target.set_state("churn", 2, "canary")  # a state of the target's own: its version stays
        source.set_state("churn", 3, "production")
        report = source.mirror_to(target, states=["production"], prune=True)
        assert report.copied == ["churn:3"] and report.deleted == [] and report.kept == ["churn:2"]
        assert [v.version for v in target.list_versions("churn")] == [3, 2]
        assert target.states("churn") == {"production": 3, "canary": 2}

        source.set_state("churn", 1, "production")  # rolled back to a version pruned before: copied again
        target.remove_state("churn", "canary")
        report = source.mirror_to(target, states=["production"], prune=True)
        assert report.ok and report.copied == ["churn:1"] and sorted(report.deleted) == ["churn:2", "churn:3"]
        assert [v.version for v in target.list_versions("churn")] == [1] and target.verify().ok
        assert [p.read_bytes() for p in target.load("churn", 1)] == [files[0].read_bytes()]

    def test_prune_needs_the_states_it_keeps(self, source, target, files):
        source.upload("churn", files=[files[0]])
        with pytest.raises(UsageError, match="name the states to mirror"):
            source.mirror_to(target, prune=True)
        assert not target.storage.exists() or target.list_domains() == []  # refused before any write

"""Conformance tests for the whole store (versions, states, integrity, crashes) on a backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from ..cache import Cache
from ..errors import (
    DomainNotFoundError,
    IntegrityError,
    StateNotFoundError,
    VersionNotFoundError,
)
from ..protocol import keys
from ..protocol.liveness import minimum_grace
from ..store import ModelStore
from .faults import HANG_TIMEOUT

CRASH_STEPS = ["serialized", "staged", "marker-written", "object-stored", "objects-stored", "claimed"]


def check_scratch_reclaimed(tmpdir: Path, cache_dir: Path) -> None:
    """A child killed mid-operation (its ``$TMPDIR`` ``tmpdir``, its cache ``cache_dir``) left
    nothing in the system's temporary directory, and what it left in its cache's scratch goes with
    the next sweep (the kernel dropped its scratch directory's lock with the process)."""
    assert os.listdir(tmpdir) == []
    Cache(cache_dir).sweep_scratch()
    assert not list(cache_dir.glob("scratch/*"))


def matrix(argname: str, values, ids=None) -> pytest.MarkDecorator:
    """Parametrize a kit test over a matrix of cases: the points at which it stops a writer (in the
    order the writer passes them), the kinds of writer it poses as, the hostile variants of one
    document. Every case, or only the first and the last where the kit class says
    ``full_matrices = False`` (:meth:`StoreFixtures.pytest_generate_tests`)."""
    return pytest.mark.modelstore_matrix(argname, list(values), ids=ids)


def collect_now(store, **kwargs):
    """``gc`` with the shortest grace, once that grace has passed since anything stopped: for tests
    that set a short ``$MODELSTORE_HEARTBEAT`` (the ``fast_heartbeat`` fixture)."""
    # A marker lives max(grace, 5 heartbeats) + 2 resolutions by the store's times, which can read
    # one resolution more or less than the real time between two of them.
    time.sleep(minimum_grace() * 1.5 + 3 * store.storage.time_resolution)
    return store.gc(grace=minimum_grace(), **kwargs)


class StoreFixtures:
    """The fixtures of the store-level kits: subclass a kit and provide ``store_url``."""

    #: Whether each matrix of a kit test (``@matrix``: an upload, a feed append, a state move killed
    #: at each of its checkpoints; uploads paused as every kind of writer; the hostile variants of a
    #: record, a hint, a state, a summary) runs in full, or only its first and last case. In full on
    #: the local store (the core's suite) and one remote backend (the reference, GCS's suite);
    #: another backend may set ``False``: the cases between run the same core code over the same
    #: storage primitives, which its ``StorageContract`` checks.
    full_matrices: bool = True

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        marker = metafunc.definition.get_closest_marker("modelstore_matrix")
        if marker is None:
            return
        argname, values = marker.args
        ids = marker.kwargs.get("ids")
        if not self.full_matrices and len(values) > 2:
            values, ids = [values[0], values[-1]], ids and [ids[0], ids[-1]]
        metafunc.parametrize(argname, values, ids=ids)

    @pytest.fixture(autouse=True)
    def _isolated(self, isolated):
        """Never the user's own store or cache (the kit's pytest plugin provides ``isolated``)."""

    @pytest.fixture
    def store_url(self) -> str:  # pragma: no cover - provided by the subclass
        raise NotImplementedError("provide a `store_url` fixture naming a fresh, empty store")

    @pytest.fixture
    def store_options(self) -> dict:
        """Keyword options for ``ModelStore(url, **options)``."""
        return {}

    @pytest.fixture
    def store_env(self) -> dict:
        """Environment variables that other processes need to open the store."""
        return {}

    @pytest.fixture
    def store(self, store_url, store_options, store_env, tmp_path, monkeypatch) -> ModelStore:
        for name, value in store_env.items():
            monkeypatch.setenv(name, value)
        return ModelStore(store_url, cache_dir=tmp_path / "cache", **store_options)

    @pytest.fixture
    def model_file(self, tmp_path) -> Path:
        path = tmp_path / "model.bin"
        path.write_bytes(os.urandom(200_000))
        return path

    def run_worker(self, store_url, store_options, store_env, tmp_path, *args, check=True, **popen):
        """``modelstore_core.testing.worker`` in a child process with its own cache
        (``worker-cache``) and system temporary directory (``worker-tmp``)."""
        (tmp_path / "worker-tmp").mkdir(exist_ok=True)
        env = {**os.environ, **store_env, "MODELSTORE_CACHE_DIR": str(tmp_path / "worker-cache"), "TMPDIR": str(tmp_path / "worker-tmp")}
        cmd = [sys.executable, "-m", "modelstore_core.testing.worker", store_url, *args, "--options", json.dumps(store_options)]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, check=check, timeout=HANG_TIMEOUT, **popen)


class SecondaryBackend:
    """Mixed in before the kits by a backend's suite that is not the reference one: each matrix at
    its first and last case (``full_matrices``), and half the reference's writers racing each
    other (``StoreContract``'s and ``FeedContract``'s ``writers``, ``LivenessContract``'s
    ``stress_uploads``). All of them run against the local store and the reference remote (GCS in
    this project), and the backend's ``StorageContract`` checks the primitives they share."""

    full_matrices = False
    writers = 4
    stress_uploads = 6


class StoreContract(StoreFixtures):
    """Subclass and provide a ``store_url`` fixture naming a fresh, empty store."""

    #: concurrent writer processes in the concurrency test
    writers = 8

    # --- basics -------------------------------------------------------------------------

    def test_round_trip_and_listing(self, store: ModelStore, model_file: Path, tmp_path):
        assert store.list_domains() == []
        v1 = store.upload("churn", files=[model_file], tags={"team": "risk"})
        (tmp_path / "features.json").write_text('{"f": 1}')
        v2 = store.upload("churn", files=[model_file], extras=[tmp_path / "features.json"])
        assert (v1.version, v2.version) == (1, 2)
        assert store.list_domains() == ["churn"]
        assert [v.version for v in store.list_versions("churn")] == [2, 1]
        assert store.latest("churn").version == 2
        assert store.info("churn", 1).tags == {"team": "risk"}
        [path] = store.load("churn", version=1)
        assert path.read_bytes() == model_file.read_bytes()
        out = store.download("churn", to=tmp_path / "out")
        assert (out / "model.bin").read_bytes() == model_file.read_bytes()
        assert (out / "extras" / "features.json").read_text() == '{"f": 1}'

    def test_missing_things_raise_typed_errors(self, store: ModelStore, model_file: Path):
        with pytest.raises(DomainNotFoundError):
            store.latest("nope")
        with pytest.raises(DomainNotFoundError):
            store.load("nope")
        store.upload("d", files=[model_file])
        with pytest.raises(VersionNotFoundError):
            store.load("d", version=7)
        with pytest.raises(StateNotFoundError):
            store.load("d", state="production")

    def test_states_and_delete(self, store: ModelStore, model_file: Path):
        for _ in range(3):
            store.upload("d", files=[model_file])
        store.set_state("d", 2, "production")
        store.set_state("d", 3, "staging")
        assert store.states("d") == {"production": 2, "staging": 3}
        store.set_state("d", 1, "production")  # moves
        assert store.states("d")["production"] == 1
        store.delete("d", 3)
        assert store.latest("d").version == 2
        assert store.states("d") == {"production": 1}
        assert store.upload("d", files=[model_file]).version == 4  # numbers are never reused
        store.remove_state("d", "production")
        assert store.states("d") == {}
        with pytest.raises(VersionNotFoundError):
            store.set_state("d", 3, "production")

    def test_retention_by_the_store_s_clock_and_a_stored_policy(self, store: ModelStore, tmp_path):
        """``retain`` here: ages from this backend's own timestamps (versions committed just now are
        young), a state protects, the bytes ``gc`` reclaims, a stored policy read back and applied by
        ``gc``, each delete in the change feed."""
        for i in range(5):
            (tmp_path / f"r{i}.bin").write_bytes(os.urandom(1000 + i))
            store.upload("r", files=[tmp_path / f"r{i}.bin"])
        store.set_state("r", 2, "production")
        assert store.retain("r", keep_last=1, older_than=timedelta(days=1)).deleted == []  # all young by the store's clock
        plan = store.retain("r", keep_last=2, older_than=0)
        assert plan.deleted == ["r:3", "r:1"] and plan.domains[0].protected == {2: ["state production"]}
        assert plan.bytes == 1002 + 1000
        assert store.retain("r", keep_last=2, save=True).deleted == plan.deleted
        assert store.retention_policy("r").keep_last == 2
        report = store.gc()
        assert report.retention.deleted == ["r:3", "r:1"]
        assert [v.version for v in store.list_versions("r")] == [5, 4, 2]
        assert [e.version for e in store.changes("r") if e.event == "deleted"] == [3, 1]

    def test_reupload_writes_no_new_objects(self, store: ModelStore, model_file: Path):
        store.upload("d", files=[model_file])
        before = [i.key for i in store.storage.list(keys.OBJECTS)]
        store.upload("d", files=[model_file])
        assert [i.key for i in store.storage.list(keys.OBJECTS)] == before

    def test_corrupted_object_is_detected_before_use(self, store, store_url, store_options, model_file, tmp_path):
        import io

        v = store.upload("d", files=[model_file])
        key = keys.object_key(v.files[0].sha256)
        data = bytearray(store.storage.read(key)[0])
        data[1234] ^= 0xFF
        store.storage.put(key, io.BytesIO(bytes(data)))
        fresh = ModelStore(store_url, cache_dir=tmp_path / "fresh-cache", **store_options)
        for loader in (lambda: store.load("d"), lambda: fresh.load("d"), lambda: store.download("d", to=tmp_path / "o")):
            with pytest.raises(IntegrityError, match="model.bin"):
                loader()
        assert not (tmp_path / "o" / "model.bin").exists()
        report = store.verify()
        assert [(p.file, p.problem) for p in report.problems] == [("model.bin", "corrupted")]

    def test_progress_reaches_the_total_and_reupload_writes_nothing(self, store, tmp_path):
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(9 * (1 << 20) + 5))  # over common multipart thresholds
        small = tmp_path / "small.bin"
        small.write_bytes(b"tiny")
        total = big.stat().st_size + small.stat().st_size

        def recorder():
            calls: list[tuple[int, int]] = []
            return calls, lambda done, of: calls.append((done, of))

        calls, callback = recorder()
        v = store.upload("p", files=[big, small], progress=callback)
        assert v.bytes_written == total
        dones = [done for done, _ in calls]
        assert dones == sorted(dones) and calls[-1] == (total, total) and all(of == total for _, of in calls)
        calls, callback = recorder()
        assert store.upload("p", files=[big, small], progress=callback).bytes_written == 0
        assert calls[-1] == (total, total)
        for operation in (
            lambda cb: store.download("p", to=tmp_path / "out", progress=cb),
            lambda cb: store.load("p", progress=cb),
            lambda cb: store.load("p", progress=cb),  # cached: verified again
            lambda cb: store.verify("p", progress=cb),
        ):
            calls, callback = recorder()
            operation(callback)
            assert calls and calls[-1] == (total, total)
            assert [d for d, _ in calls] == sorted(d for d, _ in calls)

    # --- several processes ----------------------------------------------------------------

    def test_concurrent_uploads_get_distinct_versions(self, store, store_url, store_options, store_env, tmp_path):
        start = tmp_path / "start"
        procs, ready = [], []
        env = {**os.environ, **store_env, "MODELSTORE_CACHE_DIR": str(tmp_path / "wc")}
        for i in range(self.writers):
            f = tmp_path / f"model-{i}.bin"
            f.write_bytes(f"model {i}".encode() * 1000)
            ready.append(tmp_path / f"ready-{i}")
            cmd = [
                sys.executable,
                "-m",
                "modelstore_core.testing.worker",
                store_url,
                "race",
                str(f),
                "--options",
                json.dumps(store_options),
                "--ready-file",
                str(ready[-1]),
                "--start-file",
                str(start),
            ]
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        # Every writer started (on a busy machine that takes seconds, one after another) before any
        # uploads: the uploads race each other, not the other writers' imports.
        deadline = time.monotonic() + HANG_TIMEOUT
        while not all(r.exists() for r in ready):
            failed = [p for p in procs if p.poll() is not None]
            assert not failed and time.monotonic() < deadline, [p.communicate() for p in failed]
            time.sleep(0.01)
        start.touch()
        outputs = [p.communicate(timeout=HANG_TIMEOUT) for p in procs]
        assert [p.returncode for p in procs] == [0] * self.writers, [err for _, err in outputs]
        got = sorted(int(out) for out, _ in outputs)
        assert got == list(range(1, self.writers + 1))
        versions = store.list_versions("race")
        assert sorted(v.version for v in versions) == got
        contents = {Path(store.load("race", version=v.version)[0]).read_bytes() for v in versions}
        assert len(contents) == self.writers  # none overwritten
        assert store.latest("race").version == self.writers

    @matrix("step", CRASH_STEPS)
    def test_killed_upload_leaves_no_visible_version(
        self, store, store_url, store_options, store_env, tmp_path, model_file, step, fast_heartbeat
    ):
        store.upload("d", files=[model_file])
        other = tmp_path / "other.bin"
        other.write_bytes(os.urandom(100_000))
        result = self.run_worker(store_url, store_options, store_env, tmp_path, "d", str(other), "--crash-at", step, check=False)
        assert result.returncode == -9, result.stderr
        check_scratch_reclaimed(tmp_path / "worker-tmp", tmp_path / "worker-cache")  # the store's scratch, or its cache's
        assert [v.version for v in store.list_versions("d")] == [1]
        assert store.latest("d").version == 1
        collect_now(store)  # once a grace passed since the killed upload's last heartbeat
        assert store.verify().ok
        # Objects of the killed upload are gone; the committed version still loads.
        assert len(list(store.storage.list(keys.OBJECTS))) == 1
        assert list(store.storage.list(keys.UPLOADS)) == []
        [path] = store.load("d", version=1)
        assert path.read_bytes() == model_file.read_bytes()
        assert store.upload("d", files=[other]).version >= 2

    def test_gc_spares_committed_versions_and_live_uploads(self, store, model_file):
        store.upload("d", files=[model_file])
        v2 = store.upload("d", files=[model_file.parent / model_file.name], extras=[])
        assert store.gc().empty
        store.delete("d", v2.version)  # same object as v1: still referenced
        assert store.gc().objects == []
        assert store.load("d")[0].read_bytes() == model_file.read_bytes()

"""Conformance tests for liveness on a backend: ``gc`` judges uploads by what the store records.

Subclass :class:`LivenessContract` with the same fixtures as ``StoreContract`` (``store_url``, and
``store_options``/``store_env`` for other processes). Every test runs real upload and ``gc``
processes (:mod:`.worker`) with a short heartbeat, so that a grace passes in a fraction of a second:

* an upload paused longer than several graces survives repeated ``gc --apply`` runs while its
  heartbeat beats, whether it looks like this machine's process, one in another PID namespace
  (a pid this machine cannot see), one on another host, or one whose clock is hours behind or
  ahead; then it commits a complete version;
* an upload killed mid-way is collected once the store shows its marker older than the grace,
  and not before;
* a grace shorter than five heartbeats is refused;
* a re-upload that deduplicates against an object a paused ``gc`` run is about to delete still
  commits a complete version;
* under concurrent uploads (new and re-uploaded content), deletes and ``gc`` loops, no committed
  version ever references a missing object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..errors import UsageError
from ..protocol import keys
from ..protocol.liveness import minimum_grace
from .store_contract import StoreFixtures, collect_now, matrix

#: Seconds between heartbeats in these tests; the shortest grace is five of them.
HEARTBEAT = 0.2


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Until ``path`` exists (the process reached its pause); fails if the process ends first."""
    deadline = time.monotonic() + timeout  # only bounds a hang: the step itself takes a moment
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the worker ended before its pause ({proc.returncode}): {err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the worker did not reach its pause in {timeout} s")
        time.sleep(0.01)


class LivenessContract(StoreFixtures):
    """Liveness of uploads and ``gc`` across processes, PID namespaces, hosts and clocks."""

    #: concurrent writer processes of the stress test, and uploads each makes
    stress_writers = 3
    stress_uploads = 12

    @pytest.fixture(autouse=True)
    def _fast_heartbeat(self, monkeypatch):
        monkeypatch.setenv("MODELSTORE_HEARTBEAT", str(HEARTBEAT))

    def start(self, store_url, store_options, store_env, tmp_path, *args) -> subprocess.Popen:
        env = {**os.environ, **store_env, "MODELSTORE_CACHE_DIR": str(tmp_path / "worker-cache")}
        cmd = [sys.executable, "-m", "modelstore_core.testing.worker", store_url, *args, "--options", json.dumps(store_options)]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # --- uploads that are alive ------------------------------------------------------------------

    @matrix(
        "pose",
        [
            [],
            ["--clock-offset", "7200"],  # a clock two hours ahead
            # a process of another PID namespace (a pid no process of this machine has), on another
            # host, whose clock is two hours behind
            ["--as-pid", "4194000", "--as-host", "another-machine", "--clock-offset", "-7200"],
        ],
        ids=["this-process", "clock-ahead", "another-machine-clock-behind"],
    )
    def test_a_paused_upload_outlives_several_graces(self, store, store_url, store_options, store_env, tmp_path, pose):
        model = tmp_path / "model.bin"
        model.write_bytes(os.urandom(50_000))
        paused, resume = tmp_path / "paused", tmp_path / "resume"
        proc = self.start(
            store_url, store_options, store_env, tmp_path, "d", str(model),
            "--pause-at", "objects-stored", "--paused-file", str(paused), "--resume-file", str(resume), *pose,
        )  # fmt: skip
        try:
            wait_for(paused, proc)
            grace = minimum_grace()
            for _ in range(3):  # three graces with the upload paused between its objects and its record
                report = store.gc(grace=grace)
                assert report.objects == [] and report.markers == [], report
                time.sleep(grace)
            resume.touch()
            out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == 0, err
        assert store.load("d", version=int(out))[0].read_bytes() == model.read_bytes()
        assert store.verify().ok

    def test_a_killed_upload_is_collected_after_the_grace_and_not_before(self, store, store_url, store_options, store_env, tmp_path):
        model = tmp_path / "model.bin"
        model.write_bytes(os.urandom(50_000))
        proc = self.start(store_url, store_options, store_env, tmp_path, "d", str(model), "--crash-at", "objects-stored")
        proc.communicate(timeout=120)
        assert proc.returncode == -9
        long_grace = 600.0  # the marker's last heartbeat is moments old: younger than this
        spared = store.gc(grace=long_grace)
        assert spared.objects == [] and spared.markers == []
        assert len(list(store.storage.list(keys.OBJECTS))) == 1
        report = collect_now(store)
        assert len(report.objects) == 1 and len(report.markers) == 1
        assert list(store.storage.list(keys.OBJECTS)) == [] and list(store.storage.list(keys.UPLOADS)) == []

    def test_a_grace_shorter_than_three_heartbeats_is_refused(self, store):
        with pytest.raises(UsageError, match="5 heartbeats"):
            store.gc(grace=HEARTBEAT)
        assert store.gc(grace=minimum_grace()).empty

    # --- gc against uploads that deduplicate ---------------------------------------------------

    def test_a_reupload_deduplicating_against_an_object_gc_is_deleting_stays_complete(
        self, store, store_url, store_options, store_env, tmp_path
    ):
        model = tmp_path / "model.bin"
        model.write_bytes(os.urandom(50_000))
        store.upload("d", files=[model])
        store.delete("d", 1)  # its object is garbage now
        time.sleep(minimum_grace() * 1.5)  # the first upload's marker has aged out too
        paused, resume = tmp_path / "paused", tmp_path / "resume"
        gc = self.start(
            store_url, store_options, store_env, tmp_path,
            "--gc", str(minimum_grace()), "--pause-at", "gc-listed", "--paused-file", str(paused), "--resume-file", str(resume),
        )  # fmt: skip
        try:
            wait_for(paused, gc)  # gc listed everything: the object is unreferenced and no marker lists it
            resumed = False

            def resume_gc(step: str) -> None:  # once this upload found the object in place (deduplicated)
                nonlocal resumed
                if step == "objects-stored" and not resumed:
                    resumed = True
                    resume.touch()
                    time.sleep(HEARTBEAT)  # gc goes on meanwhile

            from ..protocol import commit

            before, commit.checkpoint = commit.checkpoint, resume_gc
            try:
                v = store.upload("d", files=[model])
            finally:
                commit.checkpoint = before
            out, err = gc.communicate(timeout=120)
        finally:
            gc.kill()
        assert gc.returncode == 0, err
        assert store.load("d", version=v.version)[0].read_bytes() == model.read_bytes()
        report = store.verify()
        assert report.ok, report.problems

    def test_no_committed_version_references_a_missing_object_under_uploads_deletes_and_gc(
        self, store, store_url, store_options, store_env, tmp_path
    ):
        contents = [os.urandom(20_000) for _ in range(3)]  # few contents: uploads keep deduplicating
        for i, data in enumerate(contents):
            (tmp_path / f"m{i}.bin").write_bytes(data)
        start = tmp_path / "start"
        script = (
            "import os, random, sys, time\n"
            "from modelstore_core import ModelStore\n"
            "store = ModelStore(sys.argv[1], **__import__('json').loads(sys.argv[2]))\n"
            "role, n, folder = sys.argv[3], int(sys.argv[4]), sys.argv[5]\n"
            "rng = random.Random(os.getpid())\n"
            "while not os.path.exists(os.path.join(folder, 'start')): time.sleep(0.002)\n"
            "for i in range(n):\n"
            "    if role == 'upload':\n"
            "        store.upload('d', files=[os.path.join(folder, f'm{rng.randrange(3)}.bin')])\n"
            "    elif role == 'delete':\n"
            "        versions = [v.version for v in store.list_versions('d')] if 'd' in store.list_domains() else []\n"
            "        if len(versions) > 1: store.delete('d', rng.choice(versions[1:]))\n"
            "        time.sleep(0.05)\n"
            "    else:\n"
            f"        store.gc(grace={minimum_grace()})\n"
        )
        env = {**os.environ, **store_env, "MODELSTORE_CACHE_DIR": str(tmp_path / "worker-cache")}
        options = json.dumps(store_options)
        roles = [("upload", self.stress_uploads)] * self.stress_writers + [("delete", self.stress_uploads), ("gc", self.stress_uploads)]
        procs = [
            subprocess.Popen([sys.executable, "-c", script, store_url, options, role, str(n), str(tmp_path)], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for role, n in roles
        ]  # fmt: skip
        start.touch()
        outputs = [p.communicate(timeout=600) for p in procs]
        assert [p.returncode for p in procs] == [0] * len(procs), [err[-2000:] for _, err in outputs]
        report = store.verify()
        assert report.ok, report.problems
        for v in store.list_versions("d"):
            assert store.load("d", version=v.version)[0].read_bytes() in contents

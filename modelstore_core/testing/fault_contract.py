"""Conformance tests for a network backend's retries, through a :class:`~.faults.FaultProxy`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from ..errors import StorageError, VersionNotFoundError
from ..protocol import keys, read
from ..store import ModelStore
from .faults import ACTIONS, HANG_TIMEOUT, FaultProxy, every_nth
from .store_contract import collect_now


class FaultContract:
    """Subclass and provide ``store_url`` (a fresh, empty store) and ``upstream_port`` (the test
    server's port on 127.0.0.1) fixtures, and say how your backend is configured:

    - :attr:`endpoint_option`: the ``ModelStore`` option that sends requests to another endpoint;
    - :attr:`retry_options`: options for ``"many"`` retries (enough for a fault every 4th
      request), the ``"default"``, ``"few"`` (gives up after at least 2 attempts) and ``"none"``
      (one attempt, or a deadline short enough to give up quickly);
    - :meth:`is_version_write`: which request writes a version record;
    - :attr:`error_bodies` and :attr:`error_content_type`: the service's own error answers.
    """

    @pytest.fixture(autouse=True)
    def _isolated(self, isolated):
        """Never the user's own store or cache (the kit's pytest plugin provides ``isolated``)."""

    endpoint_option = "endpoint"
    retry_options: dict[str, dict] = {"many": {}, "default": {}, "few": {}, "none": {}}
    #: exact attempts that ``retry_options["few"]`` allow, where the backend counts attempts
    #: (None: it has a deadline; at least 2 attempts are checked)
    few_attempts: int | None = None
    #: sizes of the three files uploaded through faults (small, large, tiny); a large one past the
    #: backend's single-request limit puts its chunked or multipart path through faults too
    upload_sizes = (150_000, 3 << 20, 10)
    #: at least this many faults in the test through every 4th request failing
    min_faults = 10
    #: a regular expression for the StorageError raised when every request meets a 500 and
    #: ``retry_options["none"]`` give up
    error_match = ""
    error_bodies: dict[int, bytes] = {}
    error_content_type = "text/plain"

    @pytest.fixture
    def store_url(self) -> str:  # pragma: no cover - provided by the subclass
        raise NotImplementedError("provide a `store_url` fixture naming a fresh, empty store")

    @pytest.fixture
    def upstream_port(self) -> int:  # pragma: no cover - provided by the subclass
        raise NotImplementedError("provide an `upstream_port` fixture: the test server's port on 127.0.0.1")

    @pytest.fixture
    def store_env(self) -> dict:
        """Environment variables that other processes need to open the store."""
        return {}

    def is_version_write(self, method: str, target: str, body: bytes) -> bool:  # pragma: no cover
        raise NotImplementedError("say which request writes a version record")

    def is_states_write(self, method: str, target: str, body: bytes) -> bool:  # pragma: no cover
        raise NotImplementedError("say which request writes a domain's states.json")

    @pytest.fixture
    def direct(self, store_url, tmp_path):
        """The store opened straight on the server, to check what the faulty runs left."""
        with ModelStore(store_url, cache_dir=tmp_path / "direct-cache") as store:
            yield store

    def proxy(self, upstream_port: int, decide=None) -> FaultProxy:
        """A started :class:`FaultProxy` answering with this service's error bodies."""
        return FaultProxy(upstream_port, decide, self.error_bodies, self.error_content_type).start()

    def options(self, proxy: FaultProxy, retries: str = "default", **more) -> dict:
        """``ModelStore`` options sending every request through ``proxy``."""
        return {self.endpoint_option: proxy.endpoint, **self.retry_options[retries], **more}

    def start_worker(self, store_url, store_env, options, tmp_path, *args) -> subprocess.Popen:
        """``python -m modelstore_core.testing.worker store_url *args`` with these options, started."""
        env = {**os.environ, **store_env, "MODELSTORE_CACHE_DIR": str(tmp_path / "wc")}
        cmd = [sys.executable, "-m", "modelstore_core.testing.worker", store_url, *args, "--options", json.dumps(options)]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_uploads_and_loads_complete_through_faults(self, store_url, upstream_port, direct, tmp_path):
        """Every 4th request fails (500, 503, dropped, answered-then-dropped, cut): retries carry every
        upload (small and large files), state change and load through."""
        names = ("small.bin", "big.bin", "tiny.txt")
        files = {name: os.urandom(size) for name, size in zip(names, self.upload_sizes, strict=True)}
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
        small, big, tiny = (tmp_path / name for name in names)
        with self.proxy(upstream_port, every_nth(4)) as proxy:
            store = ModelStore(store_url, cache_dir=tmp_path / "cache", **self.options(proxy, "many"))
            v1 = store.upload("d", files=[small, big])
            v2 = store.upload("d", files=[tiny], extras=[small])
            v3 = store.upload("d", files=[big])
            store.set_state("d", v2.version, "production")
            assert [v.version for v in store.list_versions("d")] == [3, 2, 1]
            loaded = {p.name: p.read_bytes() for v in (v1, v2, v3) for p in store.load("d", version=v.version)}
            assert loaded == files
            assert store.states("d") == {"production": 2}
            store.close()
        assert set(proxy.faults()) == set(ACTIONS), proxy.faults()  # every kind of fault happened
        assert sum(proxy.faults().values()) >= self.min_faults, proxy.faults()
        assert direct.verify().ok
        assert direct.gc().empty  # nothing half-written was left behind

    def test_a_record_whose_answers_are_cut_off_three_times_is_read(self, store_url, upstream_port, direct, tmp_path):
        """Three answers in a row broken off mid-body (a flaky link; or, in a writer, its heartbeat's
        requests taking the good answers between a read's tries): the record is still read, from
        the fourth. The Azure SDK gives a body three tries and S3's botocore none of its own."""
        model = tmp_path / "m.bin"
        model.write_bytes(os.urandom(1000))
        direct.upload("d", files=[model], metrics={"auc": 0.5})
        cut: list[str] = []

        def decide(method, target, headers, body):
            if method == "GET" and "versions" in target and "000000001" in target and len(cut) < 3:
                cut.append(target)
                return "cut"
            return None

        with self.proxy(upstream_port, decide) as proxy:
            with ModelStore(store_url, cache_dir=tmp_path / "c", **self.options(proxy)) as store:
                assert store.info("d", 1).metadata["metrics"] == {"auc": 0.5}
        assert len(cut) == 3, proxy.log

    def test_a_file_whose_download_is_cut_off_three_times_is_loaded(self, store_url, upstream_port, direct, tmp_path):
        """The same for an artifact's download: three answers in a row broken off mid-body, and the
        file still loads, whole and verified."""
        model = tmp_path / "m.bin"
        model.write_bytes(os.urandom(200_000))
        direct.upload("d", files=[model])
        cut: list[str] = []

        def decide(method, target, headers, body):
            if method == "GET" and "objects" in target and len(cut) < 3:
                cut.append(target)
                return "cut"
            return None

        with self.proxy(upstream_port, decide) as proxy:
            with ModelStore(store_url, cache_dir=tmp_path / "c", **self.options(proxy)) as store:
                assert store.load("d")[0].read_bytes() == model.read_bytes()
        assert len(cut) == 3, proxy.log

    def test_listings_cost_a_request_per_page(self, store_url, upstream_port, direct, tmp_path):
        """``list_versions`` is a request per page of versions, and the listing of every domain with
        its versions (what ``modelstore ls`` shows) a request per page of keys, however many domains:
        counted on the wire, with pages of 5 keys."""
        from .history import build_domains, build_history

        build_history(direct, "d", 23, tmp_path)
        domains = build_domains(direct, 12, tmp_path)
        every_key = len(list(direct.storage.list(keys.DOMAINS)))
        with self.proxy(upstream_port) as proxy:
            with ModelStore(store_url, cache_dir=tmp_path / "c", **self.options(proxy, page_size=5)) as store:
                assert [v.version for v in store.list_versions("d")] == list(range(23, 0, -1))
                listed_versions = len(proxy.log)
                overview = read.every_version(store.storage)
                listed_all = len(proxy.log) - listed_versions
        assert listed_versions <= math.ceil(23 / 5) + 1, proxy.log
        assert {name: [n for n, _ in versions] for name, versions in overview.items()} == {
            "d": list(range(23, 0, -1)),
            **{name: [1] for name in domains},
        }
        assert every_key > 13 * 2 and listed_all <= math.ceil(every_key / 5) + 1, (every_key, proxy.log)

    def test_lost_answer_to_the_commit_is_recognised(self, store_url, upstream_port, direct, tmp_path):
        """The version record's write takes effect but its answer is lost: the client retries, meets
        its own create-if-absent precondition, and the backend recognises the record as its own
        instead of failing the upload."""
        model = tmp_path / "m.bin"
        model.write_bytes(os.urandom(1000))
        seen = []

        def decide(method, target, headers, body):
            if self.is_version_write(method, target, body):
                seen.append(target)
                return "drop-after" if len(seen) == 1 else None
            return None

        with self.proxy(upstream_port, decide) as proxy:
            with ModelStore(store_url, cache_dir=tmp_path / "c", **self.options(proxy)) as store:
                assert store.upload("d", files=[model]).version == 1
        assert len(seen) == 2 and proxy.faults() == {"drop-after": 1}
        assert [v.version for v in direct.list_versions("d")] == [1]
        assert direct.load("d")[0].read_bytes() == model.read_bytes()

    def test_lost_answer_to_a_state_move_is_recognised(self, store_url, upstream_port, direct, tmp_path):
        """The write of ``states.json`` takes effect but its answer is lost, and before the writer
        tries again another writer moves a state (the document is no longer the writer's): the
        writer finds its change in the feed and does not make it again (one ``state_set`` each)."""
        model = tmp_path / "m.bin"
        model.write_bytes(os.urandom(1000))
        direct.upload("d", files=[model])
        direct.upload("d", files=[model])
        seen = []

        def decide(method, target, headers, body):
            if self.is_states_write(method, target, body):
                seen.append(target)
                if len(seen) == 1:
                    return "drop-after"
                if len(seen) == 2:  # the writer's next try: someone else gets there first
                    direct.set_state("d", 1, "staging")
            return None

        with self.proxy(upstream_port, decide) as proxy:
            with ModelStore(store_url, cache_dir=tmp_path / "c", **self.options(proxy)) as store:
                store.set_state("d", 2, "production")
        assert proxy.faults() == {"drop-after": 1}
        assert direct.states("d") == {"production": 2, "staging": 1}
        events = [(e.event, e.version, e.state) for e in direct.changes()]
        assert events == [("uploaded", 1, None), ("uploaded", 2, None), ("state_set", 2, "production"), ("state_set", 1, "staging")]

    def test_upload_failing_at_the_commit_leaves_nothing_visible(
        self, store_url, upstream_port, store_env, direct, tmp_path, fast_heartbeat
    ):
        """Every write of a version record fails (503 until retries run out): the upload, in another
        process, raises a StorageError, no version is listed, and gc reclaims the objects it stored."""
        model = tmp_path / "m.bin"
        model.write_bytes(os.urandom(300_000))
        decide = every_nth(1, actions=("503",), only=self.is_version_write)
        with self.proxy(upstream_port, decide) as proxy:
            worker = self.start_worker(store_url, store_env, self.options(proxy, "few"), tmp_path, "d", str(model))
            _, err = worker.communicate(timeout=HANG_TIMEOUT)
        assert worker.returncode != 0 and "StorageError" in err, err
        if self.few_attempts is None:
            assert proxy.faults().get("503", 0) >= 2  # retried, then gave up
        else:
            assert proxy.faults() == {"503": self.few_attempts}, "\n".join(map(str, proxy.log))
        assert direct.list_versions("d") == []
        with pytest.raises(VersionNotFoundError):
            direct.latest("d")
        assert len(list(direct.storage.list(keys.OBJECTS))) == 1  # stored, never committed
        report = collect_now(direct)  # once a grace passed since the failed upload's last heartbeat
        assert len(report.objects) == 1
        assert list(direct.storage.list(keys.OBJECTS)) == [] and list(direct.storage.list(keys.UPLOADS)) == []

    def test_the_feed_under_faults(self, store_url, upstream_port, store_env, direct, tmp_path):
        """Every 4th request of each writer fails (each kind of fault): writer processes upload and
        move a state, each through a proxy of its own (one shared proxy's every 4th request can hit
        the same writer's retries again and again); every committed upload and state move is in the
        change feed exactly once, in order (:class:`~.feed_contract.FeedContract`'s checks)."""
        from collections import Counter
        from contextlib import ExitStack

        from .feed_contract import WRITER, check_feed

        writers, each = 4, 2
        start = tmp_path / "start"
        with ExitStack() as stack:
            proxies = [stack.enter_context(self.proxy(upstream_port, every_nth(4))) for _ in range(writers)]
            env = {**os.environ, **store_env, "MODELSTORE_CACHE_DIR": str(tmp_path / "wc")}
            procs = []
            for i, proxy in enumerate(proxies):
                model = tmp_path / f"m{i}.bin"
                model.write_bytes(os.urandom(1000))
                args = [store_url, json.dumps(self.options(proxy, "many")), str(each), str(model), str(start)]
                cmd = [sys.executable, "-c", WRITER, *args]
                procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            start.touch()
            outputs = [p.communicate(timeout=600) for p in procs]
        assert [p.returncode for p in procs] == [0] * writers, [err[-2000:] for _, err in outputs]
        faults = Counter()
        for proxy in proxies:
            faults.update(proxy.faults())
        assert sum(faults.values()) >= self.min_faults, faults
        events = list(direct.changes())
        check_feed(events, direct)
        assert Counter(e.event for e in events) == {"uploaded": writers * each, "state_set": writers * each}

    def test_error_without_retries_is_a_storage_error(self, store_url, upstream_port, tmp_path):
        model = tmp_path / "m.bin"
        model.write_bytes(b"x" * 1000)
        with self.proxy(upstream_port, every_nth(1, actions=("500",))) as proxy:
            store = ModelStore(store_url, cache_dir=tmp_path / "c", **self.options(proxy, "none"))
            with pytest.raises(StorageError, match=self.error_match):
                store.upload("d", files=[model])
            store.close()

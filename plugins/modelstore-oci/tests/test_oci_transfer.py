"""How bytes move: chunked or monolithic uploads, a push killed in the middle and run again (only
the missing blobs go up), and big files in constant memory both ways (in child processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import api, manifest_of, open_store, writes

from modelstore_core.testing.faults import FaultProxy

MiB = 1 << 20


def test_big_blobs_go_up_in_chunks_small_ones_in_one_put(tmp_path, repo, registry):
    (tmp_path / "big.bin").write_bytes(os.urandom(3 * MiB))
    (tmp_path / "small.bin").write_bytes(b"small")
    store = open_store(tmp_path, "a")
    store.upload("churn", files=[tmp_path / "big.bin", tmp_path / "small.bin"])
    with FaultProxy(registry.port) as proxy:
        via = repo.replace(registry.host, f"127.0.0.1:{proxy.port}")
        store.push("churn", via, plain_http=True, chunk_size=MiB)
    sent = writes(proxy.log)
    assert sent.count("chunk") == 4  # 3 MiB and the tar's headers: four 1 MiB chunks; the rest in single PUTs
    assert sent.count("upload") == 4 and sent[-1] == "manifest 1"
    pulled = open_store(tmp_path, "b").pull(f"{repo}:1", plain_http=True)
    assert sorted(f.sha256 for f in pulled.files) == sorted(f.sha256 for f in store.info("churn", 1).files)


def test_a_blob_the_registry_refuses_in_one_request_goes_up_in_chunks(tmp_path, repo, registry):
    (tmp_path / "big.bin").write_bytes(os.urandom(80 * MiB))
    store = open_store(tmp_path, "a")
    store.upload("churn", files=[tmp_path / "big.bin"])

    def too_large(method, target, headers, body):  # a proxy in front of the registry that takes 72 MiB at most
        return "413" if len(body) > 72 * MiB else None

    with FaultProxy(registry.port, too_large) as proxy:
        via = repo.replace(registry.host, f"127.0.0.1:{proxy.port}")
        store.push("churn", via, plain_http=True)
    assert proxy.faults() == {"413": 1}
    assert writes(proxy.log).count("chunk") == 2  # then in chunks of 64 MiB
    pulled = open_store(tmp_path, "b").pull(f"{repo}:1", plain_http=True)
    assert [f.sha256 for f in pulled.files] == [f.sha256 for f in store.info("churn", 1).files]


PUSH = """
import sys
from modelstore_core import ModelStore
store = ModelStore(sys.argv[1], cache_dir=sys.argv[2])
store.push("churn", sys.argv[3], plain_http=True, chunk_size=1 << 20, parallel=1)
"""


def test_a_push_killed_in_the_middle_uploads_only_the_missing_blobs_when_run_again(tmp_path, repo, registry):
    (tmp_path / "in").mkdir()
    sizes = {"a.bin": MiB // 2, "b.bin": 2 * MiB, "c.bin": 6 * MiB}
    for name, size in sizes.items():
        (tmp_path / "in" / name).write_bytes(os.urandom(size))
    store = open_store(tmp_path, "a")
    store.upload("churn", files=[tmp_path / "in" / name for name in sizes])

    patches = {"n": 0}

    def hold_c(method, target, headers, body):
        # One blob at a time, in the record's order: a in one PUT, b in 3 chunks, then c's second chunk is held.
        if method == "PATCH":
            patches["n"] += 1
            if patches["n"] == 5:
                return "hold"
        return None

    with FaultProxy(registry.port, hold_c) as proxy:
        via = repo.replace(registry.host, f"127.0.0.1:{proxy.port}")
        child = subprocess.Popen([sys.executable, "-c", PUSH, str(tmp_path / "a"), str(tmp_path / "cache-a"), via])
        try:
            assert proxy.held.wait(120), "the push never reached c's second chunk"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
    finished = {w.split()[1] for w in writes(proxy.log) if w.startswith("blob ")}
    assert len(finished) == 2  # a and b
    assert api(repo, "manifests/1")[0] == 404  # no tag: the manifest comes last

    with FaultProxy(registry.port) as proxy:
        via = repo.replace(registry.host, f"127.0.0.1:{proxy.port}")
        store.push("churn", via, plain_http=True, chunk_size=MiB)
    again = {w.split()[1] for w in writes(proxy.log) if w.startswith("blob ")}
    manifest = manifest_of(repo, "1")
    by_path = {layer["annotations"]["org.cncf.model.filepath"]: layer["digest"] for layer in manifest["layers"]}
    assert finished == {by_path["a.bin"], by_path["b.bin"]}
    assert again == {by_path["c.bin"], by_path[".modelstore/version.json"], manifest["config"]["digest"]}
    pulled = open_store(tmp_path, "b").pull(f"{repo}:1", plain_http=True)
    assert sorted(f.sha256 for f in pulled.files) == sorted(f.sha256 for f in store.info("churn", 1).files)


MEMORY = """
import json, resource, sys
from modelstore_core import ModelStore
import modelstore_oci.transport  # imported before the baseline
source = ModelStore(sys.argv[1], cache_dir=sys.argv[2])
target = ModelStore(sys.argv[3], cache_dir=sys.argv[4])
source.info("churn")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
source.push("churn", sys.argv[5], plain_http=True)  # one streamed PUT
source.push("churn", sys.argv[5] + "-chunked", plain_http=True, chunk_size=32 << 20)
pushed = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
v = target.pull(sys.argv[5] + ":1", plain_http=True)
pulled = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base": base, "pushed": pushed, "pulled": pulled, "size": v.size}))
"""


def test_big_files_move_in_constant_memory(tmp_path, repo):
    size = 96 * MiB
    with open(tmp_path / "big.bin", "wb") as f:
        for _ in range(size // (16 * MiB)):
            f.write(os.urandom(16 * MiB))
    open_store(tmp_path, "a").upload("churn", files=[tmp_path / "big.bin"])
    (tmp_path / "big.bin").unlink()
    done = subprocess.run(
        [sys.executable, "-c", MEMORY, str(tmp_path / "a"), str(tmp_path / "ca"), str(tmp_path / "b"), str(tmp_path / "cb"), repo],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    peak = json.loads(done.stdout)
    assert peak["size"] == size
    # ru_maxrss is in KiB: a push (in one PUT, and in 32 MiB chunks) or pull of 96 MiB grows the process by far less than a chunk
    assert (peak["pushed"] - peak["base"]) * 1024 < 16 * MiB, peak
    assert (peak["pulled"] - peak["base"]) * 1024 < 16 * MiB, peak


@pytest.mark.parametrize("parallel", [1, 4])
def test_parallel_setting(tmp_path, repo, parallel):
    (tmp_path / "in").mkdir()
    for i in range(6):
        (tmp_path / "in" / f"{i}.bin").write_bytes(os.urandom(1000 + i))
    store = open_store(tmp_path, "a")
    store.upload("churn", files=[tmp_path / "in"])
    digest = store.push("churn", repo, plain_http=True, parallel=parallel)
    v = open_store(tmp_path, f"b{parallel}").pull(f"{repo}@{digest}", plain_http=True, parallel=parallel)
    assert len(v.files) == 6


def test_progress_is_reported(tmp_path, repo):
    (tmp_path / "big.bin").write_bytes(os.urandom(3 * MiB))
    store = open_store(tmp_path, "a")
    store.upload("churn", files=[tmp_path / "big.bin"])
    seen: list[tuple[int, int]] = []
    store.push("churn", repo, plain_http=True, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] >= 3 * MiB
    seen.clear()
    open_store(tmp_path, "b").pull(f"{repo}:1", plain_http=True, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] >= 3 * MiB


def test_a_registry_that_cannot_be_reached(tmp_path):
    import socket

    from modelstore_core.errors import StorageError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "m.bin").write_bytes(b"m")
    store = open_store(tmp_path, "a")
    store.upload("churn", files=[tmp_path / "m.bin"])
    with pytest.raises(StorageError, match="cannot reach"):
        store.push("churn", f"oci://127.0.0.1:{port}/models/x", plain_http=True, timeout=2)


def test_push_and_pull_go_through_a_registry_that_fails_every_third_request(tmp_path, repo, registry):
    from modelstore_core.testing.faults import every_nth

    (tmp_path / "in").mkdir()
    for i in range(3):
        (tmp_path / "in" / f"{i}.bin").write_bytes(os.urandom(MiB + i))
    store = open_store(tmp_path, "a")
    store.upload("churn", files=[tmp_path / "in"])
    with FaultProxy(registry.port, every_nth(3, ("503", "drop", "drop-after"))) as proxy:
        via = repo.replace(registry.host, f"127.0.0.1:{proxy.port}")
        digest = store.push("churn", via, plain_http=True)
        pulled = open_store(tmp_path, "b").pull(f"{via}@{digest}", plain_http=True)
    assert sum(proxy.faults().values()) >= 5
    assert sorted(f.sha256 for f in pulled.files) == sorted(f.sha256 for f in store.info("churn", 1).files)

"""Large models stream: an upload and a load of ~400 MB of weights each peak below 2x the weights.

Each runs in its own subprocess. The peak is the process's resident high-water mark, which
includes the interpreter, torch itself (~200 MB) and the model's own weights, so the margin
left for the store's work is under one copy of the weights. On Linux it is read from
``VmHWM`` in /proc/self/status: ``ru_maxrss`` carries the parent's (pytest's) peak over across
``exec``, so it only measures the child once the child has outgrown its parent; both are shown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from modelstore_core.testing.faults import HANG_TIMEOUT

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import torch
    from modelstore_core import ModelStore

    def peaks():
        hwm = None
        try:
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
        except OSError:
            pass
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        return {"peak": hwm if hwm is not None else maxrss, "ru_maxrss": maxrss}

    op, root = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(5000, 5000) for _ in range(4)])  # 400 MB of float32
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    store = ModelStore(root + "/store", cache_dir=root + "/cache-" + op)
    x = torch.randn(2, 5000)
    t = time.perf_counter()
    if op == "upload":
        store.upload("big", model=model)
        out = model(x)
    else:
        torch.nn.init.zeros_(model[0].weight)  # so only loading restores the outputs
        store.load("big", model=model)
        out = model(x)
    took = time.perf_counter() - t
    torch.save(out, root + "/out-" + op + ".pt")
    print(json.dumps({"size": size, "seconds": took, **peaks()}))
    """
)


def child(op: str, tmp_path) -> dict:
    command = [sys.executable, "-c", CHILD, op, str(tmp_path)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=HANG_TIMEOUT, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_upload_and_load_of_400mb_peak_below_twice_the_weights(tmp_path):
    import torch

    up = child("upload", tmp_path)
    load = child("load", tmp_path)
    mib = 2**20
    report = (
        f"weights {up['size'] / mib:.0f} MiB; "
        f"upload peak {up['peak'] / mib:.0f} MiB (ru_maxrss {up['ru_maxrss'] / mib:.0f}) in {up['seconds']:.1f}s; "
        f"load peak {load['peak'] / mib:.0f} MiB (ru_maxrss {load['ru_maxrss'] / mib:.0f}) in {load['seconds']:.1f}s"
    )
    print(report)
    assert up["size"] >= 400_000_000
    assert up["peak"] < 2 * up["size"], report
    assert load["peak"] < 2 * load["size"], report
    # and the load really restored the weights
    torch.testing.assert_close(torch.load(tmp_path / "out-load.pt"), torch.load(tmp_path / "out-upload.pt"), rtol=0, atol=0)

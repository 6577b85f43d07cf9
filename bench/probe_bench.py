"""What the conditional-write probe costs a process (issue 22, item 5): HTTP requests and wall time
of the first write's proof against moto's S3 server on 127.0.0.1, then of a later write.

    pip install -e . -e 'plugins/modelstore-s3[test]'
    python bench/probe_bench.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "modelstore-s3" / "tests"))

from modelstore_s3.storage import S3Storage  # noqa: E402
from s3_servers import MotoServer  # noqa: E402

from modelstore_core.protocol.probe import ensure_conditional_writes, forget_verdicts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with MotoServer(Path(tempfile.mkdtemp()) / "moto.log") as moto:
        storage = S3Storage("bench", "p/", endpoint_url=f"http://key:secret@127.0.0.1:{moto.port}", region="us-east-1")
        storage.client.create_bucket(Bucket="bench")
        sent: list[str] = []
        storage.client.meta.events.register("before-send", lambda request, **kw: sent.append(request.method))
        first, times = [], []
        for _ in range(args.repeat):
            forget_verdicts()  # as a new process would
            sent.clear()
            start = time.perf_counter()
            assert ensure_conditional_writes(storage).ok
            times.append((time.perf_counter() - start) * 1000)
            first = list(sent)
        sent.clear()
        start = time.perf_counter()
        ensure_conditional_writes(storage)
        later = (time.perf_counter() - start) * 1000
    print(
        f"first write of a process: {len(first)} requests ({' '.join(first)}),"
        f" median {statistics.median(times):.1f} ms, min {min(times):.1f} ms over {args.repeat}"
    )
    print(f"later writes of the process: {len(sent)} requests, {later:.3f} ms")


if __name__ == "__main__":
    main()

"""Copy and mirror between a local store and moto's S3 server on 127.0.0.1, next to raw boto3 in the same run.

    pip install -e . -e 'plugins/modelstore-s3[test]'
    python bench/copy_bench.py [--big-mb 200] [--repeat 2]

- ``copy_to`` of one ``--big-mb`` version from a local store to S3, and from S3 to a new local
  store, next to boto3's ``upload_file`` / ``download_file`` of the same file (default
  TransferConfig). The copy also hashes every object before it becomes visible (sha256).
- the same copy again (nothing to move), and a mirror run with nothing new: seconds and requests.
- for comparison, ``upload`` of the same file to S3 next to ``upload_file`` (a copy from a local
  store costs what an upload costs: one sha256 pass, then the transfer).

Medians of ``--repeat`` runs, in this process (the stores' imports are not timed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

import _common
import s3_bench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="copy-bench-") as tmp:
        work = Path(tmp)
        moto = s3_bench.server(work).start()
        try:
            s3_bench.prepare(moto.endpoint)
            return run(work, args.big_mb, args.repeat)
        finally:
            moto.stop()


def run(work: Path, big_mb: int, repeat: int) -> int:
    import boto3
    from boto3.s3.transfer import TransferConfig

    from modelstore_core import ModelStore

    big = work / "big.bin"
    _common.write_random(big, big_mb)
    local = ModelStore(work / "local", cache_dir=work / "cache")
    local.upload("big", files=[big])
    client = boto3.client("s3")

    def copy_up() -> None:
        local.copy_to(ModelStore(f"s3://{_common.BUCKET}/{uuid.uuid4().hex}", cache_dir=work / "cache"))

    def upload() -> None:
        ModelStore(f"s3://{_common.BUCKET}/{uuid.uuid4().hex}", cache_dir=work / "cache").upload("big", files=[big])

    def raw_up() -> None:
        client.upload_file(str(big), _common.BUCKET, f"raw/{uuid.uuid4().hex}", Config=TransferConfig())

    remote = ModelStore(f"s3://{_common.BUCKET}/source", cache_dir=work / "cache")
    local.copy_to(remote)
    client.upload_file(str(big), _common.BUCKET, "raw/source", Config=TransferConfig())

    def copy_down() -> None:
        remote.copy_to(ModelStore(work / f"down-{uuid.uuid4().hex}", cache_dir=work / "cache"))

    def raw_down() -> None:
        client.download_file(_common.BUCKET, "raw/source", str(work / f"raw-{uuid.uuid4().hex}"), Config=TransferConfig())

    rows = []
    for what, ours, theirs, name in (
        ("copy local -> S3", copy_up, raw_up, "upload_file"),
        ("copy S3 -> local", copy_down, raw_down, "download_file"),
    ):
        t_ours, t_raw = _common.median_time(ours, repeat), _common.median_time(theirs, repeat)
        rows.append(f"| {what}, {big_mb} MB | {t_ours:.2f} s | {name}: {t_raw:.2f} s | {t_ours / t_raw:.2f}x |")

    again = _common.median_time(lambda: local.copy_to(remote), repeat)
    mirror = ModelStore(f"s3://{_common.BUCKET}/mirror", cache_dir=work / "cache")
    remote.mirror_to(mirror)
    sys.path.insert(0, str(s3_bench.TESTS))
    from s3_requests import RequestLog

    logs = [RequestLog(remote.storage), RequestLog(mirror.storage)]
    with logs[0].measure() as src_calls, logs[1].measure() as dst_calls:
        quiet = _common.median_time(lambda: remote.mirror_to(mirror), 1)
    print("| operation | store | baseline, same run | ratio |\n| --- | --- | --- | --- |")
    print("\n".join(rows))
    t_upload, t_raw = _common.median_time(upload, repeat), _common.median_time(raw_up, repeat)
    print(f"| (for comparison) `upload` of the same file to S3 | {t_upload:.2f} s | upload_file: {t_raw:.2f} s | {t_upload / t_raw:.2f}x |")
    print(f"| the same copy again (nothing to move) | {again * 1000:.0f} ms | | |")
    print(
        f"| mirror with nothing new (1 domain, 1 version) | {quiet * 1000:.0f} ms; requests: source"
        f" {_common.tally(op for op, _, _ in src_calls)}, target {_common.tally(op for op, _, _ in dst_calls)} | | |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

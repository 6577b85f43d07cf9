"""S3 backend benchmark against moto's S3 server on 127.0.0.1, each figure next to raw boto3 in the same run.

    pip install -e . -e 'plugins/modelstore-s3[test]'
    python bench/s3_bench.py [--big-mb 400] [--versions 1000] [--repeat 1]

- upload and download of a ``--big-mb`` artifact through the store vs boto3's ``upload_file`` /
  ``download_file`` with the same (default) TransferConfig; target <= 1.2x (modelstore 0.0.82:
  7.7x and 4.5x). Each run is a fresh process, so its peak RSS (VmHWM) is its own.
- HTTP requests (every attempt) at ``--versions`` versions: list_versions, latest, load of the
  latest (fresh cache), the same load again from the same cache, and an upload of one small file.

The ``--versions`` version records are written the way the core commits a version (claim, then
record with create-if-absent; the latest hint moved at the end), concurrently: only versions 1 and
N are real uploads.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import _common

TESTS = Path(__file__).resolve().parents[1] / "plugins" / "modelstore-s3" / "tests"


def raw(op: str, url: str, path: str) -> None:
    import boto3
    from boto3.s3.transfer import TransferConfig

    client = boto3.client("s3")
    key = url.split("/", 3)[3] + "/raw.bin"
    if op == "raw-upload":
        client.upload_file(path, _common.BUCKET, key, Config=TransferConfig())
    else:
        client.download_file(_common.BUCKET, key, path, Config=TransferConfig())


def server(work: Path):
    from modelstore_core.testing.faults import ServerProcess

    return ServerProcess(lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", port], work / "moto.log")


def prepare(endpoint: str) -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    os.environ.pop("AWS_PROFILE", None)
    import boto3

    boto3.client("s3").create_bucket(Bucket=_common.BUCKET)


def count(store, fn) -> tuple[int, int, str]:
    """Every request the store's client sends (retries included), through botocore's before-send."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from s3_requests import RequestLog, object_gets

    with RequestLog(store.storage).measure() as calls:
        fn(store)
    return len(calls), len(object_gets(calls)), _common.tally(op for op, _, _ in calls)


if __name__ == "__main__":
    sys.exit(
        _common.main(
            __doc__,
            name="s3",
            scheme="s3",
            server=server,
            prepare=prepare,
            raw=raw,
            count=count,
            how="every attempt counted through botocore's before-send",
            server_name="moto server",
            raw_name="raw boto3",
            raw_calls=("upload_file", "download_file"),
            target="target <= 1.2x (modelstore 0.0.82: 7.7x upload, 4.5x download)",
        )
    )

"""moto's S3 server on 127.0.0.1, in its own process, and S3's error bodies for the fault proxy.

The proxy itself, :class:`modelstore_core.testing.faults.FaultProxy`, is the core's.
"""

from __future__ import annotations

import sys
import threading
import uuid
from pathlib import Path

from modelstore_core.testing.faults import ServerProcess

S3_ERRORS = {
    500: b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>',
    503: b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>',
}


class MotoServer(ServerProcess):
    """``python -m moto.server`` on a free port, in its own process (this file, as moto's ``main``)."""

    def __init__(self, log: Path):
        super().__init__(lambda port: [sys.executable, __file__, "-H", "127.0.0.1", "-p", port], log)
        self._client = None

    def new_bucket(self) -> str:
        """A new, empty bucket: ``ms-<random hex>``.

        A bucket per store, not a prefix of one shared bucket: moto filters a listing by prefix over
        every key of the bucket, so in a shared bucket each listing slows down with every earlier
        test's keys (the tamper kit's tests took 3 to 9 s each late in the S3 session, 1 s alone)."""
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "s3", endpoint_url=self.endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
            )
        name = f"ms-{uuid.uuid4().hex}"
        self._client.create_bucket(Bucket=name)
        return name


def serialized_conditional_writes() -> None:
    """moto checks a conditional write's precondition, then writes, without a lock; S3 does both
    atomically. Serialize the requests that carry ``If-None-Match``/``If-Match`` so that moto's server
    has S3's semantics under concurrent writers (only those requests wait for each other)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lock = threading.Lock()
    dispatch = DomainDispatcherApplication.__call__

    def __call__(self, environ, start_response):
        if environ.get("HTTP_IF_NONE_MATCH") or environ.get("HTTP_IF_MATCH"):
            with lock:
                return dispatch(self, environ, start_response)
        return dispatch(self, environ, start_response)

    DomainDispatcherApplication.__call__ = __call__


if __name__ == "__main__":  # python s3_servers.py -H 127.0.0.1 -p PORT: moto's server, as `python -m moto.server`
    from moto import server

    serialized_conditional_writes()
    server.main(sys.argv[1:])

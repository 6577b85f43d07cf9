"""Counting the HTTP requests a store's S3 client sends (every attempt, retries included)."""

from __future__ import annotations

from contextlib import contextmanager
from urllib.parse import unquote, urlsplit


class RequestLog:
    """Records ``(operation, method, key path)`` for each request through botocore's ``before-send`` event."""

    def __init__(self, storage):
        self.calls: list[tuple[str, str, str]] = []
        storage.client.meta.events.register("before-send.s3", self._record)

    def _record(self, request, event_name: str, **kwargs):
        self.calls.append((event_name.rsplit(".", 1)[-1], request.method, unquote(urlsplit(request.url).path)))

    @contextmanager
    def measure(self):
        """``with log.measure() as calls:`` -> the requests sent inside the block."""
        calls: list[tuple[str, str, str]] = []
        start = len(self.calls)
        yield calls
        calls.extend(self.calls[start:])


def object_gets(calls) -> list[str]:
    """The artifact downloads among ``calls``: GETs of content-addressed objects."""
    return [path for op, _, path in calls if op == "GetObject" and "/objects/sha256/" in path]

"""Counting the HTTP requests a store's Azure client sends (every attempt, retries included)."""

from __future__ import annotations

from contextlib import contextmanager
from urllib.parse import unquote, urlsplit


class RequestLog:
    """Records ``(method, path, query)`` for each request the store's own ``requests`` session sends."""

    def __init__(self, storage):
        self.calls: list[tuple[str, str, str]] = []
        session = storage.session
        send = session.request

        def request(method, url, *args, **kwargs):
            parts = urlsplit(url)
            self.calls.append((method, unquote(parts.path), parts.query))
            return send(method, url, *args, **kwargs)

        session.request = request

    @contextmanager
    def measure(self):
        """``with log.measure() as calls:`` -> the requests sent inside the block."""
        calls: list[tuple[str, str, str]] = []
        start = len(self.calls)
        yield calls
        calls.extend(self.calls[start:])


def kind(method: str, path: str, query: str) -> str:
    """A request's Blob service operation, from its method and query (``Put Block``, ``List Blobs``...)."""
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    comp = params.get("comp")
    if comp == "list":
        return "List Blobs"
    if comp == "block":
        return "Put Block"
    if comp == "blocklist":
        return "Put Block List"
    return {"GET": "Get Blob", "HEAD": "Get Blob Properties", "PUT": "Put Blob", "DELETE": "Delete Blob"}.get(method, method)


def object_gets(calls) -> list[str]:
    """The artifact downloads among ``calls``: GETs of content-addressed objects."""
    return [path for method, path, _ in calls if method == "GET" and "/objects/sha256/" in path]

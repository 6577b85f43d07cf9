"""The Google Cloud Storage primitives, over google-cloud-storage.

=====================  ==============================================================================
primitive              GCS requests (JSON API)
=====================  ==============================================================================
``put_if_absent``      one upload with ``ifGenerationMatch=0`` (412 -> ``False``)
``read``               one media download; its generation is the compare-and-swap token
``compare_and_swap``   one upload with ``ifGenerationMatch=<generation>`` (412 -> ``False``)
``list``               ``objects.list`` pages (``startOffset``, ``delimiter``), never truncated
``stat``               ``objects.get`` (metadata)
``delete``             ``objects.delete``
``get``                ``objects.get``, then ranged media downloads of that generation
``put_file``           one upload up to 8 MiB; past that a resumable upload in ``chunk_size`` pieces
``get_file``           one media download; past ``download_part_size``, ``objects.get`` then parallel
                       ranged media downloads of that generation; hashed as the ranges land
=====================  ==============================================================================

Every call carries the SDK's retry policy (429, 5xx, dropped connections), conditional writes
included: ``ifGenerationMatch`` makes them safe to repeat. A conditional write whose first attempt
took effect but whose answer was lost fails its own precondition when retried; such a 412 after a
retry is settled by reading the object back: if it holds exactly our bytes, the write was ours.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import google.auth.exceptions as auth_exceptions
import requests.exceptions
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs
from google.cloud._helpers import _rfc3339_nanos_to_datetime  # what Blob.updated parses with
from google.cloud.storage.retry import DEFAULT_RETRY
from google.resumable_media import InvalidResponse

from modelstore_core.plugin_api import (
    CHUNK_SIZE,
    BucketURL,
    CloudErrors,
    CountingReader,
    HashingDownload,
    InvalidNameError,
    KeyNotFoundError,
    ObjectInfo,
    Storage,
    StorageError,
    Token,
    backend_options,
    scrub,
    split_userinfo,
)

from . import GCSPlugin

MB = 1 << 20
#: Times a small document whose body was cut short is read again from the start.
READ_ATTEMPTS = 3

#: ``ModelStore("gs://...", **options)``: accepted options and their defaults.
DEFAULTS: dict[str, Any] = {
    "project": None,  # default: the SDK's (GOOGLE_CLOUD_PROJECT, the credentials' project)
    "credentials": None,  # a google.auth Credentials object; default: Application Default Credentials
    "credentials_file": None,  # a service-account (or other) JSON key file
    "endpoint": None,  # API endpoint (private endpoint, emulator); default: STORAGE_EMULATOR_HOST, else Google
    "anonymous": None,  # unauthenticated requests (emulators); default: True when STORAGE_EMULATOR_HOST is set
    "page_size": 1000,  # objects per objects.list page (GCS's maximum)
    "chunk_size": 32 * MB,  # resumable upload piece (a multiple of 256 KiB); files up to 8 MiB go in one request
    "download_part_size": 8 * MB,  # a larger object is downloaded in ranges of this size, in parallel (hashed in order as they land)
    "max_concurrency": 8,  # ranges of one download at once
    "timeout": 60.0,  # seconds one request may take in all, retries included (``--timeout``)
    "retry_deadline": None,  # seconds of retrying a request before giving up; default: ``timeout``
    "connect_timeout": None,  # per attempt; default: 5 s, at most ``timeout``
    "read_timeout": None,  # per socket read (silence, not duration); default: ``timeout``
}

#: Default per-attempt connect timeout (capped by ``timeout``).
CONNECT_TIMEOUT = 5.0


def _otel_traces_enabled() -> bool:
    try:
        from google.cloud.storage._opentelemetry_tracing import enable_otel_traces
    except ImportError:
        return False
    return bool(enable_otel_traces)


CREDENTIALS_HINT = (
    "Application Default Credentials (gcloud auth application-default login, GOOGLE_APPLICATION_CREDENTIALS) or credentials_file="
)


_SDK_ERRORS = (
    gexc.GoogleAPICallError,
    gexc.RetryError,
    auth_exceptions.GoogleAuthError,
    requests.exceptions.RequestException,
    ConnectionError,
)


def _from_sdk(exc: BaseException) -> bool:
    # and google-cloud-storage's media layer (InvalidResponse, DataCorruption)
    return isinstance(exc, _SDK_ERRORS) or (type(exc).__module__.startswith("google.") and not isinstance(exc, (TypeError, ValueError)))


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, (requests.exceptions.Timeout, TimeoutError)) or (
        isinstance(exc, requests.exceptions.ConnectionError) and "timed out" in str(exc)
    )


#: The SDK's exceptions (google-api-core, google-auth, requests) as :class:`StorageError`; a missing
#: object is handled by the primitives, so a ``NotFound`` that reaches here is the bucket's.
ERRORS = CloudErrors(
    service="GCS",
    container="bucket",
    refused_hint="(GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login) and the bucket's IAM",
    endpoint_hint="STORAGE_EMULATOR_HOST, endpoint=",
    from_sdk=_from_sdk,
    missing_container=lambda exc: isinstance(exc, gexc.NotFound),
    refused=lambda exc: type(exc).__name__ if isinstance(exc, (gexc.Forbidden, gexc.Unauthorized, auth_exceptions.RefreshError)) else None,
    timed_out=_timed_out,
    unreachable=lambda exc: isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError)),
    answer=lambda exc: f"{exc.code} {exc.message}" if isinstance(exc, gexc.GoogleAPICallError) else None,
    cause=lambda exc: exc.cause if isinstance(exc, gexc.RetryError) and exc.cause is not None else exc,
)


class GCSStorage(Storage):
    """A store under ``gs://bucket/prefix``. Nothing is written until the first upload."""

    # create-if-absent and compare-and-swap are generation preconditions: an emulator or gateway
    # that ignores them answers like one that honours them, so the core proves them first.
    conditional_writes_need_proof = True

    @classmethod
    def from_url(cls, url: str, **options: Any) -> GCSStorage:
        where = BucketURL.parse(url, GCSPlugin.schemes, service="GCS", credentials_hint=CREDENTIALS_HINT)
        return cls(where.bucket, where.prefix, **options)

    def __init__(self, bucket: str, prefix: str = "", **options: Any):
        opts = backend_options(options, DEFAULTS, "gs")
        self.location = BucketURL("gs", bucket, prefix)
        self.bucket_name = bucket
        self.prefix = prefix
        self.url = self.location.url
        self.page_size = int(opts["page_size"])
        if not 1 <= self.page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        self.chunk_size = int(opts["chunk_size"])
        self.download_part_size = int(opts["download_part_size"])
        self.max_concurrency = int(opts["max_concurrency"])
        if self.download_part_size < 1 or self.max_concurrency < 1:
            raise ValueError("download_part_size and max_concurrency must be positive")
        if self.chunk_size % (256 << 10):
            raise ValueError("chunk_size must be a multiple of 256 KiB")
        # ``timeout`` bounds each request with its retries (the SDK's ``Retry`` deadline), not a whole
        # transfer: a resumable upload is one request per ``chunk_size`` piece and a large object is
        # never cut off for taking longer than ``timeout``. Each attempt's socket waits are bounded by
        # the connect and read timeouts (silence, not duration), so a frozen endpoint fails a request
        # within about twice ``timeout``. One limit: a download is one streamed request, and the SDK
        # does not retry one that breaks after ``retry_deadline`` has passed (load it again: files
        # already in the cache are not fetched again).
        self.timeout = float(opts["timeout"])
        if not self.timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.retry_deadline = float(opts["retry_deadline"] if opts["retry_deadline"] is not None else self.timeout)
        self.http_timeout = (
            float(opts["connect_timeout"] or min(CONNECT_TIMEOUT, self.timeout)),
            float(opts["read_timeout"] or self.timeout),
        )

        endpoint = opts["endpoint"]
        emulator_host = os.environ.get("STORAGE_EMULATOR_HOST")
        # The SDK would put credentials written into an endpoint URL into every message that names
        # the endpoint (and send them as HTTP basic auth): refuse them, whatever characters they hold,
        # without echoing the URL.
        self._secrets: set[str] = set()
        for name, url in (("the GCS endpoint URL (endpoint=)", endpoint), ("STORAGE_EMULATOR_HOST", emulator_host)):
            if url and split_userinfo(url).secrets:
                problem = f"{name} takes no credentials (user:password@); give it as http://host:port and"
                raise InvalidNameError(
                    f"{problem} pass credentials= or credentials_file=", cli=f"{problem} set GOOGLE_APPLICATION_CREDENTIALS"
                )
        emulator = bool(emulator_host)
        anonymous = opts["anonymous"] if opts["anonymous"] is not None else emulator
        credentials = opts["credentials"]
        try:
            if credentials is None and opts["credentials_file"]:
                import google.auth

                credentials, project = google.auth.load_credentials_from_file(os.fspath(opts["credentials_file"]))
                opts["project"] = opts["project"] or project
            if credentials is None and anonymous:
                credentials = AnonymousCredentials()
            kwargs: dict[str, Any] = {"project": opts["project"], "credentials": credentials}
            if endpoint:
                kwargs["client_options"] = {"api_endpoint": endpoint}
                kwargs["use_auth_w_custom_endpoint"] = not anonymous
            if kwargs["project"] is None and anonymous:
                kwargs["project"] = "<none>"  # only bucket creation needs one
            self.client = gcs.Client(**kwargs)
        except auth_exceptions.DefaultCredentialsError:
            how = "no Google Cloud credentials found; run `gcloud auth application-default login`"
            raise StorageError(
                f"{how}, set GOOGLE_APPLICATION_CREDENTIALS, or pass credentials_file=", cli=f"{how} or set GOOGLE_APPLICATION_CREDENTIALS"
            ) from None
        except (auth_exceptions.GoogleAuthError, OSError, ValueError) as exc:
            raise StorageError(f"cannot configure the GCS client: {type(exc).__name__}") from None
        self.endpoint = self.client._connection.API_BASE_URL
        self._errors = ERRORS.bind(location=self.location, endpoint=self.endpoint, timeout=self.retry_deadline, scrub=self._scrub)
        if not _otel_traces_enabled() and getattr(self.client, "_bucket_metadata_cache", None) is not None:
            # google-cloud-storage >= 3.17 fetches each bucket's metadata in a background request,
            # only to label OpenTelemetry spans; without tracing that request buys nothing.
            self.client._bucket_metadata_cache = None
        self.bucket = self.client.bucket(bucket)

    def __repr__(self) -> str:
        return f"<GCSStorage {self.url} at {self.endpoint}>"

    # --- helpers ------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.location.key(key)

    def _blob(self, key: str, **kwargs: Any) -> gcs.Blob:
        return self.bucket.blob(self._name(key), **kwargs)

    def _retry(self, attempts: list | None = None) -> Retry:
        """The SDK's retry policy with our deadline; ``attempts`` collects the errors that were retried."""
        return Retry(
            predicate=DEFAULT_RETRY._predicate,
            initial=1.0,
            maximum=32.0,
            multiplier=2.0,
            timeout=self.retry_deadline,
            on_error=attempts.append if attempts is not None else None,
        )

    def _where(self, key: str | None) -> str:
        return self.location.where(key)

    def _scrub(self, text: str) -> str:
        token = getattr(getattr(self, "client", None), "_credentials", None)
        return scrub(text, {*self._secrets, getattr(token, "token", None)})

    # --- primitives -----------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO) -> None:
        head = stream.read(self.chunk_size + 1)
        with self._errors("write", key):
            if len(head) <= self.chunk_size:  # a small document (a marker, a heartbeat): one request
                self._blob(key).upload_from_string(head, retry=self._retry(), timeout=self.http_timeout)
                return
            rest = io.BufferedReader(_Chain(head, stream))
            self._blob(key, chunk_size=self.chunk_size).upload_from_file(rest, retry=self._retry(), timeout=self.http_timeout)

    def put_file(self, key: str, path: Path, progress: Callable[[int], None] | None = None) -> None:
        with self._errors("upload", key):
            blob = self._blob(key, chunk_size=self.chunk_size)
            if progress is None:
                blob.upload_from_filename(os.fspath(path), retry=self._retry(), timeout=self.http_timeout)
                return
            with open(path, "rb") as f:  # counted as the SDK reads it (retries re-read; the core caps the count)
                blob.upload_from_file(
                    CountingReader(f, progress), size=os.fstat(f.fileno()).st_size, retry=self._retry(), timeout=self.http_timeout
                )

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._conditional_put(key, data, 0)

    def compare_and_swap(self, key: str, data: bytes, token: Token) -> bool:
        if token is None:
            return False
        return self._conditional_put(key, data, int(token))

    def _conditional_put(self, key: str, data: bytes, generation: int) -> bool:
        retried: list = []
        with self._errors("write", key):
            try:
                self._blob(key).upload_from_string(
                    data, if_generation_match=generation, retry=self._retry(retried), timeout=self.http_timeout
                )
                return True
            except gexc.PreconditionFailed:
                # A retried request may have been applied by its first attempt: was it ours?
                return bool(retried) and self._holds(key, data)
            except gexc.NotFound:
                if generation:
                    return False  # compare-and-swap on a deleted key
                raise

    def _holds(self, key: str, data: bytes) -> bool:
        try:
            return self.read(key)[0] == data
        except KeyNotFoundError:
            return False

    def get(self, key: str) -> BinaryIO:
        with self._errors("read", key):
            blob = self.bucket.get_blob(self._name(key), retry=self._retry(), timeout=self.http_timeout)
            if blob is None:
                raise KeyNotFoundError(key)
            pinned = self.bucket.blob(blob.name, generation=blob.generation)
            return pinned.open("rb", chunk_size=4 * CHUNK_SIZE, retry=self._retry())

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, Token]:
        with self._errors("read", key):
            for attempt in range(READ_ATTEMPTS):
                blob = self._blob(key)
                try:
                    data = blob.download_as_bytes(retry=self._retry(), timeout=self.http_timeout, **_first(max_bytes))
                except gexc.NotFound:
                    raise KeyNotFoundError(key) from None
                except gexc.RequestRangeNotSatisfiable:  # a range of an empty object: read it whole, being empty
                    data = blob.download_as_bytes(retry=self._retry(), timeout=self.http_timeout)
                except (requests.exceptions.ChunkedEncodingError, InvalidResponse):
                    # A body cut short: the SDK resumes it with a ranged request pinned to the
                    # generation, which an emulator may answer 404. A small document is read again whole.
                    if attempt == READ_ATTEMPTS - 1:
                        raise
                    continue
                return data, blob.generation
        raise AssertionError  # pragma: no cover

    def get_file(
        self, key: str, path: Path, progress: Callable[[int], None] | None = None, max_bytes: int | None = None
    ) -> tuple[str, int]:
        """One media download for an object up to ``download_part_size`` (with ``max_bytes``, its
        first ``max_bytes + 1`` bytes: the record's size says when that is all); a larger one, its
        size and generation read first (``objects.get``), as ranged media downloads of that
        generation, ``max_concurrency`` at a time. Either way the bytes are written at their offsets
        into a :class:`HashingDownload`, which hashes them as they land: the SDK's own checksum (of
        whole objects only) is not needed."""
        part = self.download_part_size
        with self._errors("download", key), HashingDownload(path) as out:
            if max_bytes is not None and max_bytes < part:
                self._download_range(self._blob(key), key, out, 0, max_bytes + 1, progress)
                return out.finish()
            blob = self.bucket.get_blob(self._name(key), retry=self._retry(), timeout=self.http_timeout)
            if blob is None:
                raise KeyNotFoundError(key)
            size = blob.size if max_bytes is None else min(blob.size, max_bytes + 1)
            pinned = self.bucket.blob(blob.name, generation=blob.generation)
            starts = range(0, size, part)
            if len(starts) < 2:
                self._download_range(pinned, key, out, 0, size, progress)
                return out.finish()
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(self.max_concurrency, len(starts)), thread_name_prefix="modelstore-gcs-get") as pool:
                parts = [pool.submit(self._download_range, pinned, key, out, start, min(start + part, size), progress) for start in starts]
                for future in parts:
                    future.result()
            return out.finish()

    def _download_range(self, blob: gcs.Blob, key: str, out: HashingDownload, start: int, end: int, progress) -> None:
        """Bytes ``start`` to ``end`` (exclusive) of ``blob``, or as many as it has, written at ``start``."""
        if end <= start:
            return
        with _WrittenAt(out, start, progress) as sink:
            try:
                blob.download_to_file(sink, start=start, end=end - 1, checksum=None, retry=self._retry(), timeout=self.http_timeout)
            except gexc.NotFound:
                raise KeyNotFoundError(key) from None
            except gexc.RequestRangeNotSatisfiable:  # a range of an empty object (or past its end)
                pass

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            try:
                self._blob(key).delete(retry=self._retry(), timeout=self.http_timeout)
            except gexc.NotFound:
                pass

    def stat(self, key: str) -> ObjectInfo | None:
        with self._errors("stat", key):
            blob = self.bucket.get_blob(self._name(key), retry=self._retry(), timeout=self.http_timeout)
        if blob is None:
            return None
        return ObjectInfo(key, blob.size, blob.updated.astimezone(timezone.utc))

    def list(self, prefix: str, *, start_after: str | None = None, delimiter: str | None = None) -> Iterator[ObjectInfo]:
        return self._list(prefix, start_after, delimiter)

    def _list(self, prefix: str, start_after: str | None, delimiter: str | None) -> Iterator[ObjectInfo]:
        n = len(self.prefix)
        skip = self.prefix + start_after if start_after is not None else None
        with self._errors("list", prefix or None):
            iterator = self.client.list_blobs(
                self.bucket_name,
                prefix=self.prefix + prefix,
                delimiter=delimiter,
                start_offset=skip,  # inclusive, unlike S3's StartAfter: the equal key is skipped below
                page_size=self.page_size,
                fields="items(name,size,updated),prefixes,nextPageToken",
                retry=self._retry(),
                timeout=self.http_timeout,
            )
            # The listing's JSON resources as they are, not a ``Blob`` built for each (the SDK's
            # default): building them was most of a listing's CPU beyond the request itself.
            iterator.item_to_value = _resource
            for page in iterator.pages:
                entries = [_listed(item, n) for item in page if skip is None or item.get("name") != skip]
                entries += [ObjectInfo(p[n:]) for p in page.prefixes if skip is None or p > skip]
                entries.sort(key=lambda e: e.key)
                yield from entries

    def capability_id(self) -> str:
        return f"gcs {self.endpoint} {self.bucket_name}"  # credential-free: userinfo is refused

    def close(self) -> None:
        self.client.close()


__all__ = ["DEFAULTS", "GCSStorage"]


class _WrittenAt:
    """A sequential stream for one ranged download, writing into a :class:`HashingDownload` from
    ``start`` on, in ``CHUNK_SIZE`` writes (the SDK hands over 8 KiB at a time)."""

    def __init__(self, out: HashingDownload, start: int, progress: Callable[[int], None] | None):
        self._out, self._at, self._progress = out, start, progress
        self._buffer = bytearray()

    def write(self, data) -> int:
        self._buffer += data
        if len(self._buffer) >= CHUNK_SIZE:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer:
            self._at += self._out.write_at(self._at, self._buffer)
            if self._progress is not None:
                self._progress(len(self._buffer))
            self._buffer.clear()

    def __enter__(self) -> _WrittenAt:
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        if exc_type is None:
            self.flush()


class _Chain(io.RawIOBase):
    """``head`` (bytes already read) followed by the rest of ``stream``, as one readable stream."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self._head, self._stream = memoryview(head), stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _resource(iterator, resource: dict) -> dict:
    """``item_to_value`` for a listing: the object's JSON resource itself."""
    return resource


def _listed(resource: dict, n: int) -> ObjectInfo:
    """The ``ObjectInfo`` of a listed object's JSON resource (``fields`` asks for name, size and
    updated only), its key ``n`` characters into the name (past the store's prefix)."""
    try:
        name, size, updated = resource["name"], int(resource["size"]), _updated(resource["updated"])
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise StorageError(f"the GCS server listed an object without a valid name, size or updated time: {resource!r:.300}") from exc
    if not isinstance(name, str):
        raise StorageError(f"the GCS server listed an object whose name is not a string: {resource!r:.300}")
    return ObjectInfo(name[n:], size, updated)


def _updated(text: str) -> datetime:
    """A listed object's ``updated`` time (RFC 3339, ``2026-12-06T09:03:12.123Z``), parsed by
    ``datetime.fromisoformat`` (the SDK's own parsing, ``strptime``, was a third of a listing's CPU),
    or by the SDK's parser where that fails."""
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except (AttributeError, TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        parsed = _rfc3339_nanos_to_datetime(text)
    return parsed.astimezone(timezone.utc)


def _first(max_bytes: int | None) -> dict[str, int]:
    """The download arguments for the first ``max_bytes + 1`` bytes of an object (all of it: ``None``)."""
    return {} if max_bytes is None else {"start": 0, "end": max_bytes}

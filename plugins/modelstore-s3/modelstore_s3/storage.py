"""The S3 storage primitives, over boto3.

=====================  ==============================================================================
primitive              S3 requests
=====================  ==============================================================================
``put_if_absent``      ``PutObject`` with ``If-None-Match: *`` (412 -> ``False``)
``read``               ``GetObject``; the ETag is the compare-and-swap token
``compare_and_swap``   ``PutObject`` with ``If-Match: <etag>`` (412 or missing key -> ``False``)
``list``               ``ListObjectsV2`` pages (``StartAfter``, ``Delimiter``), never truncated
``stat``               ``HeadObject``
``delete``             ``DeleteObject``
``get``                ``GetObject``, streamed
``put_file``           boto3's transfer manager: one ``PutObject``, or a parallel multipart upload
``get_file``           one ``GetObject``; past the multipart threshold, ``HeadObject`` and parallel
                       ranged ``GetObject``, hashed as the parts land
``cleanup``            ``ListMultipartUploads`` + ``AbortMultipartUpload`` of stale uploads
=====================  ==============================================================================

Retries (5xx, throttling, dropped connections) are botocore's (``retry_mode``, ``max_attempts``).
A conditional write whose first attempt reached the server but whose answer was lost is retried
by botocore and then fails its own precondition; such a 412 after a retry is settled by reading
the object back: if it holds exactly our bytes, the write was ours.

Credentials never appear in :attr:`S3Storage.url`, in reprs or in error messages.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import boto3
import botocore.exceptions as bexc
import botocore.session
import urllib3.exceptions
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.utils import parse_timestamp
from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError, S3UploadFailedError
from s3transfer.subscribers import BaseSubscriber

from modelstore_core.plugin_api import (
    CHUNK_SIZE,
    TOP_LEVEL,
    BucketURL,
    CloudErrors,
    DeadlineExceeded,
    HashingDownload,
    KeyNotFoundError,
    ObjectInfo,
    Storage,
    StorageError,
    Token,
    backend_options,
    scrub,
    split_userinfo,
)

from . import S3Plugin

MB = 1 << 20

#: ``ModelStore("s3://...", **options)``: accepted options and their defaults.
DEFAULTS: dict[str, Any] = {
    "endpoint_url": None,  # S3-compatible endpoint; default: AWS_ENDPOINT_URL(_S3), else AWS
    "region": None,  # default: AWS_REGION / AWS_DEFAULT_REGION / the profile's region
    "profile": None,  # default: AWS_PROFILE, else the default profile
    "page_size": 1000,  # keys per ListObjectsV2 page (S3's maximum)
    "retry_mode": None,  # "standard" or "adaptive" (client-side rate limiting); default: AWS_RETRY_MODE, else standard
    "max_attempts": None,  # per request, first attempt included; default: AWS_MAX_ATTEMPTS, else 6
    "timeout": 60.0,  # seconds one request may take in all, retries included (``--timeout``); see _Deadline
    "connect_timeout": None,  # per attempt; default: 5 s, at most ``timeout``
    "read_timeout": None,  # per socket read (silence, not duration); default: ``timeout``
    "multipart_threshold": 8 * MB,  # boto3's TransferConfig defaults
    "multipart_chunksize": 8 * MB,
    "max_concurrency": 10,
    "addressing_style": None,  # "path" or "virtual"; default: "path" with a custom endpoint
    "request_checksum_calculation": None,  # botocore's; "when_required" for stores without CRC support
}

#: Default per-attempt connect timeout (capped by ``timeout``).
CONNECT_TIMEOUT = 5.0
#: Attempts at reading a response body whose connection broke mid-stream (botocore does not retry those).
STREAM_ATTEMPTS = 4
#: Attempts at a conditional write answered 409 ConditionalRequestConflict (a concurrent conditional write).
CONFLICT_ATTEMPTS = 8

_STREAM_ERRORS = (
    bexc.ResponseStreamingError,
    bexc.IncompleteReadError,
    bexc.ReadTimeoutError,
    bexc.ConnectionClosedError,
    bexc.EndpointConnectionError,
    ConnectionError,
    urllib3.exceptions.HTTPError,  # a body cut short (ProtocolError), read timeouts
)


CREDENTIALS_HINT = "the AWS default chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, an instance role)"


class _KnownObject(BaseSubscriber):
    """Tells s3transfer the size and ETag we already have, so it skips its HeadObject."""

    def __init__(self, size: int, etag: str):
        self.size, self.etag = size, etag

    def on_queued(self, future, **kwargs):
        future.meta.provide_transfer_size(self.size)
        future.meta.provide_object_etag(self.etag)


class _Progress(BaseSubscriber):
    """Passes s3transfer's byte counts on to the core's progress callback."""

    def __init__(self, advance: Callable[[int], None]):
        self.advance = advance

    def on_progress(self, future, bytes_transferred, **kwargs):
        self.advance(bytes_transferred)


class _Deadline:
    """``timeout`` seconds for each request, retries included, on top of botocore's retry policy.

    The deadline belongs to one API call (one ``ListObjectsV2`` page, one ``PutObject``, one
    ``UploadPart`` of a multipart upload, one ranged ``GetObject`` of a large download), not to a
    whole operation of the store: a 20 GB upload is thousands of requests, each with its own
    deadline, so it is never cut off for taking longer than ``timeout``. The deadline never
    interrupts an attempt in progress either (a body being streamed is bounded by the read timeout,
    which bounds silence, not duration); it stops botocore from starting another attempt once the
    backoff before it would end past the deadline. An attempt that started in time runs at most
    ``connect_timeout`` + ``read_timeout`` (both at most ``timeout``), so a frozen endpoint fails
    a request within about twice ``timeout``.
    """

    KEY = "modelstore_deadline"

    def __init__(self, client, timeout: float):
        self.timeout = timeout
        events = client.meta.events
        emitter = getattr(events, "_emitter", events)
        unique_id = "retry-config-s3"
        entry = getattr(emitter, "_unique_id_handlers", {}).get(unique_id)
        self.retry = entry["handler"] if entry else None
        events.register("before-call.s3", self.start)
        if self.retry is not None:  # wrap botocore's retry handler: we may veto its retries
            events.unregister("needs-retry.s3", unique_id=unique_id)
            events.register("needs-retry.s3", self.needs_retry, unique_id="modelstore-deadline-s3")
        else:  # a botocore that stores its handlers elsewhere: veto retries once the deadline passed
            events.register_first("needs-retry.s3", self.needs_retry, unique_id="modelstore-deadline-s3")

    def start(self, context: dict, **kwargs: Any) -> None:
        context[self.KEY] = time.monotonic() + self.timeout

    def needs_retry(self, request_dict: dict, caught_exception: BaseException | None = None, **kwargs: Any):
        delay = self.retry(request_dict=request_dict, caught_exception=caught_exception, **kwargs) if self.retry else None
        deadline = request_dict.get("context", {}).get(self.KEY)
        if deadline is None or (self.retry is not None and (delay is None or delay is False)):
            return delay
        if time.monotonic() + (delay or 0) >= deadline:
            if caught_exception is not None:
                raise DeadlineExceeded(f"{type(caught_exception).__name__} and no time left to retry") from caught_exception
            response = kwargs.get("response")
            status = response[0].status_code if response else None
            raise DeadlineExceeded(f"HTTP {status} and no time left to retry")
        return delay


def _timestamp(value: str) -> datetime:
    """An S3 time: ISO 8601 in XML bodies (``2026-12-06T08:27:56.000Z``, by the standard library);
    anything else (HTTP dates in headers) by botocore's own parser."""
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except (TypeError, ValueError):
        return parse_timestamp(value)
    return parsed if parsed.tzinfo is not None else parse_timestamp(value)


def _status(exc: bexc.ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _code(exc: bexc.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _retried(exc: bexc.ClientError) -> bool:
    return exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0


def _missing(exc: bexc.ClientError) -> bool:
    return _code(exc) in ("NoSuchKey", "404", "NotFound") or (_status(exc) == 404 and _code(exc) != "NoSuchBucket")


def _refused(exc: BaseException) -> str | None:
    if isinstance(exc, bexc.ClientError):
        code, status = _code(exc), _status(exc)
        if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            return code or str(status)
    return None


def _answer(exc: BaseException) -> str | None:
    if not isinstance(exc, bexc.ClientError):
        return None
    return f"{_code(exc) or _status(exc)} {exc.response.get('Error', {}).get('Message', '')}"


def _cause(exc: BaseException) -> BaseException:
    """The ClientError behind boto3's and s3transfer's wrappers (``S3UploadFailedError``, retries exhausted)."""
    if isinstance(exc, Boto3Error) and isinstance(exc.__cause__, bexc.ClientError):
        return exc.__cause__
    if isinstance(exc, RetriesExceededError) and isinstance(exc.last_exception, BaseException):
        return exc.last_exception
    return exc


#: botocore's, boto3's and s3transfer's exceptions as :class:`StorageError` (missing keys are handled by the primitives).
ERRORS = CloudErrors(
    service="S3",
    container="bucket",
    refused_hint="(AWS_PROFILE, AWS_ACCESS_KEY_ID...), the region and the bucket policy",
    endpoint_hint="AWS_ENDPOINT_URL, endpoint_url=",
    from_sdk=lambda exc: isinstance(
        exc, (bexc.ClientError, bexc.BotoCoreError, Boto3Error, RetriesExceededError, S3DownloadFailedError, S3UploadFailedError)
    ),
    missing_container=lambda exc: isinstance(exc, bexc.ClientError) and _code(exc) == "NoSuchBucket",
    refused=_refused,
    no_credentials=lambda exc: (
        "configure them with `aws configure`, AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an instance role"
        if isinstance(exc, bexc.NoCredentialsError)
        else None
    ),
    timed_out=lambda exc: (
        isinstance(exc, (bexc.ReadTimeoutError, bexc.ConnectTimeoutError))
        or (isinstance(exc, urllib3.exceptions.HTTPError) and "timed out" in str(exc))
    ),
    unreachable=lambda exc: isinstance(exc, (bexc.EndpointConnectionError, bexc.ConnectionClosedError)),
    answer=_answer,
    cause=_cause,
)


class S3Storage(Storage):
    """A store under ``s3://bucket/prefix``. Nothing is written until the first upload."""

    # create-if-absent and compare-and-swap are If-None-Match / If-Match headers: a server that
    # ignores them answers like one that honours them, so the core proves them first.
    conditional_writes_need_proof = True

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Storage:
        where = BucketURL.parse(url, S3Plugin.schemes, service="S3", credentials_hint=CREDENTIALS_HINT)
        return cls(where.bucket, where.prefix, **options)

    def __init__(self, bucket: str, prefix: str = "", **options: Any):
        opts = backend_options(options, DEFAULTS, "s3")
        self.location = BucketURL("s3", bucket, prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.url = self.location.url
        self.page_size = int(opts["page_size"])
        if not 1 <= self.page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        self._secrets: set[str] = set()
        self.timeout = float(opts["timeout"])
        if not self.timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        connect_timeout = float(opts["connect_timeout"] or min(CONNECT_TIMEOUT, self.timeout))
        read_timeout = float(opts["read_timeout"] or self.timeout)

        endpoint = opts["endpoint_url"]
        ignore_env = os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true"
        if endpoint is None and not ignore_env:
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
        access_key = secret_key = None
        if endpoint:
            parts = split_userinfo(endpoint)
            endpoint, access_key, secret_key = parts.url, parts.username, parts.password
            self._secrets.update(parts.secrets)
        core = botocore.session.get_session()
        # Listings: the standard library parses each key's time; botocore's dateutil took most of the CPU of a page.
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
        try:
            session = boto3.session.Session(
                botocore_session=core,
                profile_name=opts["profile"],
                region_name=opts["region"],
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key if access_key else None,
            )
        except bexc.BotoCoreError as exc:  # ProfileNotFound and friends
            raise StorageError(f"cannot configure the S3 client: {self._scrub(str(exc))}") from None
        self._session = session
        addressing = opts["addressing_style"] or ("path" if endpoint else None)
        config: dict[str, Any] = {
            "retries": {
                "mode": opts["retry_mode"] or os.environ.get("AWS_RETRY_MODE") or "standard",
                "total_max_attempts": int(opts["max_attempts"] or os.environ.get("AWS_MAX_ATTEMPTS") or 6),
            },
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_pool_connections": max(32, int(opts["max_concurrency"]) + 4),
            "user_agent_extra": "modelstore-s3",
        }
        if addressing:
            config["s3"] = {"addressing_style": addressing}
        if opts["request_checksum_calculation"]:
            config["request_checksum_calculation"] = opts["request_checksum_calculation"]
        self.client = session.client("s3", endpoint_url=endpoint or None, config=Config(**config))
        self.endpoint = self.client.meta.endpoint_url  # credential-free
        self._errors = ERRORS.bind(location=self.location, endpoint=self.endpoint, timeout=self.timeout, scrub=self._scrub)
        self._deadline = _Deadline(self.client, self.timeout)
        self.transfer_config = TransferConfig(
            multipart_threshold=int(opts["multipart_threshold"]),
            multipart_chunksize=int(opts["multipart_chunksize"]),
            max_concurrency=int(opts["max_concurrency"]),
        )

    def __repr__(self) -> str:
        return f"<S3Storage {self.url} at {self.endpoint}>"

    # --- helpers ------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return self.location.key(key)

    def _where(self, key: str | None) -> str:
        return self.location.where(key)

    def _scrub(self, text: str) -> str:
        secrets = set(self._secrets)
        try:
            creds = self._session.get_credentials() if hasattr(self, "_session") else None
        except Exception:  # noqa: BLE001 - only used to scrub messages
            creds = None
        if creds is not None:
            secrets.update(s for s in (creds.access_key, creds.secret_key, creds.token) if s)
        return scrub(text, secrets)  # whole values only: a short key never garbles other words

    def _get_object(self, key: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key), **kwargs)
        except bexc.ClientError as exc:
            if _missing(exc):
                raise KeyNotFoundError(key) from None
            raise

    # --- primitives -----------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO) -> None:
        with self._errors("write", key):
            self.client.upload_fileobj(stream, self.bucket, self._key(key), Config=self.transfer_config)

    def put_file(self, key: str, path: Path, progress: Callable[[int], None] | None = None) -> None:
        with self._errors("upload", key):
            self.client.upload_file(os.fspath(path), self.bucket, self._key(key), Config=self.transfer_config, Callback=progress)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._conditional_put(key, data, IfNoneMatch="*")

    def compare_and_swap(self, key: str, data: bytes, token: Token) -> bool:
        if not token:
            return False
        return self._conditional_put(key, data, IfMatch=token)

    def _conditional_put(self, key: str, data: bytes, **condition: str) -> bool:
        full = self._key(key)
        with self._errors("write", key):
            for attempt in range(CONFLICT_ATTEMPTS):
                try:
                    self.client.put_object(Bucket=self.bucket, Key=full, Body=data, **condition)
                    return True
                except bexc.ClientError as exc:
                    status, code = _status(exc), _code(exc)
                    if status == 412 or code == "PreconditionFailed":
                        # A retried request may have been applied by its first attempt: was it ours?
                        return _retried(exc) and self._holds(key, data)
                    if "IfMatch" in condition and _missing(exc):
                        return False  # compare-and-swap on a deleted key
                    if status == 409 or code == "ConditionalRequestConflict":
                        time.sleep(random.uniform(0, 0.02 * 2**attempt))  # a concurrent conditional write
                        continue
                    raise
            return self._holds(key, data)

    def _holds(self, key: str, data: bytes) -> bool:
        try:
            return self.read(key)[0] == data
        except KeyNotFoundError:
            return False

    def get(self, key: str) -> BinaryIO:
        with self._errors("read", key):
            return self._get_object(key)["Body"]

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, Token]:
        deadline = time.monotonic() + self.timeout  # the body re-reads below are retries of one small request
        with self._errors("read", key):
            for attempt in range(STREAM_ATTEMPTS):
                response = self._get_ranged(key, max_bytes)
                try:
                    with response["Body"] as body:
                        data = body.read()
                except _STREAM_ERRORS as exc:
                    if attempt == STREAM_ATTEMPTS - 1:
                        raise
                    if time.monotonic() >= deadline:
                        raise DeadlineExceeded(f"{type(exc).__name__} and no time left to retry") from exc
                    continue
                return data, response["ETag"]
        raise AssertionError("unreachable")

    def get_file(
        self, key: str, path: Path, progress: Callable[[int], None] | None = None, max_bytes: int | None = None
    ) -> tuple[str, int]:
        """An object its record says is past the multipart threshold (``max_bytes``) is fetched as
        ``download_file`` fetches it: a ``HeadObject``, then s3transfer's parallel ranged
        ``GetObject`` of that ETag. Otherwise one ranged ``GetObject`` of the first threshold bytes:
        for most objects that is the whole object, and a larger one continues as the parallel
        download. Either way the bytes are written at their offsets into a :class:`HashingDownload`,
        which hashes them as they land. With ``max_bytes``, an object found larger is not
        downloaded past its first ``max_bytes + 1`` bytes (the caller refuses it)."""
        threshold = max(self.transfer_config.multipart_threshold, 1)
        with self._errors("download", key):
            if max_bytes is not None and max_bytes >= threshold:
                try:
                    head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
                except bexc.ClientError as exc:
                    if _missing(exc):
                        raise KeyNotFoundError(key) from None
                    raise
                if head["ContentLength"] <= max_bytes:
                    return self._download_ranges(key, path, head["ContentLength"], head["ETag"], progress)
            first = threshold if max_bytes is None else min(threshold, max_bytes + 1)
            for attempt in range(STREAM_ATTEMPTS):
                try:
                    response = self._get_object(key, Range=f"bytes=0-{first - 1}")
                except bexc.ClientError as exc:
                    if _status(exc) == 416:  # a range of an empty object
                        with HashingDownload(path) as out:
                            return out.finish()
                    raise
                body = response["Body"]
                length = response["ContentLength"]
                content_range = response.get("ContentRange") or ""
                total = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else length
                if length < total and (max_bytes is None or total <= max_bytes):
                    body.close()
                    return self._download_ranges(key, path, total, response["ETag"], progress)
                try:
                    with body, HashingDownload(path) as out:
                        for chunk in body.iter_chunks(CHUNK_SIZE):
                            out.write(chunk)
                            if progress is not None:
                                progress(len(chunk))
                        return out.finish()
                except _STREAM_ERRORS:
                    if attempt == STREAM_ATTEMPTS - 1:
                        raise
        raise AssertionError("unreachable")

    def _download_ranges(self, key: str, path: Path, size: int, etag: str, progress: Callable[[int], None] | None) -> tuple[str, int]:
        """s3transfer's parallel ranged ``GetObject`` of the object of ``size`` bytes and ``etag``."""
        with create_transfer_manager(self.client, self.transfer_config) as manager, HashingDownload(path) as out:
            subscribers = [_KnownObject(size, etag)] + ([_Progress(progress)] if progress else [])
            manager.download(self.bucket, self._key(key), out, subscribers=subscribers).result()
            return out.finish()

    def _get_ranged(self, key: str, max_bytes: int | None) -> dict[str, Any]:
        """``GetObject`` of the whole object, or of its first ``max_bytes + 1`` bytes (S3 answers a
        range of an empty object with 416: the object is then read whole, being empty)."""
        if max_bytes is None:
            return self._get_object(key)
        try:
            return self._get_object(key, Range=f"bytes=0-{max_bytes}")
        except bexc.ClientError as exc:
            if _status(exc) != 416:
                raise
        response = self._get_object(key)
        if response["ContentLength"] > max_bytes:  # filled since the 416: read the range again
            response["Body"].close()
            return self._get_object(key, Range=f"bytes=0-{max_bytes}")
        return response

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
            except bexc.ClientError as exc:
                if not _missing(exc):
                    raise

    def stat(self, key: str) -> ObjectInfo | None:
        with self._errors("stat", key):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            except bexc.ClientError as exc:
                if _missing(exc):
                    return None
                raise
        return ObjectInfo(key, head["ContentLength"], head["LastModified"].astimezone(timezone.utc))

    def list(self, prefix: str, *, start_after: str | None = None, delimiter: str | None = None) -> Iterator[ObjectInfo]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if start_after is not None:
            kwargs["StartAfter"] = self.prefix + start_after
        if delimiter:
            kwargs["Delimiter"] = delimiter
        return self._list(kwargs, start_after)

    def _list(self, kwargs: dict[str, Any], start_after: str | None) -> Iterator[ObjectInfo]:
        n = len(self.prefix)
        with self._errors("list", kwargs["Prefix"][n:] or None):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": self.page_size}):
                entries = [
                    ObjectInfo(o["Key"][n:], o["Size"], o["LastModified"].astimezone(timezone.utc)) for o in page.get("Contents", ())
                ]
                # S3 lists a common prefix if any key below it is past StartAfter; skip it like the
                # other backends do when the prefix itself sorts before start_after.
                entries += [
                    ObjectInfo(p["Prefix"][n:])
                    for p in page.get("CommonPrefixes", ())
                    if start_after is None or p["Prefix"][n:] > start_after
                ]
                entries.sort(key=lambda e: e.key)
                yield from entries

    # --- leftovers ------------------------------------------------------------------------

    def cleanup(self, older_than: float, dry_run: bool = False, protected: frozenset[str] = frozenset()) -> list[str]:
        """Abort this store's unfinished multipart uploads started before ``older_than`` (by S3's
        clock: ``Initiated``), unless a live upload is writing their key (``protected``)."""
        removed = []
        n = len(self.prefix)
        with self._errors("list the multipart uploads of"):
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", ()):
                    key = upload["Key"][n:]
                    if not key.startswith(TOP_LEVEL) or key in protected or upload["Initiated"].timestamp() >= older_than:
                        continue
                    removed.append(f"{key} (unfinished multipart upload {upload['UploadId'][:16]})")
                    if dry_run:
                        continue
                    try:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                    except bexc.ClientError as exc:
                        if _code(exc) != "NoSuchUpload":
                            raise
        return removed

    def capability_id(self) -> str:
        return f"s3 {self.endpoint} {self.bucket}"  # credential-free: the endpoint was split

    def close(self) -> None:
        self.client.close()

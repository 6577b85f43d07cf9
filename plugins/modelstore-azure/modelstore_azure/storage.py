"""The Azure Blob Storage primitives, over azure-storage-blob.

=====================  ==============================================================================
primitive              Blob service requests
=====================  ==============================================================================
``put_if_absent``      ``Put Blob`` with ``If-None-Match: *`` (409 BlobAlreadyExists -> ``False``)
``read``               ``Get Blob``; the ETag is the compare-and-swap token
``compare_and_swap``   ``Put Blob`` with ``If-Match: <etag>`` (412 ConditionNotMet -> ``False``)
``list``               ``List Blobs`` pages (``prefix``, ``delimiter``), never truncated
``stat``               ``Get Blob Properties``
``delete``             ``Delete Blob``
``get``                ``Get Blob``, streamed in ranges pinned to the first answer's ETag
``put_file``           one ``Put Blob`` up to ``single_put_size``; past it ``Put Block`` of
                       ``block_size`` pieces, ``max_concurrency`` at a time, then ``Put Block List``
``get_file``           ``Get Blob`` of the first 32 MiB; past that parallel ranged ``Get Blob``, hashed
                       as the ranges land
=====================  ==============================================================================

Retries (5xx, 408, throttling, dropped connections) are the SDK's storage retry policy with our
backoff and a deadline per request (:class:`_DeadlineRetry`). A conditional write whose first
attempt took effect but whose answer was lost fails its own condition when retried; such a
409/412 after a retry is settled by reading the blob back: if it holds exactly our bytes, the
write was ours.

A staged upload names its blocks with a random id of its own, so concurrent uploads of one key never
mix blocks; blocks left uncommitted by a killed writer are invisible (no listing, no ``stat``
shows them) and the service discards them after a week. When another writer's ``Put Block List``
of the same key discards ours first (content addressing: same bytes), the upload is sent again.

Credentials never appear in :attr:`AzureStorage.url`, in reprs or in error messages, and errors are
raised without the SDK's exception chained (its messages can carry request URLs with a SAS).
"""

from __future__ import annotations

import base64
import io
import ipaddress
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timezone
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlsplit

import requests
from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    IncompleteReadError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobBlock, BlobPrefix, BlobServiceClient, ExponentialRetry

from modelstore_core.plugin_api import (
    BucketURL,
    CloudErrors,
    DeadlineExceeded,
    HashingDownload,
    InvalidNameError,
    KeyNotFoundError,
    ObjectInfo,
    Storage,
    StorageError,
    Token,
    backend_options,
    scrub,
)

from . import ACCOUNT_SCHEMES, CONTAINER_SCHEMES

MB = 1 << 20

#: ``ModelStore("azure://...", **options)``: accepted options and their defaults.
DEFAULTS: dict[str, Any] = {
    "account": None,  # storage account name; default: the URL's, the connection string's, else AZURE_STORAGE_ACCOUNT
    "connection_string": None,  # default: AZURE_STORAGE_CONNECTION_STRING (unless a credential option is given)
    "account_key": None,  # default: AZURE_STORAGE_KEY
    "sas_token": None,  # default: AZURE_STORAGE_SAS_TOKEN
    "credential": None,  # any azure-core credential (DefaultAzureCredential(), AzureNamedKeyCredential...)
    "endpoint": None,  # blob service URL (private endpoint, emulator); default: the connection string's, else Azure's
    "page_size": 5000,  # blobs per List Blobs page (the service's maximum)
    "timeout": 60.0,  # seconds one request may take in all, retries included (``--timeout``); see _DeadlineRetry
    "connect_timeout": None,  # per attempt; default: 5 s, at most ``timeout``
    "read_timeout": None,  # per socket read (silence, not duration); default: ``timeout``
    "max_attempts": 6,  # per request, first attempt included
    "single_put_size": 8 * MB,  # files up to this go in one Put Blob
    "block_size": 8 * MB,  # staged block size past it (raised for files over 50,000 blocks)
    "max_concurrency": 8,  # blocks or ranges in flight at once
    "single_get_size": 32 * MB,  # a download's first Get Blob (the SDK's default); past it ranges of block_size
}

#: Default per-attempt connect timeout (capped by ``timeout``).
CONNECT_TIMEOUT = 5.0
#: First retry backoff and the longest one, in seconds (the SDK's own starts at 15 s).
BACKOFF, MAX_BACKOFF = 0.25, 8.0
#: The service's limit of blocks in one blob.
MAX_BLOCKS = 50_000
#: Attempts at a staged upload whose blocks another writer's commit of the same key discarded.
UPLOAD_ATTEMPTS = 5
#: Downloads of a document or file whose answer broke off mid-body, each with the SDK's own three
#: tries (one second apart; the pipeline's retries do not cover a body): S3's reads get four too.
BODY_ATTEMPTS = 4
#: Azurite's (and the old storage emulator's) well-known account, for ``UseDevelopmentStorage=true``.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

CREDENTIALS_HINT = (
    "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, "
    "or `pip install 'modelstore-azure[identity]'` for DefaultAzureCredential (az login, managed identity)"
)


class _DeadlineRetry(ExponentialRetry):
    """The SDK's storage retries (5xx, 408, connection errors, retried reads) with a deadline per request.

    The deadline belongs to one request (one ``Put Block``, one page of a listing, one range of a
    download), not to a whole operation: a 20 GB upload is thousands of requests, each with its own
    deadline. It never interrupts an attempt in progress (the read timeout bounds silence); it stops
    a retry whose backoff would end past the deadline. An attempt that started in time runs at most
    the connect plus the read timeout, so a frozen endpoint fails a request within about twice
    ``timeout``. Backoff is exponential from :data:`BACKOFF`, with jitter (the SDK's ExponentialRetry
    starts at 15 s).
    """

    def __init__(self, timeout: float, attempts: int):
        retries = max(attempts - 1, 0)
        super().__init__(retry_total=retries, retry_connect=retries, retry_read=retries, retry_status=retries)
        self.timeout = timeout

    def configure_retries(self, request):
        settings = super().configure_retries(request)
        settings["deadline"] = time.monotonic() + self.timeout
        settings["backoff"] = 0.0
        return settings

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return settings["backoff"]

    def increment(self, settings, request, response=None, error=None) -> bool:
        if not super().increment(settings, request, response=response, error=error):
            return False
        settings["backoff"] = random.uniform(0.5, 1.0) * min(MAX_BACKOFF, BACKOFF * 2 ** (settings["count"] - 1))
        if time.monotonic() + settings["backoff"] < settings["deadline"]:
            return True
        if error is not None:
            error.modelstore_deadline = True  # read by ERRORS.timed_out
        return False


def _broken_body(exc: HttpResponseError) -> bool:
    """The SDK gave up on an answer whose body broke off (its three tries used), not a refusal."""
    return isinstance(exc.__cause__, (IncompleteReadError, DecodeError, ServiceResponseError))


class _ScrubLogs(logging.Filter):
    """Masks the credentials of every open store in urllib3's debug lines, which print request URLs
    whole (a SAS token's signature with them); the SDK's own request logging redacts them already."""

    def __init__(self):
        super().__init__()
        self._storages: weakref.WeakSet[AzureStorage] = weakref.WeakSet()
        self._lock = threading.Lock()

    def add(self, storage: AzureStorage) -> None:
        with self._lock:
            self._storages.add(storage)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = {s for storage in self._storages for s in storage._secrets}
        if secrets:
            message = record.getMessage()
            clean = scrub(message, secrets)
            if clean != message:
                record.msg, record.args = clean, ()
        return True


_scrub_logs = _ScrubLogs()
logging.getLogger("urllib3.connectionpool").addFilter(_scrub_logs)


def _code(exc: BaseException) -> str:
    """The service's error code (``BlobAlreadyExists``), whether the SDK gives a string or its enum."""
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _refused(exc: BaseException) -> str | None:
    status = getattr(exc, "status_code", None)
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return _code(exc) or (str(status) if status else type(exc).__name__)
    return None


def _answer(exc: BaseException) -> str | None:
    if not isinstance(exc, HttpResponseError):
        return None
    reason = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.status_code} {_code(exc)} {reason}"


#: The SDK's exceptions as :class:`StorageError` (missing blobs are handled by the primitives), raised
#: without the SDK's exception chained: its message can name a request URL with a SAS in it.
ERRORS = CloudErrors(
    service="Azure",
    container="container",
    refused_hint=f"({CREDENTIALS_HINT}) and the account's role assignments or SAS permissions",
    endpoint_hint="endpoint=, the connection string's BlobEndpoint",
    from_sdk=lambda exc: isinstance(exc, (AzureError, requests.RequestException)),
    missing_container=lambda exc: _code(exc) == "ContainerNotFound",
    refused=_refused,
    timed_out=lambda exc: getattr(exc, "modelstore_deadline", False) or "timed out" in str(exc).lower(),
    unreachable=lambda exc: isinstance(exc, (ServiceRequestError, ServiceResponseError)),
    answer=_answer,
    chain=False,
)


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end of ``stream`` (a raw stream may return short reads)."""
    parts, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def parse_connection_string(text: str) -> dict[str, str]:
    """``"AccountName=a;AccountKey=k;..."`` -> ``{"accountname": "a", "accountkey": "k", ...}`` (keys lower-cased)."""
    fields = {}
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            fields[name.strip().lower()] = value.strip()
    if not fields:
        raise InvalidNameError("the Azure connection string holds no Name=value fields; copy it from the portal's Access keys")
    return fields


def _is_local(host: str) -> bool:
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def parse_url(url: str) -> tuple[BucketURL, str | None, str | None]:
    """``url`` -> (``azure://container/prefix``, the account it names or None, its blob endpoint or None).

    ``azure://container/prefix`` and fsspec's ``az://`` name no account; ``abfs[s]://`` and
    ``wasb[s]://container@account.dfs|blob.<suffix>/prefix`` do (the endpoint is the account's blob
    endpoint on the same suffix).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ACCOUNT_SCHEMES and "@" in parts.netloc:
        container, _, host = parts.netloc.rpartition("@")
        if ":" in container or not container:
            raise InvalidNameError(f"{scheme}:// URLs take no credentials; use {CREDENTIALS_HINT}")
        account, _, suffix = host.partition(".")
        service, _, rest = suffix.partition(".")
        if not account or service not in ("dfs", "blob") or not rest:
            raise InvalidNameError(f"a {scheme}:// store URL reads {scheme}://container@account.dfs.core.windows.net/prefix")
        where = BucketURL.parse(f"azure://{container}{parts.path}", ("azure",), service="Azure", credentials_hint=CREDENTIALS_HINT)
        return where, account, f"https://{account}.blob.{rest}"
    if scheme in ACCOUNT_SCHEMES:
        raise InvalidNameError(f"a {scheme}:// store URL reads {scheme}://container@account.dfs.core.windows.net/prefix")
    where = BucketURL.parse(url, CONTAINER_SCHEMES, service="Azure", credentials_hint=CREDENTIALS_HINT)
    return BucketURL("azure", where.bucket, where.prefix), None, None


class _BlobReader(io.RawIOBase):
    """A read-only stream over a blob download (ranges fetched as read), errors as StorageError."""

    def __init__(self, storage: AzureStorage, key: str, downloader):
        self._storage, self._key, self._downloader = storage, key, downloader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with self._storage._errors("read", self._key):
            data = self._downloader.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class AzureStorage(Storage):
    """A store under ``azure://container/prefix``. Nothing is written until the first upload."""

    # create-if-absent and compare-and-swap are If-None-Match / If-Match conditions: an emulator or
    # gateway that ignores them answers like one that honours them, so the core proves them first.
    conditional_writes_need_proof = True

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AzureStorage:
        where, account, endpoint = parse_url(url)
        if account is not None:
            if options.get("account") not in (None, account):
                raise InvalidNameError(f"the store URL names account {account!r} and account= names {options['account']!r}")
            options = {**options, "account": account}
            if endpoint and not options.get("endpoint") and not options.get("connection_string"):
                options["endpoint"] = endpoint
        return cls(where.bucket, where.prefix, **options)

    def __init__(self, container: str, prefix: str = "", **options: Any):
        opts = backend_options(options, DEFAULTS, "azure")
        self.location = BucketURL("azure", container, prefix)
        self.container_name = container
        self.prefix = prefix
        self.url = self.location.url
        self.page_size = int(opts["page_size"])
        if not 1 <= self.page_size <= 5000:
            raise ValueError("page_size must be between 1 and 5000")
        self.timeout = float(opts["timeout"])
        if not self.timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.connect_timeout = float(opts["connect_timeout"] or min(CONNECT_TIMEOUT, self.timeout))
        self.read_timeout = float(opts["read_timeout"] or self.timeout)
        self.block_size = int(opts["block_size"])
        self.single_put_size = int(opts["single_put_size"])
        self.max_concurrency = int(opts["max_concurrency"])
        self.single_get_size = int(opts["single_get_size"])
        if self.block_size < 1 or self.single_put_size < 0 or self.max_concurrency < 1 or self.single_get_size < 1:
            raise ValueError("block_size and max_concurrency must be positive, single_put_size not negative")
        self._secrets: set[str] = set()

        account, credential, endpoint = self._configure(opts)
        _scrub_logs.add(self)  # its secrets are all known now
        self.account = account
        self.endpoint = endpoint  # credential-free: userinfo and queries are refused
        self._errors = ERRORS.bind(location=self.location, endpoint=endpoint, timeout=self.timeout, scrub=self._scrub)
        self.session = requests.Session()  # ours, sized for parallel blocks; every attempt goes through it
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(32, self.max_concurrency + 4))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        try:
            self.client = BlobServiceClient(
                endpoint,
                credential=credential,
                session=self.session,
                retry_policy=_DeadlineRetry(self.timeout, int(opts["max_attempts"])),
                connection_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                max_block_size=self.block_size,
                max_single_get_size=self.single_get_size,
                max_chunk_get_size=self.block_size,  # ranges of a large download (the SDK's default: 4 MiB)
                user_agent="modelstore-azure",
            )
        except (ValueError, AzureError) as exc:
            raise StorageError(f"cannot configure the Azure client: {self._scrub(str(exc))}") from None
        self.container = self.client.get_container_client(container)

    def _configure(self, opts: dict[str, Any]) -> tuple[str | None, Any, str]:
        """(account, credential, blob endpoint) from the options, then the environment."""
        explicit = any(opts[name] is not None for name in ("credential", "account_key", "sas_token"))
        conn = opts["connection_string"] or (None if explicit else os.environ.get("AZURE_STORAGE_CONNECTION_STRING"))
        fields: dict[str, str] = {}
        if conn:
            self._secrets.add(conn)
            fields = parse_connection_string(conn)
            for name in ("accountkey", "sharedaccesssignature"):
                self._add_secret(fields.get(name))
            if fields.get("usedevelopmentstorage", "").lower() == "true":
                fields.setdefault("accountname", DEV_ACCOUNT)
                fields.setdefault("accountkey", DEV_KEY)
                fields.setdefault("blobendpoint", f"http://127.0.0.1:10000/{DEV_ACCOUNT}")
        self._add_secret(DEV_KEY)  # the emulator's key is public, but a key all the same

        account = opts["account"] or fields.get("accountname") or os.environ.get("AZURE_STORAGE_ACCOUNT") or None
        if opts["account"] and fields.get("accountname") and fields["accountname"] != opts["account"]:
            raise InvalidNameError(
                f"the connection string is for account {fields['accountname']!r}, not {opts['account']!r}; "
                "give the other account's connection string, or account_key=/sas_token="
            )

        endpoint = opts["endpoint"] or fields.get("blobendpoint")
        if not endpoint:
            if not account:
                raise StorageError(
                    f"no Azure storage account named; pass account=, or set {CREDENTIALS_HINT}",
                    cli=f"no Azure storage account named; set {CREDENTIALS_HINT}",
                )
            protocol = fields.get("defaultendpointsprotocol", "https")
            endpoint = f"{protocol}://{account}.blob.{fields.get('endpointsuffix', 'core.windows.net')}"
        endpoint = self._check_endpoint(endpoint, account)

        credential = opts["credential"]
        if credential is not None:
            self._add_secret(getattr(credential, "signature", None))  # AzureSasCredential
            named = getattr(credential, "named_key", None)  # AzureNamedKeyCredential
            self._add_secret(getattr(named, "key", None))
        elif fields.get("accountkey"):
            credential = AzureNamedKeyCredential(fields.get("accountname") or account or "", fields["accountkey"])
        elif fields.get("sharedaccesssignature"):
            credential = AzureSasCredential(fields["sharedaccesssignature"].lstrip("?"))
        elif key := opts["account_key"] or (None if explicit else os.environ.get("AZURE_STORAGE_KEY")):
            self._add_secret(key)
            if not account:
                raise StorageError(
                    "an account key needs the account's name: pass account= or set AZURE_STORAGE_ACCOUNT",
                    cli="an account key needs the account's name: set AZURE_STORAGE_ACCOUNT",
                )
            credential = AzureNamedKeyCredential(account, key)
        elif sas := opts["sas_token"] or (None if explicit else os.environ.get("AZURE_STORAGE_SAS_TOKEN")):
            self._add_secret(sas)
            credential = AzureSasCredential(sas.lstrip("?"))
        else:
            credential = self._default_credential()
        return account, credential, endpoint

    def _add_secret(self, value: str | None) -> None:
        """Remember a credential to scrub, with the ``sig`` of a SAS token on its own."""
        if not value:
            return
        self._secrets.update({value, value.lstrip("?")})
        for name, part in parse_qsl(value.lstrip("?")):
            if name == "sig":
                self._secrets.add(part)

    def _check_endpoint(self, endpoint: str, account: str | None) -> str:
        parts = urlsplit(endpoint)
        if "@" in parts.netloc:
            raise InvalidNameError(
                "the Azure endpoint URL takes no credentials (user:password@); pass account_key= or sas_token=",
                cli="the Azure endpoint URL takes no credentials (user:password@); set AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN",
            )
        if parts.query or parts.fragment:
            self._add_secret(parts.query)
            endpoint_only = "the Azure endpoint URL takes no query (a SAS token?): give it as https://account.blob.core.windows.net"
            raise InvalidNameError(
                f"{endpoint_only} and pass sas_token= or AZURE_STORAGE_SAS_TOKEN", cli=f"{endpoint_only} and set AZURE_STORAGE_SAS_TOKEN"
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidNameError("the Azure endpoint is an http(s) URL, such as https://account.blob.core.windows.net")
        path = parts.path.rstrip("/")
        if not path and _is_local(parts.hostname):
            # Emulators (Azurite) serve accounts path-style: http://127.0.0.1:10000/devstoreaccount1
            if not account:
                raise StorageError(
                    f"an emulator endpoint needs the account's name: pass account= (Azurite's is {DEV_ACCOUNT})",
                    cli=f"an emulator endpoint needs the account's name: set AZURE_STORAGE_ACCOUNT (Azurite's is {DEV_ACCOUNT})",
                )
            path = "/" + account
        return f"{parts.scheme}://{parts.netloc}{path}"

    @staticmethod
    def _default_credential():
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError:
            raise StorageError(f"no Azure credentials found; set {CREDENTIALS_HINT}") from None
        return DefaultAzureCredential()

    def __repr__(self) -> str:
        return f"<AzureStorage {self.url} at {self.endpoint}>"

    # --- helpers ------------------------------------------------------------------

    def _blob(self, key: str):
        return self.container.get_blob_client(self.location.key(key))

    def _where(self, key: str | None) -> str:
        return self.location.where(key)

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)  # whole values only: a short value never garbles other words

    @staticmethod
    def _blob_missing(exc: ResourceNotFoundError) -> bool:
        return _code(exc) != "ContainerNotFound"

    # --- primitives -----------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO) -> None:
        with self._errors("write", key):
            first = _read_exact(stream, max(self.single_put_size, 1) + 1)
            if len(first) <= self.single_put_size:
                self._blob(key).upload_blob(first, overwrite=True, length=len(first))
                return

            def pieces() -> Iterator[Callable[[], bytes]]:
                for i in range(0, len(first), self.block_size):
                    yield lambda i=i: first[i : i + self.block_size]
                while chunk := _read_exact(stream, self.block_size):
                    yield lambda chunk=chunk: chunk

            self._staged(key, pieces, None, repeatable=False)

    def put_file(self, key: str, path: Path, progress: Callable[[int], None] | None = None) -> None:
        with self._errors("upload", key), open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size <= self.single_put_size:
                data = f.read()
                self._blob(key).upload_blob(data, overwrite=True, length=len(data))
                if progress is not None:
                    progress(len(data))
                return
            fd = f.fileno()
            block = max(self.block_size, -(-size // MAX_BLOCKS))

            def pieces() -> Iterator[Callable[[], bytes]]:
                for offset in range(0, size, block):  # each read in the thread that sends it
                    yield lambda offset=offset: os.pread(fd, min(block, size - offset), offset)

            self._staged(key, pieces, progress, repeatable=True)

    def _staged(self, key: str, pieces: Callable[[], Iterable[Callable[[], bytes]]], progress, *, repeatable: bool) -> None:
        """Put Block of each piece, ``max_concurrency`` in flight (memory: that many blocks), then Put Block List."""
        blob = self._blob(key)
        for attempt in range(UPLOAD_ATTEMPTS):
            upload_id = uuid.uuid4().hex  # block ids of one upload: never another writer's

            def stage(index: int, read: Callable[[], bytes], upload_id: str = upload_id) -> str:
                data = read()
                block_id = base64.b64encode(f"{upload_id}-{index:08d}".encode()).decode()
                blob.stage_block(block_id, data, length=len(data))
                if progress is not None:
                    progress(len(data))
                return block_id

            ids: dict[int, str] = {}
            with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="modelstore-azure") as pool:
                pending: dict = {}
                try:
                    for index, read in enumerate(pieces()):
                        if len(pending) >= self.max_concurrency:
                            done, _ = wait(pending, return_when=FIRST_COMPLETED)
                            for future in done:
                                ids[pending.pop(future)] = future.result()
                        pending[pool.submit(stage, index, read)] = index
                    for future, index in pending.items():
                        ids[index] = future.result()
                except BaseException:
                    for future in pending:
                        future.cancel()
                    raise
            try:
                blob.commit_block_list([BlobBlock(block_id=ids[i]) for i in range(len(ids))])
                return
            except HttpResponseError as exc:
                # Another writer's commit of this key discarded our uncommitted blocks.
                if _code(exc) != "InvalidBlockList" or not repeatable or attempt == UPLOAD_ATTEMPTS - 1:
                    raise

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._conditional_put(key, data, match_condition=MatchConditions.IfMissing)

    def compare_and_swap(self, key: str, data: bytes, token: Token) -> bool:
        if not token:
            return False
        return self._conditional_put(key, data, etag=token, match_condition=MatchConditions.IfNotModified)

    def _conditional_put(self, key: str, data: bytes, **condition: Any) -> bool:
        retried: list = []
        with self._errors("write", key):
            try:
                self._blob(key).upload_blob(
                    data, overwrite=True, length=len(data), retry_hook=lambda *a, **k: retried.append(1), **condition
                )
                return True
            except (ResourceExistsError, ResourceModifiedError) as exc:
                if _code(exc) not in ("BlobAlreadyExists", "ConditionNotMet"):
                    raise
                # A retried request may have been applied by its first attempt: was it ours?
                return bool(retried) and self._holds(key, data)
            except ResourceNotFoundError as exc:
                if "etag" in condition and self._blob_missing(exc):
                    return False  # compare-and-swap on a deleted blob
                raise

    def _holds(self, key: str, data: bytes) -> bool:
        try:
            return self.read(key)[0] == data
        except KeyNotFoundError:
            return False

    def _download(self, key: str, **kwargs: Any):
        try:
            return self._blob(key).download_blob(**kwargs)
        except ResourceNotFoundError as exc:
            if self._blob_missing(exc):
                raise KeyNotFoundError(key) from None
            raise

    def get(self, key: str) -> BinaryIO:
        with self._errors("read", key):
            return io.BufferedReader(_BlobReader(self, key, self._download(key)), buffer_size=1 << 20)

    def _download_first(self, key: str, max_bytes: int | None, **kwargs: Any):
        """The download of the whole blob, or of its first ``max_bytes + 1`` bytes (a range of an
        empty blob is answered 416: it is then downloaded whole, being empty)."""
        if max_bytes is None:
            return self._download(key, **kwargs)
        try:
            return self._download(key, offset=0, length=max_bytes + 1, **kwargs)
        except HttpResponseError as exc:
            if exc.status_code != 416:
                raise
        return self._download(key, **kwargs)

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, Token]:
        deadline = time.monotonic() + self.timeout  # the downloads below are retries of one small request
        with self._errors("read", key):
            for attempt in range(BODY_ATTEMPTS):
                try:
                    downloader = self._download_first(key, max_bytes)
                    return downloader.readall(), downloader.properties.etag
                except HttpResponseError as exc:
                    if not _broken_body(exc) or attempt == BODY_ATTEMPTS - 1:
                        raise
                    if time.monotonic() >= deadline:
                        raise DeadlineExceeded(f"{type(exc.__cause__).__name__} and no time left to retry") from exc
        raise AssertionError("unreachable")

    def get_file(
        self, key: str, path: Path, progress: Callable[[int], None] | None = None, max_bytes: int | None = None
    ) -> tuple[str, int]:
        done = [0]

        def hook(current: int, total: int | None) -> None:
            progress(current - done[0])
            done[0] = current

        with self._errors("download", key):
            hooked = {"max_concurrency": self.max_concurrency, "progress_hook": hook if progress else None}
            for attempt in range(BODY_ATTEMPTS):
                done[0] = 0  # a new download counts from its start
                try:
                    downloader = self._download_first(key, max_bytes, **hooked)
                    with HashingDownload(path) as out:  # the SDK writes its parallel ranges at offsets: hashed as they land
                        downloader.readinto(out)
                        return out.finish()
                except HttpResponseError as exc:  # each range had its tries: a large file's download starts again
                    if not _broken_body(exc) or attempt == BODY_ATTEMPTS - 1:
                        raise
        raise AssertionError("unreachable")

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            try:
                self._blob(key).delete_blob()
            except ResourceNotFoundError as exc:
                if not self._blob_missing(exc):
                    raise

    def stat(self, key: str) -> ObjectInfo | None:
        with self._errors("stat", key):
            try:
                props = self._blob(key).get_blob_properties()
            except ResourceNotFoundError as exc:
                if self._blob_missing(exc):
                    return None
                raise
        return ObjectInfo(key, props.size, props.last_modified.astimezone(timezone.utc))

    def list(self, prefix: str, *, start_after: str | None = None, delimiter: str | None = None) -> Iterator[ObjectInfo]:
        return self._list(prefix, start_after, delimiter)

    def _list(self, prefix: str, start_after: str | None, delimiter: str | None) -> Iterator[ObjectInfo]:
        # List Blobs has no StartAfter that every service version honours: the listing starts at the
        # prefix and what sorts up to ``start_after`` is skipped here.
        n = len(self.prefix)
        skip = self.prefix + start_after if start_after is not None else None
        with self._errors("list", prefix or None):
            if delimiter:
                items = self.container.walk_blobs(
                    name_starts_with=self.prefix + prefix, delimiter=delimiter, results_per_page=self.page_size
                )
            else:
                items = self.container.list_blobs(name_starts_with=self.prefix + prefix, results_per_page=self.page_size)
            for page in items.by_page():
                entries = []
                for item in page:
                    if skip is not None and item.name <= skip:
                        continue
                    if isinstance(item, BlobPrefix):
                        entries.append(ObjectInfo(item.name[n:]))
                    else:
                        entries.append(ObjectInfo(item.name[n:], item.size, item.last_modified.astimezone(timezone.utc)))
                entries.sort(key=lambda e: e.key)
                yield from entries

    def capability_id(self) -> str:
        return f"azure {self.endpoint} {self.container_name}"  # credential-free: see _check_endpoint

    def close(self) -> None:
        self.client.close()
        self.session.close()


__all__ = ["DEFAULTS", "AzureStorage", "parse_connection_string", "parse_url"]

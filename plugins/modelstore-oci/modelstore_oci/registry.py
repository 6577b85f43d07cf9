"""A small client of the OCI distribution API (https://github.com/opencontainers/distribution-spec)
for one repository: blobs (HEAD, streamed GET, monolithic or chunked upload), manifests, and
referrers (the API, else the ``sha256-<hex>`` tag schema).

Everything streams through fixed buffers: a blob is never held in memory. Idempotent requests
are retried on connection errors and 5xx answers; a 401 is answered once (Basic, or a Bearer
token from the service the challenge names) and the request sent again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import urlencode, urljoin

import requests
from requests.adapters import HTTPAdapter

from modelstore_core.plugin_api import StorageError

from .auth import Challenge, Credentials, find_credentials
from .reference import Reference

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
#: What a manifest request accepts (Docker's own types too, so that an image is named as one, not misread).
MANIFEST_TYPES = (
    MANIFEST,
    INDEX,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
#: The largest manifest or index read (distribution's own limit is 4 MiB).
MAX_MANIFEST = 4 << 20
#: Bytes per socket write and per read of a blob.
BLOCK = 1 << 20
#: The chunk size of a blob a registry refuses in one request (it may ask for larger chunks).
CHUNK_SIZE = 64 << 20
RETRIES = 4


class RegistryError(StorageError):
    """The registry refused a request (``status``), or could not be reached (``status`` is ``None``)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def passing(self) -> bool:
        """Whether trying again may help: no answer, or a server error."""
        return self.status is None or self.status >= 500


class _Adapter(HTTPAdapter):
    """Writes request bodies in 1 MiB blocks (urllib3's default is 16 KiB)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["blocksize"] = BLOCK
        super().init_poolmanager(*args, **kwargs)


class Body:
    """A request body read from ``open()`` (called again for a retry), ``size`` bytes long: what
    requests streams with a Content-Length, never buffering it whole."""

    def __init__(self, open_: Callable[[], BinaryIO], size: int, *, again: bool = True):
        self._open, self.size = open_, size
        #: whether ``open_`` can give the bytes again (for a request sent again after a challenge)
        self.again = again
        self._stream: BinaryIO | None = None

    def fresh(self) -> Body:
        if self._stream is not None:
            self._stream.close()
        self._stream = self._open()
        return self

    def read(self, n: int = -1) -> bytes:
        assert self._stream is not None
        return self._stream.read(n)

    def __len__(self) -> int:
        return self.size

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class Registry:
    """One repository of one registry."""

    def __init__(
        self, ref: Reference, *, plain_http: bool = False, timeout: float = 60.0, chunk_size: int | None = None, parallel: int = 4
    ):
        self.ref = ref
        self.base = f"{'http' if plain_http else 'https'}://{ref.host}"
        self.timeout, self.chunk_size = timeout, chunk_size
        #: blobs moved at once
        self.parallel = parallel
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "modelstore-oci"
        adapter = _Adapter(pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._credentials: Credentials | None | bool = False  # False: not looked up yet
        self._authorization: str | None = None
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        #: what a push sent, for reports: blobs uploaded and their bytes
        self.uploaded_blobs = 0
        self.uploaded_bytes = 0

    def close(self) -> None:
        self.session.close()

    def url(self, path: str, **query: str) -> str:
        return f"{self.base}/v2/{self.ref.repository}/{path}" + (f"?{urlencode(query)}" if query else "")

    # --- requests ----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        expect: tuple[int, ...] = (200,),
        headers: dict[str, str] | None = None,
        body: bytes | Body | None = None,
        stream: bool = False,
        retry: bool = True,
    ) -> requests.Response:
        """Send a request and return the answer if its status is in ``expect``; a 401 is answered once
        (and the body sent again), idempotent requests are retried on connection errors and 5xx."""
        challenged = False
        attempt = 0
        while True:
            sent = dict(headers or {})
            if self._authorization is not None:
                sent["Authorization"] = self._authorization
            data = body.fresh() if isinstance(body, Body) else body
            try:
                answer = self.session.request(method, url, headers=sent, data=data, stream=stream, timeout=self.timeout)
            except requests.RequestException as exc:
                if retry and attempt < RETRIES - 1:
                    attempt += 1
                    time.sleep(0.2 * 2**attempt)
                    continue
                raise RegistryError(f"{what}: cannot reach {self.base} ({type(exc).__name__})") from None
            finally:
                if isinstance(body, Body):
                    body.close()
            if answer.status_code == 401 and not challenged and (not isinstance(body, Body) or body.again):
                challenged = True
                header = answer.headers.get("WWW-Authenticate", "")
                answer.close()
                self._answer(header, what)
                continue
            if answer.status_code in (429, 500, 502, 503, 504) and retry and attempt < RETRIES - 1:
                answer.close()
                attempt += 1
                time.sleep(0.2 * 2**attempt)
                continue
            if answer.status_code not in expect:
                raise self._error(answer, what)
            return answer

    def _error(self, answer: requests.Response, what: str) -> RegistryError:
        status = answer.status_code
        detail = ""
        try:
            errors = answer.json().get("errors") if len(answer.content) < 65536 else None
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                detail = f" {errors[0].get('code', '')}: {str(errors[0].get('message', ''))[:200]}"
        except (ValueError, AttributeError):
            pass
        answer.close()
        if status == 401:
            creds = self.credentials()
            if creds is None:
                return RegistryError(
                    f"{what}: {self.ref.host} needs credentials: `docker login {self.ref.host}`, or set $REGISTRY_USERNAME"
                    " and $REGISTRY_PASSWORD",
                    status,
                )
            return RegistryError(f"{what}: {self.ref.host} refused the credentials of {creds.username!r} (from {creds.source})", status)
        if status == 403:
            return RegistryError(
                f"{what}: {self.ref.host} denied it (403{detail}); do these credentials allow it on {self.ref.repository}?", status
            )
        return RegistryError(f"{what}: {self.ref.host} answered {status}{detail}", status)

    def credentials(self) -> Credentials | None:
        if self._credentials is False:
            self._credentials = find_credentials(self.ref.host)
        return self._credentials  # type: ignore[return-value]

    def _answer(self, header: str, what: str) -> None:
        """Answer a challenge: Basic with the credentials, or a Bearer token from the service it names."""
        challenge = Challenge.parse(header)
        with self._lock:
            if challenge is None:
                raise RegistryError(f"{what}: {self.ref.host} asks for an authentication this client does not speak ({header[:80]!r})")
            creds = self.credentials()
            if challenge.scheme == "basic":
                if creds is None:
                    raise self._error(_Unauthorized(), what)
                self._authorization = creds.basic()
                return
            scope = challenge.params.get("scope", f"repository:{self.ref.repository}:pull")
            if scope in self._tokens and self._authorization != self._tokens[scope]:
                self._authorization = self._tokens[scope]  # another thread fetched it
                return
            realm = challenge.params.get("realm", "")
            if not realm.startswith(("https://", "http://")):
                raise RegistryError(f"{what}: {self.ref.host} names no usable token service ({realm[:80]!r})")
            query = {k: v for k, v in (("service", challenge.params.get("service")), ("scope", scope)) if v}
            try:
                answer = self.session.get(
                    realm, params=query, headers={"Authorization": creds.basic()} if creds else {}, timeout=self.timeout
                )
            except requests.RequestException as exc:
                raise RegistryError(f"{what}: cannot reach the token service of {self.ref.host} ({type(exc).__name__})") from None
            if answer.status_code in (401, 403):
                raise self._error(_Unauthorized(), what)
            try:
                doc = answer.json()
                token = doc.get("token") or doc.get("access_token")
            except (ValueError, AttributeError):
                token = None
            if answer.status_code != 200 or not isinstance(token, str) or not token:
                raise RegistryError(f"{what}: the token service of {self.ref.host} answered {answer.status_code} without a token")
            self._tokens[scope] = self._authorization = f"Bearer {token}"

    # --- blobs -------------------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        answer = self.request("HEAD", self.url(f"blobs/{digest}"), f"checking blob {digest}", expect=(200, 404))
        answer.close()
        return answer.status_code == 200

    def upload_blob(self, digest: str, size: int, open_: Callable[[], BinaryIO]) -> None:
        """Upload the ``size`` bytes that ``open_()`` streams, which must hash to ``digest``: in one
        streamed ``PUT`` (the upload every registry takes), or in ``PATCH`` chunks when a chunk size
        is set and the blob is larger, or when the registry refuses so large a request (413)."""
        what = f"uploading blob {digest}"
        location, least = self._start_upload(what)
        if self.chunk_size is None or size <= self.chunk_size:
            for attempt in range(RETRIES):
                try:
                    answer = self.request(
                        "PUT",
                        _with(location, digest=digest),
                        what,
                        expect=(201, 413),
                        headers={"Content-Type": "application/octet-stream"},
                        body=Body(open_, size),
                        retry=False,  # a failed upload session is not taken up again: a new one is started
                    )
                    break
                except RegistryError as exc:
                    if attempt == RETRIES - 1 or not exc.passing:
                        raise
                    time.sleep(0.2 * 2**attempt)
                    location, least = self._start_upload(what)
            answer.close()
            if answer.status_code == 201:
                self._count(size)
                return
            location, least = self._start_upload(what)  # too large for one request: in chunks
        chunk = max(self.chunk_size or CHUNK_SIZE, least)
        stream = open_()
        try:
            for start in range(0, size, chunk):
                n = min(chunk, size - start)
                piece = _Slice(stream, n)
                answer = self.request(
                    "PATCH",
                    location,
                    what,
                    expect=(202,),
                    headers={"Content-Type": "application/octet-stream", "Content-Range": f"{start}-{start + n - 1}"},
                    body=Body(lambda piece=piece: piece, n, again=False),
                    retry=False,  # a chunk's bytes cannot be read again: the rerun of a push resumes
                )
                answer.close()
                location = urljoin(self.base, answer.headers["Location"])
        finally:
            stream.close()
        self.request("PUT", _with(location, digest=digest), what, expect=(201,), body=b"").close()
        self._count(size)

    def _start_upload(self, what: str) -> tuple[str, int]:
        """An upload session: its location, and the smallest chunk the registry takes."""
        started = self.request("POST", self.url("blobs/uploads/"), what, expect=(202,))
        started.close()
        return urljoin(self.base, started.headers["Location"]), int(started.headers.get("OCI-Chunk-Min-Length", "0") or 0)

    def _count(self, size: int) -> None:
        with self._lock:
            self.uploaded_blobs += 1
            self.uploaded_bytes += size

    def open_blob(self, digest: str) -> requests.Response:
        """The blob's bytes, streamed (``answer.raw``); the caller verifies them and closes it."""
        return self.request("GET", self.url(f"blobs/{digest}"), f"fetching blob {digest}", stream=True)

    # --- manifests ---------------------------------------------------------------------------------

    def get_manifest(self, reference: str, what: str, *, missing_ok: bool = False) -> tuple[bytes, str, str | None] | None:
        """A manifest or index (bytes, media type, the digest the registry says it has); ``None``
        when absent and ``missing_ok``."""
        answer = self.request(
            "GET",
            self.url(f"manifests/{reference}"),
            what,
            expect=(200, 404) if missing_ok else (200,),
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            stream=True,
        )
        with answer:
            if answer.status_code == 404:
                return None
            data = answer.raw.read(MAX_MANIFEST + 1, decode_content=True)
        if len(data) > MAX_MANIFEST:
            raise RegistryError(f"{what}: the manifest is larger than {MAX_MANIFEST} bytes; refused")
        media_type = answer.headers.get("Content-Type", "").split(";")[0].strip()
        return data, media_type, answer.headers.get("Docker-Content-Digest")

    def put_manifest(self, reference: str, data: bytes, media_type: str, what: str) -> requests.structures.CaseInsensitiveDict:
        answer = self.request(
            "PUT", self.url(f"manifests/{reference}"), what, expect=(201,), headers={"Content-Type": media_type}, body=data
        )
        answer.close()
        return answer.headers

    # --- referrers ---------------------------------------------------------------------------------

    def referrers(self, digest: str, artifact_type: str) -> list[dict[str, Any]]:
        """Descriptors of the manifests whose subject is ``digest``, of ``artifact_type``: from the
        referrers API, else from the ``sha256-<hex>`` tag (registries without the API)."""
        what = f"listing what refers to {digest}"
        answer = self.request("GET", self.url(f"referrers/{digest}", artifactType=artifact_type), what, expect=(200, 404, 400, 405))
        if answer.status_code == 200 and answer.headers.get("Content-Type", "").startswith(INDEX):
            data = answer.content[: MAX_MANIFEST + 1]
        else:
            answer.close()
            found = self.get_manifest(fallback_tag(digest), what, missing_ok=True)
            if found is None:
                return []
            data = found[0]
        try:
            manifests = json.loads(data).get("manifests")
        except (ValueError, AttributeError):
            raise RegistryError(f"{what}: the index of referrers is not JSON") from None
        if not isinstance(manifests, list):
            return []
        return [m for m in manifests if isinstance(m, dict) and m.get("artifactType") == artifact_type]

    def add_referrer(self, subject: str, descriptor: dict[str, Any], headers: Any) -> None:
        """After a manifest with ``subject`` was put: a registry without the referrers API (no
        ``OCI-Subject`` answer) learns of it through the ``sha256-<hex>`` tag's index."""
        if headers.get("OCI-Subject"):
            return
        what = f"listing {descriptor['digest']} among the referrers of {subject}"
        tag = fallback_tag(subject)
        found = self.get_manifest(tag, what, missing_ok=True)
        index: dict[str, Any] = {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}
        if found is not None:
            try:
                index = json.loads(found[0])
            except ValueError:
                pass  # replaced: an unreadable index lists nothing anyone could use
            if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
                index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}
        if any(isinstance(m, dict) and m.get("digest") == descriptor["digest"] for m in index["manifests"]):
            return
        index["manifests"].append(descriptor)
        self.put_manifest(tag, json.dumps(index, separators=(",", ":")).encode(), INDEX, what)


def fallback_tag(digest: str) -> str:
    """The referrers tag schema: ``sha256:abc…`` -> ``sha256-abc…``."""
    return digest.replace(":", "-", 1)


def _with(location: str, **query: str) -> str:
    return location + ("&" if "?" in location else "?") + urlencode(query)


class _Slice:
    """The next ``n`` bytes of ``stream``, read once."""

    def __init__(self, stream: BinaryIO, n: int):
        self._stream, self._left = stream, n

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._stream.read(n) if n else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        """The stream goes on with the next chunk."""


class _Unauthorized:
    """Stands for a 401 answer in :meth:`Registry._error`."""

    status_code = 401
    content = b""

    def json(self) -> dict:
        return {}

    def close(self) -> None:
        pass

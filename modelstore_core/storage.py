"""The storage primitives a backend implements.

They are shaped for object stores (S3, GCS), not for a filesystem: whole-object
streaming put and get, create-if-absent, compare-and-swap on a small record,
listing by prefix in key order, and delete. Versions, states, deduplication and
garbage collection are built once on top of these, in :mod:`modelstore_core.protocol`,
so a new backend is one short module (see ``default_plugins/local_storage.py``).

Threads: the core calls one ``Storage`` object from several threads at once (records are read
concurrently, files move while others are hashed), so every method must be safe to call
concurrently; share a thread-safe client (boto3 clients and ``requests`` sessions are) or keep
one per thread. Processes and machines each open their own.

Keys are ``/``-separated strings made only of the characters that
:mod:`modelstore_core.names` allows; a backend never sees ``..``, a leading ``/``, a
part starting with ``.``, or a key that is also the "directory" of another key (``a`` and
``a/b``), so a filesystem maps keys to paths directly.
"""

from __future__ import annotations

import abc
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from .hashing import CHUNK_SIZE, hash_file
from .progress import Advance

#: Opaque value returned by :meth:`Storage.read` and checked by :meth:`Storage.compare_and_swap`
#: (an ETag, a generation number, a content hash...).
Token = Any


@dataclass(frozen=True)
class ObjectInfo:
    """One entry of a listing. For a common prefix (``delimiter`` listings) only ``key`` is set."""

    key: str
    size: int | None = None
    modified: datetime | None = None  # timezone-aware UTC

    @property
    def is_prefix(self) -> bool:
        return self.size is None and self.modified is None


class CountingReader:
    """A read-only stream that reports how many bytes were read through it."""

    def __init__(self, stream: BinaryIO, advance: Advance):
        self._stream, self._advance = stream, advance

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._advance(len(data))
        return data

    def readinto(self, buffer) -> int:
        readinto = getattr(self._stream, "readinto", None)
        if readinto is None:
            data = self._stream.read(len(buffer))
            buffer[: len(data)] = data
            n = len(data)
        else:
            n = readinto(buffer) or 0
        self._advance(n)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __enter__(self) -> CountingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()


class StagedFile:
    """A local file hashed (and, on some backends, already copied) and ready to be placed under its key.

    The default placing uploads it with :meth:`Storage.put_file` unless an object of the same size is
    already at the key (content addressing makes that object identical).
    """

    def __init__(self, storage: Storage, path: Path, sha256: str, size: int, written_privately: tuple[int, int] | None = None):
        self.storage, self.path, self.sha256, self.size = storage, path, sha256, size
        #: ``(device, inode)`` of the staged file when only this user could write it from the moment
        #: its bytes were hashed until it was placed (the local backend's files taken from the private
        #: scratch directory into a ``.tmp`` only this user can write, made read-only before they left
        #: it); ``None`` otherwise. Once placed, a local store's object
        #: that is still this file may be proven for this machine's loads (:meth:`.Cache.remember_upload`).
        self.written_privately = written_privately

    def place(self, key: str, progress: Advance | None = None) -> bool:
        """Make the file visible at ``key``; ``False`` if it was already there (nothing written)."""
        existing = self.storage.stat(key)
        if existing is not None and existing.size == self.size:
            return False
        self.storage.put_file(key, self.path, progress=progress)
        return True

    def discard(self) -> None:
        """Drop what staging made (after it was placed, or if it will not be)."""

    def keep_alive(self) -> None:
        """Called on every heartbeat of the upload (:mod:`~modelstore_core.protocol.liveness`): keep
        what staging made from looking abandoned to ``gc`` (default: nothing to keep)."""


class Storage(abc.ABC):
    """Base class of storage backends. Subclasses implement the abstract primitives."""

    #: The URL the store was opened with, with any credentials removed (safe to print).
    url: str = ""

    #: True when :meth:`put_if_absent` and :meth:`compare_and_swap` rest on a server honouring
    #: conditional requests (object stores): the core then proves they hold before the first write
    #: (:mod:`modelstore_core.protocol.probe`) and refuses to write if they do not.
    conditional_writes_need_proof: bool = False

    #: Seconds of the modification times the backend reports (listings, ``stat``): object stores give
    #: them to the second. Ages judged from them (``gc``) allow for it.
    time_resolution: float = 1.0

    #: True when ``list(prefix, start_after=key)`` costs in proportion to what it yields (object
    #: stores list from a key on the server); False when it costs a scan of everything under the
    #: prefix (a directory has no order to start from). Where it is False, ``latest`` and the
    #: newest versions of a domain are found by :meth:`stat` of single keys instead of a listing.
    lists_from_a_key: bool = True

    # --- required primitives -------------------------------------------------

    @abc.abstractmethod
    def put(self, key: str, stream: BinaryIO) -> None:
        """Store the bytes read from ``stream`` under ``key``, replacing any object there.

        Must be atomic: a reader sees the old object, no object, or the whole new one,
        never a prefix. Used for content-addressed objects, whose bytes never differ.
        """

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` holding ``data`` only if no object exists there.

        Returns ``False`` (and changes nothing) when the key already exists. This is the
        primitive that allocates version numbers, so it must hold across processes and
        machines (S3 ``If-None-Match: *``, GCS ``if_generation_match=0``, ``link(2)``...).
        A backend that retries must return ``True`` when the key exists because its own earlier
        attempt landed and only the answer was lost (read the object back and compare).
        """

    @abc.abstractmethod
    def get(self, key: str) -> BinaryIO:
        """Open ``key`` for streaming reads. Raises :class:`KeyNotFoundError` if absent.

        The caller closes the returned object (it is used as a context manager).
        """

    @abc.abstractmethod
    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, Token]:
        """Return a small object's bytes and a token for :meth:`compare_and_swap`.

        With ``max_bytes``, at most ``max_bytes + 1`` bytes are transferred and returned (a ranged
        request): the core reads every document with its limit (:mod:`modelstore_core.protocol.limits`)
        and refuses one that returns more. The token is the whole object's all the same.
        Raises :class:`KeyNotFoundError` if absent.
        """

    @abc.abstractmethod
    def compare_and_swap(self, key: str, data: bytes, token: Token) -> bool:
        """Replace ``key`` with ``data`` only if it still holds what :meth:`read` returned with ``token``.

        Returns ``False`` (and changes nothing) if another writer changed or deleted it since.
        As with :meth:`put_if_absent`, a retried request that had in fact been applied is a success.
        """

    @abc.abstractmethod
    def list(self, prefix: str, *, start_after: str | None = None, delimiter: str | None = None) -> Iterator[ObjectInfo]:
        """Yield the objects whose key starts with ``prefix``, in ascending key order.

        ``start_after`` skips keys up to and including it. With ``delimiter``, keys with
        the delimiter past the prefix are rolled up into one common-prefix entry each
        (ending with the delimiter), as S3 does; such an entry is yielded only if it sorts after
        ``start_after`` (the core never combines the two). Backends page through the underlying
        API themselves; nothing is ever silently truncated.
        """

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``. Deleting a missing key is not an error."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Return the object's size and modification time, or ``None`` if it does not exist."""

    # --- optional: override when the backend can do better ----------------------

    def put_file(self, key: str, path: Path, progress: Advance | None = None) -> None:
        """Store the local file ``path`` under ``key`` (same semantics as :meth:`put`).

        Backends override this to use parallel multipart or resumable uploads. ``progress(n)``,
        if given, is called as each ``n`` more bytes are sent (reporting is optional: the core
        completes a file's progress when the call returns).
        """
        with open(path, "rb") as f:
            self.put(key, CountingReader(f, progress) if progress else f)

    def stage_file(self, path: Path, progress: Advance | None = None, *, owned: bool = False, sha256: str | None = None) -> StagedFile:
        """Hash a local file before it is stored (the core names objects by sha256).

        The default reads it once to hash it (not reported to ``progress``: the transfer is, in
        :meth:`StagedFile.place`), which then uploads it if needed. A backend that can copy and
        hash in a single pass (the local one) overrides this and reports the copy.

        ``owned``: the file is the core's own (a serializer wrote it into :meth:`scratch_dir` or
        a private temporary directory) and is deleted after the upload, so a backend may take it
        (a rename) instead of copying it; ``sha256``, given only with ``owned``, is its digest as
        the serializer computed while writing it (no need to read it again).
        """
        if owned and sha256 is not None:
            return StagedFile(self, path, sha256, path.stat().st_size)
        sha256, size = hash_file(path)
        return StagedFile(self, path, sha256, size)

    def scratch_dir(self) -> Path | None:
        """A private directory where serializers should write, so that :meth:`stage_file` can
        take their files without copying (the local backend: inside the store, on its file
        system); ``None`` for the system's temporary directory. The core creates it, private
        (0700), and gives it back to :meth:`drop_scratch` afterwards."""
        return None

    def drop_scratch(self, path: Path) -> None:
        """Remove a scratch directory once its upload is over (committed or not)."""
        shutil.rmtree(path, ignore_errors=True)

    def get_file(self, key: str, path: Path, progress: Advance | None = None, max_bytes: int | None = None) -> None:
        """Write the object ``key`` to the local file ``path`` (created or truncated).

        ``progress(n)``, if given, is called as each ``n`` more bytes arrive. With ``max_bytes``
        (the size its record names), at most ``max_bytes + 1`` bytes are transferred and written:
        the caller refuses a file that came out larger, never downloading a swapped object whole.
        """
        with self.get(key) as src, open(path, "wb") as dst:
            reader = CountingReader(src, progress) if progress else src
            if max_bytes is None:
                shutil.copyfileobj(reader, dst, CHUNK_SIZE)
                return
            left = max_bytes + 1
            while left > 0 and (chunk := reader.read(min(CHUNK_SIZE, left))):
                dst.write(chunk)
                left -= len(chunk)

    def local_path(self, key: str) -> Path | None:
        """The object's path on a local filesystem, if it has one (lets reads skip a copy)."""
        return None

    def exists(self) -> bool:
        """Whether the store's location is there at all (a local store's directory), so that a typo in
        a source's path is refused rather than read as an empty store. An object store's prefix
        always is (an empty one is an empty store; a missing bucket fails the first request)."""
        return True

    def refresh(self, key: str, data: bytes) -> None:
        """Make the small document ``key`` (holding ``data``) look just written: its modification time
        becomes the store's now (a heartbeat, :mod:`~modelstore_core.protocol.liveness`). Durability
        does not matter. Default: write it again."""
        import io

        self.put(key, io.BytesIO(data))

    def cleanup(self, older_than: float, dry_run: bool = False, protected: frozenset[str] = frozenset()) -> list[str]:
        """Remove backend-specific leftovers of interrupted writes (temporary files, unfinished
        multipart uploads) last written before ``older_than``, a UNIX timestamp by the store's own
        clock (what it records as modification times: ``gc`` derives it from a document it just
        wrote), never one of the keys in ``protected`` (objects that live uploads are writing).
        Returns what it removed (with ``dry_run``, what it would remove)."""
        return []

    def capability_id(self) -> str:
        """What identifies the server for the conditional-write proof (endpoint and bucket; no
        credentials). Stores on one server share the verdict."""
        return self.url

    def close(self) -> None:
        """Release connections and other resources."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

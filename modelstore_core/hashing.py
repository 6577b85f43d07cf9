"""Streaming sha256 and verified copies: files are never read whole into memory."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import BinaryIO

from .errors import IntegrityError
from .progress import Advance

#: Chunk size used whenever bytes are streamed through Python.
CHUNK_SIZE = 1 << 20


def hash_file(path: Path, progress: Advance | None = None) -> tuple[str, int]:
    """sha256 (hex) and size of a local file, in one streaming pass."""
    with open(path, "rb") as f:
        if progress is None and hasattr(hashlib, "file_digest"):
            return hashlib.file_digest(f, "sha256").hexdigest(), f.tell()
        return hash_stream(f, progress)


def hash_stream(stream: BinaryIO, progress: Advance | None = None) -> tuple[str, int]:
    """sha256 (hex) and size of what is left in ``stream``."""
    h = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while n := stream.readinto(view):
        h.update(view[:n])
        size += n
        if progress is not None:
            progress(n)
    return h.hexdigest(), size


#: How often a copy hands written bytes to the kernel for write-back (see ``start_writeback``).
WRITEBACK_EVERY = 32 << 20


@cache
def start_writeback():
    """``sync_file_range(SYNC_FILE_RANGE_WRITE)`` where libc has it (Linux): starts writing dirty
    pages to disk without waiting, so the ``fsync`` that makes an object durable is nearly free
    (the disk writes while the CPU copies and hashes, rather than after). ``None`` elsewhere."""
    try:
        import ctypes

        sync_file_range = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    sync_file_range.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]

    def writeback(fd: int, offset: int, length: int) -> None:
        sync_file_range(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE; a hint: failures are harmless

    return writeback


def copy_file_hashed(
    src: Path,
    dest: Path,
    start_writeback: Callable[[int, int, int], None] | None = None,
    progress: Advance | None = None,
) -> tuple[str, int]:
    """Copy ``src`` to a new file ``dest``, reading it once; returns the sha256 and size of the bytes written.

    Hashing runs in a second thread while the main one reads and writes (hashlib and file I/O
    release the GIL), so the copy costs about as much as the slower of the two, not their sum.
    ``start_writeback(fd, offset, length)`` is called every ``WRITEBACK_EVERY`` bytes, so a final
    ``fsync`` finds little left to write. ``progress(n)`` is called as each ``n`` bytes are written.
    """
    block = 4 * CHUNK_SIZE
    with open(src, "rb") as f, open(dest, "wb") as out:
        first = f.read(block)
        if len(first) < block:  # the whole file: a hashing thread would cost more than it saves
            out.write(first)
            if progress is not None:
                progress(len(first))
            return hashlib.sha256(first).hexdigest(), len(first)
        from concurrent.futures import ThreadPoolExecutor  # only for files large enough to need it

        with ThreadPoolExecutor(1) as hasher:
            return _copy_hashed_in_parallel(first, f, out, hasher, start_writeback, progress)


def _copy_hashed_in_parallel(first: bytes, f, out, hasher, start_writeback, progress) -> tuple[str, int]:
    h = hashlib.sha256()
    size = flushed = 0
    buffers = [bytearray(len(first)), bytearray(len(first))]
    buffers[0][:] = first
    n, i = len(first), 0
    pending = None
    while n:  # the only hash still running is on the other buffer
        view = memoryview(buffers[i])[:n]
        if pending is not None:
            pending.result()
        pending = hasher.submit(h.update, view)
        out.write(view)
        size += n
        i ^= 1
        if progress is not None:
            progress(n)
        if start_writeback is not None and size - flushed >= WRITEBACK_EVERY:
            out.flush()
            start_writeback(out.fileno(), flushed, size - flushed)
            flushed = size
        n = f.readinto(buffers[i])
    if pending is not None:
        pending.result()
    return h.hexdigest(), size


class HashingWriter:
    """Writes a new file and computes its sha256 on a second thread as the bytes go by, so a
    serializer's file needs no second read to be stored (``Flavor.digests``).

    ``write`` may be given large buffers (a tensor's bytes): they are written in ``CHUNK_SIZE``
    pieces while the previous piece is hashed. The caller must not change a buffer until
    ``write`` returns. Use as a context manager; :attr:`sha256` is set on a clean exit.

    Written bytes are handed to the kernel for write-back every ``WRITEBACK_EVERY`` bytes
    (:func:`start_writeback`): the file is about to be stored, and a local store's ``fsync`` then
    finds little left to write.
    """

    def __init__(self, path: Path):
        from concurrent.futures import ThreadPoolExecutor

        self._file = open(path, "wb", buffering=0)
        self._hash = hashlib.sha256()
        self._hasher = ThreadPoolExecutor(1)
        self._pending = None
        self._writeback, self._flushed = start_writeback(), 0
        self.size = 0
        self.sha256: str | None = None

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), 4 * CHUNK_SIZE):
            piece = view[start : start + 4 * CHUNK_SIZE]
            if self._pending is not None:
                self._pending.result()
            self._pending = self._hasher.submit(self._hash.update, piece)
            rest = piece
            while rest:
                rest = rest[self._file.write(rest) :]
            self.size += len(piece)
            if self._writeback is not None and self.size - self._flushed >= WRITEBACK_EVERY:
                self._writeback(self._file.fileno(), self._flushed, self.size - self._flushed)
                self._flushed = self.size
        if self._pending is not None:  # the caller may reuse its buffer once this returns
            self._pending.result()
            self._pending = None

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        try:
            if self._pending is not None:
                self._pending.result()
            st = os.fstat(self._file.fileno())
            self._file.close()
        finally:
            self._hasher.shutdown()
        if exc_type is None:
            self.sha256 = self._hash.hexdigest()
            with _WRITTEN_LOCK:
                _WRITTEN[(st.st_dev, st.st_ino)] = (st.st_size, st.st_mtime_ns, self.sha256)
                if len(_WRITTEN) > 4096:  # files never staged (a remote store's): forget the oldest
                    _WRITTEN.pop(next(iter(_WRITTEN)))

    @staticmethod
    def computed(st: os.stat_result) -> str | None:
        """The sha256 a ``HashingWriter`` of this process computed as it wrote the file whose state is
        ``st`` (same device, inode, size and mtime as when it was closed), once; ``None`` if none did.
        A serializer's ``Flavor.digests`` are its word; this is the core's own hash of the bytes."""
        with _WRITTEN_LOCK:
            found = _WRITTEN.pop((st.st_dev, st.st_ino), None)
        return found[2] if found is not None and found[:2] == (st.st_size, st.st_mtime_ns) else None


#: What each ``HashingWriter`` computed: (device, inode) -> (size, mtime, sha256) of the file it closed.
_WRITTEN: dict[tuple[int, int], tuple[int, int, str]] = {}
_WRITTEN_LOCK = threading.Lock()


class VerifyingReader:
    """A stored file opened for one front-to-back read that verifies it on the way: every byte
    read is hashed, and reaching the end raises :class:`IntegrityError` unless the file holds
    exactly the recorded bytes. A file of the wrong size is refused when it is opened.

    What a deserializer parses from it is unverified until :meth:`finish` returns (or a read hits
    the end): build what you like from the bytes, but return nothing before that. Reads must be
    sequential (no ``seek``); :meth:`skip` reads past bytes a parser does not need (hashing them).

    ``readinto`` of a large buffer (a tensor's memory) reads it in pieces while a second thread
    hashes the piece before (file I/O and sha256 release the GIL); the buffer is fully hashed
    when the call returns, so the caller may reuse it. ``progress(n)`` is called as bytes are read.
    """

    #: Pieces of one ``readinto`` hashed on the second thread while the next is read.
    PIECE = 4 * CHUNK_SIZE

    def __init__(self, path: Path, sha256: str, size: int, name: str, progress: Advance | None = None, *, proven: list | None = None):
        self.path, self.name, self.expected, self.size = Path(path), name, sha256, size
        self._file = open(self.path, "rb", buffering=0)
        try:
            #: the file's state when opened: what a proof of this verification records
            self.opened = os.fstat(self._file.fileno())
            if self.opened.st_size != size:
                raise IntegrityError(name, sha256, "", f"it holds {self.opened.st_size} bytes where the record says {size}")
        except BaseException:
            self._file.close()
            raise
        st = self.opened
        #: ``proven``: the file's (device, inode, size, mtime, ctime) when it was last verified; if it
        #: still has that state, its bytes are those verified and are not hashed again
        self._hash = None if proven == [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns] else hashlib.sha256()
        self._progress = progress
        self._hasher = None
        self.position = 0
        #: set once every byte was read and matched the recorded sha256
        self.verified = False

    @property
    def hashing(self) -> bool:
        """Whether the bytes are hashed as they are read (``False``: proven unchanged since verified)."""
        return self._hash is not None

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the file)."""
        buffer = bytearray(max(0, min(n, self.size - self.position)))
        got = self.readinto(buffer)
        del buffer[got:]
        return bytes(buffer)

    def readinto(self, buffer) -> int:
        """Fill ``buffer`` (as far as the file goes); returns the bytes read. At the end of the file
        the hash is checked: :class:`IntegrityError` if it does not match."""
        view = memoryview(buffer).cast("B")
        if self._hash is None or len(view) <= self.PIECE:
            done = self._fill(view)
            if self._hash is not None:
                self._hash.update(view[:done])
        else:
            done = self._read_hashing(view)
        self._advance(done)
        if done < len(view) or self.position == self.size:
            self.finish()
        return done

    def skip(self, n: int) -> None:
        """Read (and hash) the next ``n`` bytes without keeping them."""
        scratch = bytearray(min(n, self.PIECE))
        while n > 0:
            got = self.readinto(memoryview(scratch)[: min(n, len(scratch))])
            if not got:
                return
            n -= got

    def finish(self) -> None:
        """Read and hash whatever is left; :class:`IntegrityError` unless the file held the recorded bytes."""
        if self.verified:
            return
        rest = self.size - self.position
        if rest > 0:
            self.skip(rest)
            if self.verified:
                return
        if self._file.read(1):  # grew since it was opened
            raise IntegrityError(self.name, self.expected, "", "it grew while it was read")
        actual = self.expected if self._hash is None else self._hash.hexdigest()
        if actual != self.expected:
            raise IntegrityError(self.name, self.expected, actual)
        self.verified = True

    def close(self) -> None:
        self._file.close()
        if self._hasher is not None:
            self._hasher.shutdown()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fill(self, view: memoryview) -> int:
        done = 0
        while done < len(view):
            n = self._file.readinto(view[done:])
            if not n:
                break
            done += n
        self.position += done
        if done < len(view) and self.position < self.size:  # shrank since it was opened
            raise IntegrityError(self.name, self.expected, "", f"it ended at byte {self.position} of {self.size} while it was read")
        return done

    def _read_hashing(self, view: memoryview) -> int:
        if self._hasher is None:
            from concurrent.futures import ThreadPoolExecutor

            self._hasher = ThreadPoolExecutor(1)
        pending = None
        done = 0
        try:
            while done < len(view):
                piece = view[done : done + self.PIECE]
                got = self._fill(piece)
                if pending is not None:
                    pending.result()
                pending = self._hasher.submit(self._hash.update, piece[:got])
                done += got
                if got < len(piece):
                    break
        finally:
            if pending is not None:
                pending.result()
        return done

    def _advance(self, n: int) -> None:
        if self._progress is not None and n:
            self._progress(n)


def verify_file(path: Path, expected: str, name: str) -> None:
    """Raise :class:`IntegrityError` naming ``name`` unless ``path`` hashes to ``expected``."""
    actual, _ = hash_file(path)
    if actual != expected:
        raise IntegrityError(name, expected, actual)


def check_hash(actual: str, expected: str, name: str, partial: Path | None = None) -> None:
    if actual != expected:
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise IntegrityError(name, expected, actual)


def file_signature(path: Path) -> tuple[int, int, int]:
    """What changes when a file is rewritten: size, mtime and inode."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino

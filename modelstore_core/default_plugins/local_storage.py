"""Builtin storage backend: a directory on a local (or mounted) filesystem.

Keys map one-to-one to paths below the root. Every write goes to ``.tmp/`` first and is
moved into place with ``rename(2)`` (replace) or ``link(2)`` (create-if-absent), both atomic,
so a reader never sees a partial file and a killed writer leaves only ``.tmp/`` leftovers.
Compare-and-swap holds an ``flock`` on a per-key lock file under ``.locks/``.

The directory may be shared (a network disk) and written by others, so nothing here follows a
symbolic link inside the store: a key whose path crosses one is refused, listings skip them, and
``cleanup`` reports a linked ``.tmp`` instead of walking it. (The root itself may be a link.)
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import shutil
import stat as stat_module
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from ..errors import InvalidNameError, KeyNotFoundError, StorageError
from ..hashing import CHUNK_SIZE, HashingWriter, copy_file_hashed, hash_file, start_writeback
from ..hookspecs import hookimpl
from ..progress import Advance
from ..protocol.keys import TOP_LEVEL
from ..storage import ObjectInfo, StagedFile, Storage, Token


@hookimpl(trylast=True)
def modelstore_store(url: str, scheme: str, options: dict[str, Any]):
    if scheme != "file":
        return None
    if url.startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise InvalidNameError(f"file:// URLs must name a local path, not host {parts.netloc!r}")
        root = Path(unquote(parts.path))
    else:
        root = Path(url).expanduser()
    return LocalStorage(root, **options)


@hookimpl
def modelstore_schemes():
    return ["file"]


class LocalStorage(Storage):
    """A store in a local directory. Nothing is written until the first upload."""

    time_resolution = 0.0  # mtimes to the nanosecond

    lists_from_a_key = False  # a listing scans and sorts the whole directory

    def __init__(self, root: str | os.PathLike, *, fsync: bool = True, timeout: float | None = None):
        # ``timeout`` is accepted like every backend's; a local filesystem call has no deadline to set.
        self.root = Path(root).absolute()
        self.url = self.root.as_uri()
        self.fsync = fsync  # durability across power loss; atomicity does not depend on it
        self._tmp = self.root / ".tmp"
        self._objects = self.root / "objects"
        self._locks = self.root / ".locks"

    # --- helpers ------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The path of ``key``; refused if any directory on the way is a symbolic link."""
        parts = key.split("/")
        if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            raise InvalidNameError(f"invalid storage key {key!r}")
        path = self.root
        for part in parts[:-1]:
            path = path / part
            if path.is_symlink():
                raise self._linked(path)
        return path / parts[-1]

    def _linked(self, path: Path) -> StorageError:
        return StorageError(
            f"{path} is a symbolic link inside the store {self.root}; modelstore never follows links there"
            " (they could lead anywhere): replace it with the directory it stands for, or remove it"
        )

    def _internal_dir(self, path: Path) -> Path:
        """``.tmp``/``.locks``, created if missing; refused if something planted a link there."""
        if path.is_symlink():
            raise self._linked(path)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _mkdirs(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(
                f"{directory} (or a directory above it) is a file where the store needs a directory;"
                " it was not written by modelstore: move it away"
            ) from None

    def _tmp_path(self) -> Path:
        self._internal_dir(self._tmp)
        # pid and host in the name let cleanup() tell a live writer's file from a dead one's.
        return self._tmp / f"{os.urandom(16).hex()}.part"

    def _finish(self, fd_or_file) -> None:
        if self.fsync:
            os.fsync(fd_or_file if isinstance(fd_or_file, int) else fd_or_file.fileno())

    def _write_tmp(self, data: bytes) -> Path:
        tmp = self._tmp_path()
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            self._finish(f)
        return tmp

    def _place(self, tmp: Path, final: Path) -> None:
        self._mkdirs(final.parent)
        if final.is_relative_to(self._objects):
            # Objects never change, and loads hard-link them into the cache: make them read-only.
            os.chmod(tmp, 0o444)
        os.replace(tmp, final)

    @contextmanager
    def _lock(self, key: str, create: bool = True):
        if create:
            self._internal_dir(self._locks)
        elif self._locks.is_symlink():
            raise self._linked(self._locks)
        lock = self._locks / hashlib.sha256(key.encode()).hexdigest()[:32]
        try:
            fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:
            fd = None  # never compare-and-swapped: nothing to serialise with
        if fd is None:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # --- primitives -----------------------------------------------------------

    def put(self, key: str, stream: BinaryIO) -> None:
        final = self._path(key)
        tmp = self._tmp_path()
        try:
            with open(tmp, "wb") as f:
                shutil.copyfileobj(stream, f, CHUNK_SIZE)
                f.flush()
                self._finish(f)
            self._place(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def put_file(self, key: str, path: Path, progress: Advance | None = None) -> None:
        final = self._path(key)
        tmp = self._tmp_path()
        try:
            shutil.copyfile(path, tmp)  # sendfile(2) in the kernel: as fast as cp
            self._sync_path(tmp)
            self._place(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        if progress is not None:
            progress(os.path.getsize(final))

    def stage_file(self, path: Path, progress: Advance | None = None, *, owned: bool = False, sha256: str | None = None) -> StagedFile:
        tmp = self._tmp_path()
        if owned:
            taken = self._take(path, tmp, progress, sha256)
            if taken is not None:
                return taken
        try:
            # One read of the source: copy and hash together, writing back as we go.
            sha256, size = copy_file_hashed(path, tmp, start_writeback() if self.fsync else None, progress)
            self._sync_path(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return _LocalStagedFile(self, tmp, sha256, size)

    def _take(self, path: Path, tmp: Path, progress: Advance | None, sha256: str | None) -> StagedFile | None:
        """Move a file the core owns into ``.tmp`` (no copy) and hash it unless its digest is known;
        ``None`` across file systems.

        A file from a private scratch directory (:meth:`scratch_dir`) is made read-only before it
        leaves it, so no one but this user could ever write it: if its sha256 is the core's own
        (hashed here, or by a :class:`~modelstore_core.hashing.HashingWriter` as it was written, not
        only a serializer's word), the staged file says so (``written_privately``), and a load on
        this machine may trust the upload's hash of it."""
        private = self._in_private_scratch(path)
        if private:
            os.chmod(path, 0o444)
        try:
            os.rename(path, tmp)
        except OSError:
            return None
        try:
            st = tmp.stat()
            if sha256 is None:
                sha256, size = hash_file(tmp, progress)  # read back from the page cache: it was just written
            else:
                size = st.st_size
                private = private and HashingWriter.computed(st) == sha256
                if progress is not None:
                    progress(size)
            self._sync_path(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return _LocalStagedFile(self, tmp, sha256, size, (st.st_dev, st.st_ino) if private else None)

    def _in_private_scratch(self, path: Path) -> bool:
        """Whether ``path`` is inside a scratch directory that is this user's alone (0700), in a ``.tmp``
        of this user's that no one else can write (where the file goes next)."""
        try:
            top = self._tmp / Path(path).relative_to(self._tmp).parts[0]
            scratch, tmp = os.lstat(top), os.lstat(self._tmp)
        except (ValueError, IndexError, OSError):
            return False
        user = os.geteuid() if hasattr(os, "geteuid") else None
        return (
            top.suffix == ".scratch"
            and all(stat_module.S_ISDIR(st.st_mode) and st.st_uid == user for st in (scratch, tmp))
            and not scratch.st_mode & 0o077
            and not tmp.st_mode & 0o022
        )

    def scratch_dir(self) -> Path:
        if not self.root.exists():
            self._made_root = True  # an upload that fails leaves no store behind (drop_scratch)
        # In .tmp, so that cleanup() removes it once its upload stops touching it (its heartbeat).
        return self._internal_dir(self._tmp) / f"{os.urandom(16).hex()}.scratch"

    def drop_scratch(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        if getattr(self, "_made_root", False):
            for directory in (self._tmp, self.root):  # only if empty: nothing else was written
                try:
                    directory.rmdir()
                except OSError:
                    break

    def _sync_path(self, path: Path) -> None:
        if self.fsync:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        final = self._path(key)
        tmp = self._write_tmp(data)
        try:
            self._mkdirs(final.parent)
            try:
                os.link(tmp, final)  # fails if final exists: atomic create-if-absent, whole content
            except FileExistsError:
                if final.is_dir() and not final.is_symlink():
                    raise StorageError(
                        f"{final} is a directory where the store keeps a file; it was not written by modelstore: move it away"
                    ) from None
                return False
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, key: str) -> BinaryIO:
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyNotFoundError(key) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # the key itself is a link
                raise self._linked(self._path(key)) from None
            raise
        f = os.fdopen(fd, "rb")
        if not stat_module.S_ISREG(os.fstat(fd).st_mode):
            f.close()
            raise KeyNotFoundError(key)
        return f

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, Token]:
        with self.get(key) as f:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
            if max_bytes is None or len(data) <= max_bytes:
                return data, hashlib.sha256(data).hexdigest()
            # Too large: the caller refuses it, or replaces it by compare-and-swap with the token of
            # the whole file, hashed from disk in chunks rather than held in memory.
            digest = hashlib.sha256(data)
            while chunk := f.read(CHUNK_SIZE):
                digest.update(chunk)
        return data, digest.hexdigest()

    def compare_and_swap(self, key: str, data: bytes, token: Token) -> bool:
        final = self._path(key)
        with self._lock(key):
            try:
                with self.get(key) as f:
                    current = hashlib.sha256()
                    while chunk := f.read(CHUNK_SIZE):  # in chunks: the document may be one someone inflated
                        current.update(chunk)
            except KeyNotFoundError:
                return False
            if current.hexdigest() != token:
                return False
            tmp = self._write_tmp(data)
            try:
                self._place(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
            return True

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._lock(key, create=False):
            try:
                path.unlink()  # a link is removed itself, never what it points to
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return
        # Drop emptied directories so that listings by prefix stay exact.
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            st = os.lstat(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat_module.S_ISREG(st.st_mode):
            return None
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def list(self, prefix: str, *, start_after: str | None = None, delimiter: str | None = None) -> Iterator[ObjectInfo]:
        if delimiter not in (None, "/"):
            raise ValueError("the local backend supports only '/' as delimiter")
        dir_key, _, name_prefix = prefix.rpartition("/")
        dir_key = dir_key + "/" if dir_key else ""
        if dir_key:
            directory = self._path(dir_key.rstrip("/"))  # validates the prefix
            if directory.is_symlink():
                return iter(())  # never walked: cleanup() reports it
        return self._walk(dir_key, name_prefix, start_after, delimiter)

    def _walk(self, dir_key: str, name_prefix: str, start_after: str | None, delimiter: str | None) -> Iterator[ObjectInfo]:
        try:
            entries = list(os.scandir(self.root / dir_key if dir_key else self.root))
        except (FileNotFoundError, NotADirectoryError):
            return
        # Sort as S3 does, on the full key: a directory sorts as its name plus "/".
        items = sorted(
            (e.name + "/" if e.is_dir(follow_symlinks=False) else e.name, e)
            for e in entries
            if not e.name.startswith(".") and e.name.startswith(name_prefix) and not e.is_symlink()
        )
        for sort_name, entry in items:
            key = dir_key + sort_name
            if sort_name.endswith("/"):
                # Every key below sorts after `key`; skip the directory if all of them are <= start_after.
                if start_after is not None and key <= start_after and not start_after.startswith(key):
                    continue
                if delimiter:
                    if (start_after is None or key > start_after) and next(self._walk(key, "", None, None), None):
                        yield ObjectInfo(key)
                else:
                    yield from self._walk(key, "", start_after, None)
            elif start_after is None or key > start_after:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while listing
                if not stat_module.S_ISREG(st.st_mode):
                    continue  # a FIFO or socket: not an object
                yield ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def exists(self) -> bool:
        return self.root.is_dir()

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() and not path.is_symlink() else None

    def refresh(self, key: str, data: bytes) -> None:
        try:
            os.utime(self._path(key))  # the mtime is all a heartbeat needs: no rewrite, no fsync
        except FileNotFoundError:
            self.put(key, io.BytesIO(data))

    def cleanup(self, older_than: float, dry_run: bool = False, protected: frozenset[str] = frozenset()) -> list[str]:
        """Remove what ``.tmp`` holds of writers that stopped before ``older_than`` (by mtime: an
        upload's heartbeat touches its scratch directory and staged copies while it runs)."""
        removed = []
        for internal in (self._tmp, self._locks, *(self.root / top.rstrip("/") for top in TOP_LEVEL)):
            if internal.is_symlink():
                removed.append(f"refused: {internal.name}/ is a symbolic link; not walked (replace it with a directory)")
        if self._tmp.is_symlink():
            return removed
        try:
            entries = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return removed
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_mtime >= older_than:
                    continue
            except FileNotFoundError:
                continue  # its writer just finished
            removed.append(f".tmp/{entry.name}")
            if dry_run:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)  # a dead upload's scratch directory
            else:
                Path(entry.path).unlink(missing_ok=True)
        return removed


class _LocalStagedFile(StagedFile):
    """A private copy in ``.tmp/``, already hashed: placing it is a rename.

    An object already at the key is replaced by this verified copy rather than trusted: it costs
    a rename (the copy exists anyway), and a corrupted object (a bad disk, an edit) is healed by
    the next upload of the same bytes instead of being deduplicated against.
    """

    def place(self, key: str, progress: Advance | None = None) -> bool:
        final = self.storage._path(key)
        existed = final.is_file() and not final.is_symlink()
        # A second name for the staged copy goes into place, so the copy stays until discard(): an
        # upload that finds its object deleted by a concurrent gc places it again (ensure_objects).
        placed = self.storage._tmp_path()
        try:
            os.link(self.path, placed)
        except OSError:
            placed = self.path  # no hard links here: the copy itself goes
        self.storage._place(placed, final)
        return not existed

    def keep_alive(self) -> None:
        # Once placed, this is a second name of the object: touching it touches the object too (a
        # cache view linked to it is hashed again at its next load; nothing else looks at the time).
        try:
            os.utime(self.path)
        except FileNotFoundError:
            pass

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

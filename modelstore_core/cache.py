"""The per-user cache: local, verified files of versions, for ``load`` and ``download``.

Every file is checked against its recorded sha256 before anything built from it is returned.
A deserializer that reads through the core (:class:`VersionFiles`, ``verified=`` of
``modelstore_deserialize``) verifies a local store's object in the pass that parses it; for any
other, every file is hashed before it runs. Files from a remote
store pass through a content-addressed cache (``<cache>/objects``), so a file that is already
there, whichever version it came with, is never downloaded again. A load's view of a version
(``<cache>/versions/...``) holds hard links, never copies, where the file system allows: to the
cached objects, and for a local store to the store's own (read-only) objects, so a local load
costs no disk space. A download is always a real copy (the caller may edit it).

A view remembers, per file, the ``(device, inode, size, mtime, ctime)`` it had when it was last
verified. A later load trusts a file whose state is unchanged instead of hashing it again: any
write to the file, or a ``chmod``, moves its ctime, which an unprivileged process cannot set back.
A file the view does not prove is hashed before use, or verified as it is read.

An upload to a local store proves its objects too: it hashed their bytes as it wrote them, where
no one else could write (:meth:`Cache.remember_upload`), and keeps each object's state beside its
sha256 (``<cache>/uploads``). The first load on this machine links such an object into its view
proven, without reading it twice, if its state is still the one the upload kept; the link itself
moves the object's ctime, so that proof serves once and is then replaced by the view's own.

That trust needs the cache to be its user's alone: whoever can write a directory on the way to a
proof could plant a view and a proof to match. The cache creates its directories 0700 and its
files 0600 (proofs, records) or 0400 (cached objects, copies in views), and before it trusts a
view, a record or a memory it checks that the cache root and every directory down to it belong to
this user and are writable by no one else (:class:`UnsafeCacheError` otherwise; a proof or record
file that fails the check is ignored, and what it vouched for is verified again). A view's hard link
to a local store's object is that object itself: its owner and mode are the store's (often
readable by all who can read the store; the cache never changes them), and its owner can rewrite
it. So only objects of this user are linked; another user's are copied (hashed as they are
copied), which costs disk space but leaves no file in the cache that someone else can change.
(On Windows, which has no such modes, the profile directory's permissions are the protection.)

The cache also keeps, for offline loads (:mod:`.offline`), the record of each version a load
used (in its view's proof) or a download wrote (``<cache>/records``), and which version
``latest`` and each state last resolved to (:class:`SeenNames`, ``<cache>/resolved``); and under
a trust policy, the newest signed statement of each pointer seen (:class:`SeenPointers`,
``<cache>/pointers``), so that an older one put back later is refused.

And it keeps the verdicts of plugins' checks of artifacts (:class:`Verdicts`, ``<cache>/verdicts``):
a file whose bytes a plugin has checked (a parse of every index, a probe in a child process) on
this machine is not checked again when the same bytes (the same sha256) come back in another view,
store or version. A verdict is used only for bytes verified against that sha256 in the same load.

Last, the scratch directories of uploads, pulls, copies and imports whose target has none of its
own (:meth:`Cache.scratch`, ``<cache>/scratch``): what a serializer writes or a pull fetches lands there, not in the system's
temporary directory, so that a killed process's files are this cache's to reclaim. Each is held
with ``flock`` while in use; the kernel drops the lock with the process, so the next process of
this user that asks for a scratch directory removes those no one holds: no clock, no process
table, and a directory in use by another container sharing the cache keeps its lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ConflictError, CorruptRecordError, IntegrityError, KeyNotFoundError, MissingObjectError, UnsafeCacheError, UsageError
from .hashing import VerifyingReader, check_hash, copy_file_hashed, hash_file
from .progress import FileProgress, Progress, ProgressCallback
from .protocol import keys
from .protocol.records import FileEntry, VersionRecord
from .storage import StagedFile, Storage

COMPLETE = ".modelstore-complete.json"
#: The mode of every directory the cache creates, and of the files it writes: its user's alone.
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
#: The mode of the files it keeps (cached objects, the copies in views): nothing edits them.
READ_ONLY = 0o400
#: What the cache keeps under its root (records, resolved: offline answers; uploads: proofs of the
#: objects uploads wrote to local stores; servers: probe verdicts an earlier version kept; verdicts:
#: plugins' checks of artifacts that passed; scratch: uploads' and pulls' files in the making).
#: ``clear`` removes these (of scratch, what no process holds), and refuses a directory that holds
#: anything else.
PARTS = ("versions", "objects", "records", "resolved", "pointers", "uploads", "servers", "verdicts", "scratch")
#: Attempts at a scratch directory that another process's sweep removed before it was held.
SCRATCH_ATTEMPTS = 5

try:
    import fcntl
except ImportError:  # Windows: scratch directories are removed when done, not reclaimed after a kill
    fcntl = None


def default_cache_dir() -> Path:
    if env := os.environ.get("MODELSTORE_CACHE_DIR"):
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("modelstore"))


class Cache:
    """The per-user cache: verified objects from remote stores and per-version file views."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def usage(self) -> tuple[int, int]:
        """(files, bytes) held by the cache; a file linked into several places counts once."""
        seen: set[tuple[int, int]] = set()
        total = 0
        for path in self.root.rglob("*"):
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            if path.is_file() and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
        return len(seen), total

    def clear(self) -> tuple[int, int]:
        """Delete everything cached (later loads fetch and verify again), and what this machine
        remembers of latest, states and signed pointers; returns what was freed. A cache root of this
        user's that others could write is made private (0700). A directory that holds anything but
        the cache's own parts is not a cache (a mistyped ``$MODELSTORE_CACHE_DIR``, a store's root):
        :class:`UsageError`, nothing deleted.

        A load running at the same moment in another process may fail and need a retry.
        """
        try:
            others = sorted(name for name in os.listdir(self.root) if name not in PARTS)
        except FileNotFoundError:
            return 0, 0
        if others:
            shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            problem = f"{self.root} is not a modelstore cache: it holds {shown} besides the cache's own directories; nothing was deleted."
            raise UsageError(
                f"{problem} Check ModelStore(cache_dir=...) or $MODELSTORE_CACHE_DIR", cli=f"{problem} Check $MODELSTORE_CACHE_DIR"
            )
        freed = self.usage()
        for part in PARTS:
            if part == "scratch" and fcntl is not None:
                self.sweep_scratch()  # an upload running now keeps its files
                continue
            shutil.rmtree(self.root / part, ignore_errors=True)
        try:
            if os.stat(self.root).st_uid == _user():
                os.chmod(self.root, PRIVATE_DIR)
        except OSError:
            pass
        return freed

    def checked(self, path: Path) -> Path:
        """``path`` (in the cache), once the cache root and every directory from it down to ``path``
        that exists are this user's alone; :class:`UnsafeCacheError` otherwise."""
        parts = path.relative_to(self.root).parts
        for depth in range(len(parts) + 1):
            here = self.root.joinpath(*parts[:depth])
            try:
                st = os.stat(here)
            except (FileNotFoundError, NotADirectoryError):
                break  # nothing there to trust yet
            if problem := _not_private(st):
                raise UnsafeCacheError(str(here), problem)
        return path

    def make_dirs(self, path: Path) -> Path:
        """Create the directory ``path`` (in the cache) and those above it up to the cache root, each
        private (0700), and check them (:meth:`checked`)."""
        self.root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        parts = path.relative_to(self.root).parts
        for depth in range(1, len(parts) + 1):
            try:
                self.root.joinpath(*parts[:depth]).mkdir(mode=PRIVATE_DIR)
            except FileExistsError:
                pass
        return self.checked(path)

    @contextmanager
    def scratch(self, prefix: str) -> Iterator[Path]:
        """A new, empty, private directory for one operation's files (``<cache>/scratch/<prefix>...``),
        removed with what it holds when the operation ends. It is held with an exclusive ``flock``
        while in use, and those of killed processes (the kernel released their locks) are removed
        first (:meth:`sweep_scratch`). Where the cache cannot hold it (not writable here, or not
        this user's alone), a private system temporary directory serves instead: the operation
        goes on, only a kill's leftovers are not reclaimed."""
        try:
            root = self.make_dirs(self.root / "scratch")
        except (OSError, UnsafeCacheError):
            with tempfile.TemporaryDirectory(prefix=f"modelstore-{prefix}") as tmp:
                yield Path(tmp)
            return
        if fcntl is None:
            with tempfile.TemporaryDirectory(prefix=prefix, dir=root) as tmp:
                yield Path(tmp)
            return
        self.sweep_scratch()
        for _ in range(SCRATCH_ATTEMPTS):
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))  # 0700
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                continue  # another process's sweep found it not yet held and removed it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # waits out a sweep that holds it now
            except OSError:  # a file system without locks (ENOLCK): used unheld; no sweep can take it either
                break
            try:
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)  # that sweep removed it: another
        else:
            raise UsageError(
                f"each new scratch directory in {root} was removed before it could be locked: does its file system"
                " support flock? Set $MODELSTORE_CACHE_DIR (ModelStore(cache_dir=...)) to a directory on a local disk"
            )
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            os.close(fd)

    def sweep_scratch(self) -> None:
        """Remove the scratch directories no process holds: those of processes killed while they
        uploaded or pulled. One whose lock is held (by any process on this host or container
        sharing the cache) is left alone, and so is anything that is not a directory."""
        root = self.root / "scratch"
        try:
            names = os.listdir(root)
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            try:
                fd = os.open(root / name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except OSError:  # gone meanwhile, a link or not a directory: not a scratch directory
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: in use (or this file system has no locks: then never removed)
                os.close(fd)
                continue
            try:
                shutil.rmtree(root / name, ignore_errors=True)  # under the lock: its maker sees it gone
            finally:
                os.close(fd)

    @staticmethod
    def store_id(url: str) -> str:
        """What names a store's part of the cache: the start of the sha256 of its URL."""
        return hashlib.sha256(url.encode()).hexdigest()[:16]

    def version_dir(self, storage: Storage, domain: str, version: int) -> Path:
        return self.root / "versions" / self.store_id(storage.url) / domain / str(version)

    def seen_pointers(self, url: str) -> SeenPointers:
        """The signed pointers of a store this machine has seen, for refusing rollbacks (:mod:`.pointers`)."""
        return SeenPointers(self, self.checked(self.root / "pointers" / self.store_id(url)))

    def seen_names(self, url: str) -> SeenNames:
        """Which versions ``latest`` and states of a store last resolved to here (for offline loads)."""
        return SeenNames(self, self.checked(self.root / "resolved" / self.store_id(url)))

    def _record_path(self, storage: Storage, domain: str, version: int) -> Path:
        return self.root / "records" / self.store_id(storage.url) / domain / f"{version}.json"

    def remember_record(self, storage: Storage, record: VersionRecord) -> None:
        """Keep the record of a downloaded version, for offline downloads from the cached objects
        (a loaded version keeps it in its view's proof). Best effort."""
        path = self._record_path(storage, record.domain, record.version)
        try:
            self.make_dirs(path.parent)
            write_json(path, record.document)
        except OSError:
            pass

    def cached_record(self, storage: Storage, domain: str, version: int) -> VersionRecord | None:
        """The record this machine kept of a version it loaded (in the proof of its cache view) or
        downloaded; ``None`` when there is no usable one. Validated like any record; whether the
        files are there and intact is checked where they are used."""
        view = self.checked(self.version_dir(storage, domain, version))
        kept = self.checked(self._record_path(storage, domain, version).parent) / f"{version}.json"
        for path, field in ((view / COMPLETE, "record"), (kept, None)):
            doc = read_private_json(path)
            try:
                return VersionRecord.from_document(doc.get(field) if field else doc, str(path), domain, version)
            except (ValueError, AttributeError, RecursionError, CorruptRecordError):
                continue
        return None

    def cached_files(self, storage: Storage, record: VersionRecord) -> dict[str, Path] | None:
        """Where each file of ``record`` is on this machine without the store (its intact view, else
        the cached objects), to be verified as it is copied; ``None`` if any is missing."""
        view = self.intact_view(storage, record)
        if view is not None:
            return {f.path: view.directory / f.path for f in record.files}
        found = {f.path: self.checked(self.object_path(f.sha256)) for f in record.files}
        return found if all(path.is_file() for path in found.values()) else None

    def intact_view(self, storage: Storage, record: VersionRecord, progress: ProgressCallback | None = None) -> VersionFiles | None:
        """The version's cache view if it is complete and its files hold the recorded bytes (or are a
        local store's objects, verified as they are read); no storage access."""
        view = self.checked(self.version_dir(storage, record.domain, record.version))
        return self._intact(storage, view, record, Progress(progress, record.size))

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / "sha256" / sha256[:2] / sha256

    def _upload_proof_path(self, sha256: str) -> Path:
        return self.root / "uploads" / sha256[:2] / f"{sha256}.json"

    def remember_upload(self, storage: Storage, staged: list[StagedFile]) -> None:
        """Keep the state (:func:`_file_state`) and sha256 of each local store's object an upload just
        wrote, where that upload's hash of it is still its content: the upload wrote it where only
        this user could (``StagedFile.written_privately``: the backend vouches for the directories it
        passed through), it is still the store's object, and only this user can write it or put
        another file in its place (:func:`_only_this_user_writes`).
        From then on any write, ``chmod`` or replacement moves its ctime, which no one can set back
        (:meth:`upload_proof`). Best effort: a proof not kept costs the first load a hash."""
        for st in staged:
            local = storage.local_path(keys.object_key(st.sha256)) if st.written_privately else None
            if local is None:
                continue
            try:
                state = _file_state(local)
                if state[:2] != list(st.written_privately) or not _only_this_user_writes(local):
                    continue
                path = self._upload_proof_path(st.sha256)
                write_json(self.make_dirs(path.parent) / path.name, [*state, st.sha256])
            except (OSError, UnsafeCacheError):
                continue

    def upload_proof(self, entry: FileEntry, local: Path) -> list | None:
        """The proof :meth:`remember_upload` kept of the local store's object ``local``, if the object
        still has the state it had then; ``None`` otherwise."""
        path = self._upload_proof_path(entry.sha256)
        proof = read_private_json(self.checked(path.parent) / path.name)
        try:
            return proof if proof == [*_file_state(local), entry.sha256] else None
        except OSError:
            return None

    def _tmp_name(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.{os.urandom(16).hex()}.part")

    def fetch_object(self, storage: Storage, entry: FileEntry, progress: FileProgress) -> Path:
        """The cached copy of a remote object, downloaded and verified if missing or damaged."""
        path = self.object_path(entry.sha256)
        self.make_dirs(path.parent)
        if path.is_file():
            actual, _ = hash_file(path, progress)
            if actual == entry.sha256:
                return path
            path.unlink(missing_ok=True)  # damaged: fetch it again
            progress.reported = 0
        tmp = self._tmp_name(path)
        try:
            # hashed as it was written (Storage.get_file), or here by a backend that did not
            actual, size = storage.get_file(keys.object_key(entry.sha256), tmp, progress=progress, max_bytes=entry.size) or hash_file(tmp)
            check_size(size, entry)
            check_hash(actual, entry.sha256, entry.path)
            os.chmod(tmp, READ_ONLY)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def view(self, storage: Storage, record: VersionRecord, progress: ProgressCallback | None = None) -> VersionFiles:
        """The version's files under their stored names in the cache. Reused by later loads.

        Files that are not yet proven (a local store's objects, just linked) are left for the
        caller to verify: :meth:`VersionFiles.verify_rest` hashes them, or a deserializer verifies
        them as it reads them (:meth:`VersionFiles.open`). Remote objects are verified as they
        enter the cache.

        Safe for concurrent processes: a view is built privately and renamed into place whole; a
        loader that finds a complete, intact view (its own or another's) uses it and never deletes
        it, so the paths it returns stay valid. Only a view that fails verification is moved aside.
        The view's path comes from the requested domain and version, which the record was checked
        to name.
        """
        target = self.checked(self.version_dir(storage, record.domain, record.version))
        counter = Progress(progress, record.size)
        found = self._intact(storage, target, record, counter)
        if found is not None:
            return found
        self.make_dirs(target.parent)
        staging = self._tmp_name(target)
        try:
            staging.mkdir(mode=PRIVATE_DIR)
            states = write_files(storage, record, staging, self, link=True, counter=counter)
            _write_proof(staging, record, states)
            for _ in range(3):
                try:
                    os.rename(staging, target)  # atomic; fails if another view is already there
                    break
                except OSError:
                    found = self._intact(storage, target, record, None)
                    if found is not None:
                        return found  # a concurrent loader's finished view: use it, discard ours
                    self._move_aside(target)  # damaged or edited: never rebuilt in place
            else:
                raise ConflictError(f"the cache view {target} kept being replaced by other processes; load again")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        proven = {name: state for name, state in states.items() if state is not None}
        return VersionFiles(target, record, proven, counter, Verdicts(self))

    def _intact(self, storage: Storage, view: Path, record: VersionRecord, counter: Progress | None) -> VersionFiles | None:
        """``view`` as :class:`VersionFiles` if it is a finished view whose files all hold the recorded
        bytes: proven by an unchanged file state, or (a local store's object, linked) left to be
        verified as it is read; anything else is hashed (and the proof renewed). ``None`` otherwise,
        or when the proof file is not this user's alone. ``view`` was :meth:`checked`."""
        found = read_private_json(view / COMPLETE)
        if not isinstance(found, dict):
            return None
        proof = found.get("verified")
        proof = proof if isinstance(proof, dict) else {}
        counter = counter or Progress(None, record.size)
        proven: dict[str, list] = {}
        hashed = "record" not in found  # a proof from an older release: renewed with the record
        try:
            for entry in record.files:
                path = view / entry.path
                state = _file_state(path)
                if proof.get(entry.path) == [*state, entry.sha256]:
                    counter.file(entry.size).finish()
                    proven[entry.path] = proof[entry.path]
                elif _is_store_object(storage, entry, state):
                    pass  # the store's own object: verified by whoever reads it
                else:
                    actual, _ = hash_file(path, counter.file(entry.size))
                    check_hash(actual, entry.sha256, entry.path)
                    proven[entry.path] = [*state, entry.sha256]
                    hashed = True
        except (OSError, IntegrityError):
            return None
        if hashed:
            _write_proof(view, record, proven)
        return VersionFiles(view, record, proven, counter, Verdicts(self))

    def _move_aside(self, view: Path) -> None:
        aside = view.with_name(f".{view.name}.{os.urandom(8).hex()}.damaged")
        try:
            os.rename(view, aside)
        except FileNotFoundError:
            return
        shutil.rmtree(aside, ignore_errors=True)


def _user() -> int | None:
    """This process's effective uid (``None`` on Windows)."""
    return os.geteuid() if hasattr(os, "geteuid") else None


def _not_private(st: os.stat_result) -> str | None:
    """Why a cache directory or file (``st``: its stat) is not this user's alone; ``None`` if it is."""
    user = _user()
    if user is None:
        return None  # Windows: the per-user profile directory's permissions protect it
    if st.st_uid != user:
        return f"belongs to another user (uid {st.st_uid}, not {user})"
    if st.st_mode & 0o022:
        return f"can be written by {'every user' if st.st_mode & 0o002 else 'its group'} (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _only_this_user_writes(path: Path) -> bool:
    """Whether no one but this user (or root) can write the file ``path`` or put another in its place:
    it is a regular file of this user's that others may not write, and every directory from the file
    system's root down to it is this user's or root's and writable by no one else, or sticky (``/tmp``:
    others cannot rename what is not theirs there). ``False`` on Windows (no modes to check)."""
    user = _user()
    st = os.lstat(path)
    if user is None or not stat.S_ISREG(st.st_mode) or st.st_uid != user or st.st_mode & 0o022:
        return False
    real = Path(os.path.realpath(path.parent))
    for directory in (*reversed(real.parents), real):
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid not in (user, 0) or (st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX):
            return False
    return True


def read_private_json(path: Path) -> Any:
    """The JSON document in the cache file ``path``; ``None`` if it is missing, unreadable, not a
    regular file or not this user's alone (what it vouched for is then verified again)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or _not_private(st):
                return None
            return json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None


def _file_state(path: Path) -> list[int]:
    """What changes whenever a file's bytes or mode change: device, inode, size, mtime, ctime."""
    st = os.stat(path, follow_symlinks=False)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _write_proof(view: Path, record: VersionRecord, states: dict[str, list | None]) -> None:
    """Record the state each file of ``view`` had when it was verified (``None``: not verified),
    keeping what another process proved meanwhile for files this one did not (written atomically)."""
    found = read_private_json(view / COMPLETE)
    old = found.get("verified") if isinstance(found, dict) else None
    proof = {k: v for k, v in old.items() if k in {f.path for f in record.files}} if isinstance(old, dict) else {}
    proof.update({name: state for name, state in states.items() if state is not None})
    # The record rides along, so that an offline load can use the view without asking the store.
    write_json(view / COMPLETE, {"files": [f.path for f in record.files], "verified": proof, "record": record.document})


def check_size(size: int, entry: FileEntry) -> None:
    """Refuse an object that is not the size its record names (a download stops one byte past it)."""
    if size > entry.size:
        raise IntegrityError(entry.path, entry.sha256, "?", f"the stored object is larger than the {entry.size} bytes its record names")
    if size < entry.size:
        raise IntegrityError(entry.path, entry.sha256, "?", f"the stored object is {size} bytes, not the {entry.size} its record names")


def write_json(path: Path, doc) -> None:
    """Replace the cache file ``path`` (its directory exists) with ``doc`` as JSON, private (0600) and
    atomically (a reader sees the old or the new)."""
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.part")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE), "w") as f:
            f.write(json.dumps(doc))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _is_store_object(storage: Storage, entry: FileEntry, state: list[int]) -> bool:
    """Whether a view's file (``state``: from :func:`_file_state`) is a local store's object itself, linked."""
    local = storage.local_path(keys.object_key(entry.sha256))
    if local is None:
        return False
    try:
        st = os.stat(local, follow_symlinks=False)
    except OSError:
        return False
    return [st.st_dev, st.st_ino] == state[:2] and st.st_size == entry.size


class VersionFiles:
    """The files of one version, as a load sees them (what ``verified=`` of
    ``modelstore_deserialize`` receives): under :attr:`directory`, each either proven (verified
    before and unchanged since) or still to be verified.

    A deserializer reads a file with :meth:`open` (verified as it is read: one pass over the
    bytes) or takes a verified path with :meth:`path` (for formats read by a library that needs a
    file). The core verifies whatever was not read this way before the load returns.
    """

    def __init__(
        self, directory: Path, record: VersionRecord, proven: dict[str, list], counter: Progress, verdicts: Verdicts | None = None
    ):
        self.directory, self.record = directory, record
        self._verdicts = verdicts
        self._entries = {entry.path: entry for entry in record.files}
        self._proven = dict(proven)
        self._saved = dict(proven)  # what the view's proof file holds already
        self._readers: list[VerifyingReader] = []
        self._counter = counter
        self._lock = threading.Lock()

    @property
    def pending(self) -> list[str]:
        """Stored names of the files not verified yet."""
        with self._lock:
            return [name for name in self._entries if name not in self._proven]

    def _entry(self, name: Any) -> FileEntry:
        entry = self._entries.get(name) if isinstance(name, str) else None
        if entry is None:
            problem = f"names {str(name)[:80]!r}, which is not one of the version's files"
            raise CorruptRecordError("the version record", "flavor.options", problem)
        return entry

    def open(self, name: str) -> VerifyingReader:
        """A :class:`~modelstore_core.hashing.VerifyingReader` over the stored file ``name``: read it
        front to back; its last read (or ``finish()``) raises :class:`IntegrityError` if the bytes
        are not the recorded ones. ``name`` must be one of the version's files (a name read from
        the record is checked here: :class:`CorruptRecordError` otherwise)."""
        entry = self._entry(name)
        self._collect()  # read to its end through an earlier open(): proven
        with self._lock:
            proven = self._proven.get(name)
        progress = None if proven else self._counter.file(entry.size)
        reader = VerifyingReader(self.directory / name, entry.sha256, entry.size, name, progress, proven=proven and proven[:5])
        if reader.hashing:  # not proven, or changed since it was
            with self._lock:
                self._proven.pop(name, None)
                self._readers.append(reader)
        return reader

    def passed_before(self, name: str, check: str) -> bool:
        """Whether the bytes of the stored file ``name`` passed ``check`` (a name that says which
        plugin's check, with the plugin's and the framework's versions: :func:`check_name`)
        on this machine before, in any view. ``False`` unless the file has been verified in this
        load (read to its end through :meth:`open`, or :meth:`path`): ask after reading it, about the
        bytes read, never before."""
        entry = self._verified_entry(name)
        return entry is not None and self._verdicts is not None and self._verdicts.passed(entry.sha256, check)

    def remember_passed(self, name: str, check: str) -> None:
        """Remember that the bytes of the stored file ``name`` passed ``check`` (best effort):
        call it once the check has passed on bytes read through :meth:`open` or :meth:`path`. Kept
        only for a file verified in this load, as :meth:`passed_before` answers only for one."""
        entry = self._verified_entry(name)
        if entry is not None and self._verdicts is not None:
            self._verdicts.remember(entry.sha256, check)

    def _verified_entry(self, name: str) -> FileEntry | None:
        """The record's entry of ``name`` (else :class:`CorruptRecordError`), if its file has been
        verified in this load; ``None`` if not yet."""
        entry = self._entry(name)
        self._collect()
        with self._lock:
            return entry if name in self._proven else None

    def path(self, name: str) -> Path:
        """The stored file ``name``, verified (hashed now unless proven): for libraries that read files."""
        entry = self._entry(name)
        self._collect()  # read to its end through open(): proven
        self._verify([entry])
        return self.directory / name

    def verify_rest(self) -> None:
        """Verify every file not verified yet (several at once) and record the proof; raises
        :class:`IntegrityError` for a damaged one."""
        self._collect()
        pending = [self._entries[name] for name in self.pending]
        try:
            self._verify(pending)
        finally:
            self.save_proof()

    def _verify(self, entries: list[FileEntry]) -> None:
        def verify(entry: FileEntry) -> None:
            with self._lock:
                if entry.path in self._proven:
                    return
            path = self.directory / entry.path
            state = _file_state(path)
            actual, _ = hash_file(path, self._counter.file(entry.size))
            check_hash(actual, entry.sha256, entry.path)
            if _file_state(path) == state:
                with self._lock:
                    self._proven[entry.path] = [*state, entry.sha256]

        _in_parallel(verify, entries)

    def _collect(self) -> None:
        """Take the proof of every reader that read its file to the end and found it intact."""
        with self._lock:
            readers = [reader for reader in self._readers if reader.verified]
            self._readers = [reader for reader in self._readers if not reader.verified]  # still being read (another thread)
        for reader in readers:
            st = reader.opened
            if _file_state(reader.path) == [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]:
                with self._lock:
                    self._proven[reader.name] = [*_file_state(reader.path), reader.expected]

    def save_proof(self) -> None:
        """Remember what this load verified, so the next one need not hash it again."""
        self._collect()
        with self._lock:
            proven = dict(self._proven)
        if proven == self._saved:
            return
        self._saved = proven
        try:
            _write_proof(self.directory, self.record, proven)
        except OSError:
            pass  # a proof is an optimisation: the next load verifies again

    def check_after_failure(self) -> None:
        """After a deserializer failed: raise :class:`IntegrityError` if a file it had not verified
        yet is damaged (the real cause of a parse error), else return (and the caller re-raises)."""
        self._collect()
        self._verify([self._entries[name] for name in self.pending])


#: Files of one version verified at once (sha256 and file I/O release the GIL).
PARALLEL_FILES = 4


def write_files(
    storage: Storage,
    record: VersionRecord,
    directory: Path,
    cache: Cache,
    progress: ProgressCallback | None = None,
    *,
    link: bool = False,
    counter: Progress | None = None,
) -> dict[str, list | None]:
    """Write the files of ``record`` into ``directory`` (created), several at once; returns each
    file's state as verified (:func:`_file_state` and sha256), ``None`` for one left unverified.
    A file whose object the store lacks is a :class:`MissingObjectError` naming the version and file.

    With ``link``, files are hard links where the file system allows (a load's cache view): to a
    local store's own object if this user owns it (proven if this machine's upload proved it and it
    is unchanged since, :meth:`Cache.upload_proof`; else left unverified: the load verifies it as it
    reads it), or to the cached object of a remote store (verified as it entered the cache); a copy
    made for the cache instead is read-only. Without it (a download), every file is a real copy,
    hashed as it is written.
    """
    entries = record.files
    directory.mkdir(parents=True, exist_ok=True)
    counter = counter or Progress(progress, sum(entry.size for entry in entries))
    mode = PRIVATE_DIR if link else 0o777  # (less the umask)
    for entry in entries:
        for parent in reversed(Path(entry.path).parents[:-1]):
            (directory / parent).mkdir(mode=mode, exist_ok=True)
    states: dict[str, list | None] = {}

    def write(entry: FileEntry) -> None:
        dest, linked = directory / entry.path, False
        local = storage.local_path(keys.object_key(entry.sha256))
        if local is not None:
            if link and _owned(local):
                uploaded = cache.upload_proof(entry, local)
                try:
                    os.link(local, dest)
                except OSError:
                    pass
                else:
                    states[entry.path] = _linked_proof(dest, uploaded)  # None: the store's object, verified as it is read
                    if uploaded is not None:
                        cache._upload_proof_path(entry.sha256).unlink(missing_ok=True)  # stale now: the link moved the ctime
                    if states[entry.path] is not None:
                        counter.file(entry.size).finish()
                    return
            file = counter.file(entry.size)
            check_size(local.stat().st_size, entry)  # before a copy of what may be far more
            # One pass that copies and hashes.
            check_hash(copy_file_hashed(local, dest, progress=file)[0], entry.sha256, entry.path, partial=dest)
        else:
            file = counter.file(entry.size)
            try:
                cached = cache.fetch_object(storage, entry, file)
            except KeyNotFoundError as exc:
                raise MissingObjectError(record.domain, record.version, entry.path, entry.sha256, str(exc)) from None
            try:
                if not link:
                    raise OSError  # a download is a real copy
                os.link(cached, dest)  # verified just now
                linked = True
            except OSError:
                shutil.copyfile(cached, dest)
        file.finish()
        if link and not linked:  # the cache's own copy
            os.chmod(dest, READ_ONLY)
        states[entry.path] = [*_file_state(dest), entry.sha256]

    _in_parallel(write, list(entries))
    return states


def _linked_proof(dest: Path, uploaded: list | None) -> list | None:
    """The view's proof of a store's object just linked to ``dest``, from this machine's upload's proof
    of it (``uploaded``, which it matched just before the link; ``None`` if none). The link moves the
    object's ctime, so its state now must match on the rest, and it must still be this user's and
    read-only (so nothing wrote it in that instant). ``None`` otherwise: verified as it is read."""
    if uploaded is None:
        return None
    st = os.lstat(dest)
    state = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    if state[:4] != uploaded[:4] or st.st_uid != _user() or st.st_mode & 0o222:
        return None
    return [*state, uploaded[5]]


def _owned(path: Path) -> bool:
    """Whether this user owns ``path`` (so only they can change it)."""
    try:
        return _user() in (None, os.stat(path).st_uid)
    except OSError:
        return False


def copy_verified(sources: dict[str, Path], entries: tuple[FileEntry, ...], directory: Path) -> None:
    """Copy local files (``sources``: stored name -> path) into ``directory``, hashing each copy
    against its record (an offline download)."""
    for entry in entries:
        dest = directory / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        check_hash(copy_file_hashed(sources[entry.path], dest)[0], entry.sha256, entry.path, partial=dest)


def _in_parallel(fn, items: list) -> None:
    """``fn(item)`` for every item, up to ``PARALLEL_FILES`` at once (sha256 and file I/O release the GIL)."""
    if len(items) < 2:
        for item in items:
            fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(PARALLEL_FILES, len(items))) as pool:
        list(pool.map(fn, items))


def check_name(plugin: str, check: str, framework: Any) -> str:
    """The name a plugin's check of artifact bytes is remembered under (:meth:`VersionFiles.passed_before`):
    the plugin's distribution and its installed version, the check (what it reads, its own version),
    and the framework that loads what passed (its module) with that framework's version. A new
    release of the plugin or the framework checks the bytes again, whether or not ``check`` was
    renamed: ``"modelstore-xgboost/0.1.0/ubjson-1/xgboost-3.2.0"``."""
    from .distributions import installed

    found = installed(plugin)
    return f"{plugin}/{found.version if found is not None else 'unknown'}/{check}/{framework.__name__}-{framework.__version__}"


class Verdicts:
    """Which plugins' checks the bytes of each sha256 passed on this machine:
    ``<cache>/verdicts/<sha256[:2]>/<sha256>.json`` holds the names of the checks, in a directory
    checked to be this user's alone (else the verdict is ignored: the check runs again). A check's
    name carries its version and the framework's, so a changed check runs again. Best effort: a
    verdict not kept costs the next load the check."""

    #: Checks kept per sha256 (a plugin names one or two): a bound on what a verdict file holds.
    MAX_CHECKS = 64

    def __init__(self, cache: Cache):
        self.cache = cache

    def _path(self, sha256: str) -> Path:
        return self.cache.root / "verdicts" / sha256[:2] / f"{sha256}.json"

    def _read(self, sha256: str) -> list[str]:
        path = self._path(sha256)
        try:
            doc = read_private_json(self.cache.checked(path.parent) / path.name)
        except UnsafeCacheError:
            return []
        checks = doc.get("passed") if isinstance(doc, dict) and doc.get("sha256") == sha256 else None
        return [c for c in checks if isinstance(c, str)] if isinstance(checks, list) else []

    def passed(self, sha256: str, check: str) -> bool:
        return check in self._read(sha256)

    def remember(self, sha256: str, check: str) -> None:
        checks = self._read(sha256)
        if check in checks:
            return
        path = self._path(sha256)
        try:
            write_json(self.cache.make_dirs(path.parent) / path.name, {"sha256": sha256, "passed": [*checks, check][-self.MAX_CHECKS :]})
        except (OSError, UnsafeCacheError):
            pass


class _DomainMemory:
    """What this machine remembers of each domain of a store: one JSON document per domain in
    ``directory`` (in ``cache``, whose directories are checked to be this user's alone before they
    are read: :meth:`Cache.checked`). Best effort: a memory that cannot be written only forgets."""

    def __init__(self, cache: Cache, directory: Path):
        self.cache, self.directory = cache, directory
        self._lock = threading.Lock()

    def _path(self, domain: str) -> Path:
        return self.directory / f"{domain}.json"

    def read(self, domain: str) -> dict:
        doc = read_private_json(self.cache.checked(self.directory) / self._path(domain).name)
        return doc if isinstance(doc, dict) else {}

    def _entry(self, domain: str, state: str | None) -> dict | None:
        doc = self.read(domain)
        entry = doc.get("latest") if state is None else (doc.get("states") or {}).get(state)
        return entry if isinstance(entry, dict) else None

    def _keep(self, domain: str, state: str | None, entry: dict) -> None:
        doc = self.read(domain)
        entry = {**entry, "seen": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if state is None:
            doc["latest"] = entry
        else:
            states = doc.get("states") if isinstance(doc.get("states"), dict) else {}
            states[state] = entry
            doc["states"] = states
        try:
            write_json(self.cache.make_dirs(self.directory) / self._path(domain).name, doc)
        except OSError:
            pass


class SeenNames(_DomainMemory):
    """Which version ``latest`` and each state of a domain last resolved to, per store, on this machine."""

    def lookup(self, domain: str, state: str | None) -> tuple[int, str] | None:
        """``(version, when seen)`` for ``latest`` (``state`` None) or ``state``; ``None`` if never seen."""
        entry = self._entry(domain, state) or {}
        version, seen = entry.get("version"), entry.get("seen")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1 or not isinstance(seen, str):
            return None
        return version, seen

    def remember(self, domain: str, state: str | None, version: int) -> None:
        """Record an online answer (forgetting it costs only offline loads)."""
        self._keep(domain, state, {"version": version})


class SeenPointers(_DomainMemory):
    """The newest signed statement of ``latest`` and of each state of a domain that this machine
    has seen (or signed), per store: ``{"latest": {"serial", "version", "seen"}, "states": {name: ...}}``
    in ``<cache>/pointers/<store>/<domain>.json``. Only ever moves forward (a higher serial)."""

    def lookup(self, domain: str, state: str | None) -> tuple[int, int | None, str] | None:
        """``(serial, version or None, when seen)`` of ``latest`` (``state`` None) or ``state``; ``None`` if never seen."""
        entry = self._entry(domain, state) or {}
        serial, version, seen = entry.get("serial"), entry.get("version"), entry.get("seen")
        if type(serial) is not int or (version is not None and type(version) is not int) or not isinstance(seen, str):
            return None
        return serial, version, seen

    def remember(self, domain: str, state: str | None, serial: int, version: int | None) -> None:
        """Keep a statement seen, unless one with a higher serial is kept already (a forgotten
        pointer is checked as a first-time reader checks it)."""
        with self._lock:
            known = self.lookup(domain, state)
            if known is None or known[0] < serial:
                self._keep(domain, state, {"serial": serial, "version": version})

"""Local, verified files of a version, for ``load`` and ``download``.

Every file is checked against its recorded sha256 before anyone reads it. Files from a remote
store pass through a content-addressed cache (``<cache>/objects``), so a file that is already
there, whichever version it came with, is never downloaded again. A load's view of a version
(``<cache>/versions/...``) holds hard links, never copies, where the file system allows: to the
cached objects, and for a local store to the store's own (read-only) objects, so a local load
costs no disk space. A download is always a real copy (the caller may edit it).

A view remembers, per file, the ``(device, inode, size, mtime, ctime)`` it had when it was last
verified. A later load trusts a file whose state is unchanged instead of hashing it again: any
write to the file, or a ``chmod``, moves its ctime, which an unprivileged process cannot set back.
(A user who can write the cache can of course replace it: the cache is theirs.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from .errors import ConflictError, CorruptRecordError, IntegrityError
from .hashing import check_hash, copy_file_hashed, hash_file, verify_file
from .progress import FileProgress, Progress, ProgressCallback
from .protocol import keys
from .protocol.records import FileEntry, VersionRecord
from .storage import Storage

COMPLETE = ".modelstore-complete.json"


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
        """Delete everything cached (later loads fetch and verify again); returns what was freed.

        A load running at the same moment in another process may fail and need a retry.
        """
        freed = self.usage()
        for part in ("versions", "objects", "records", "resolved"):  # the last two: offline answers
            shutil.rmtree(self.root / part, ignore_errors=True)
        return freed

    @staticmethod
    def store_id(url: str) -> str:
        """What names a store's part of the cache: the start of the sha256 of its URL."""
        return hashlib.sha256(url.encode()).hexdigest()[:16]

    def version_dir(self, storage: Storage, domain: str, version: int) -> Path:
        return self.root / "versions" / self.store_id(storage.url) / domain / str(version)

    def seen_names(self, url: str):
        """Which versions ``latest`` and states of a store last resolved to here (:mod:`.offline`)."""
        from .offline import SeenNames

        return SeenNames(self.root / "resolved" / self.store_id(url))

    def _record_path(self, storage: Storage, domain: str, version: int) -> Path:
        return self.root / "records" / self.store_id(storage.url) / domain / f"{version}.json"

    def remember_record(self, storage: Storage, record: VersionRecord) -> None:
        """Keep the record of a downloaded version, for offline downloads from the cached objects
        (a loaded version keeps it in its view's proof). Best effort."""
        try:
            write_json(self._record_path(storage, record.domain, record.version), record.document)
        except OSError:
            pass

    def cached_record(self, storage: Storage, domain: str, version: int) -> VersionRecord | None:
        """The record this machine kept of a version it loaded (in the proof of its cache view) or
        downloaded; ``None`` when there is no usable one. Validated like any record; whether the
        files are there and intact is checked where they are used."""
        view = self.version_dir(storage, domain, version)
        for path, field in ((view / COMPLETE, "record"), (self._record_path(storage, domain, version), None)):
            try:
                doc = json.loads(path.read_text())
                return VersionRecord.from_document(doc.get(field) if field else doc, str(path), domain, version)
            except (OSError, ValueError, AttributeError, RecursionError, CorruptRecordError):
                continue
        return None

    def cached_files(self, storage: Storage, record: VersionRecord) -> dict[str, Path] | None:
        """Where each file of ``record`` is on this machine without the store (its intact view, else
        the cached objects), to be verified as it is copied; ``None`` if any is missing."""
        view = self.intact_view(storage, record)
        if view is not None:
            return {f.path: view / f.path for f in record.files}
        found = {f.path: self.object_path(f.sha256) for f in record.files}
        return found if all(path.is_file() for path in found.values()) else None

    def intact_view(self, storage: Storage, record: VersionRecord, progress: ProgressCallback | None = None) -> Path | None:
        """The version's cache view if it is complete and its files hold the recorded bytes; no storage access."""
        view = self.version_dir(storage, record.domain, record.version)
        return view if self._intact(view, record, progress) else None

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / "sha256" / sha256[:2] / sha256

    def _tmp_name(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.{os.urandom(16).hex()}.part")

    def fetch_object(self, storage: Storage, entry: FileEntry, progress: FileProgress) -> Path:
        """The cached copy of a remote object, downloaded and verified if missing or damaged."""
        path = self.object_path(entry.sha256)
        if path.is_file():
            actual, _ = hash_file(path, progress)
            if actual == entry.sha256:
                return path
            path.unlink(missing_ok=True)  # damaged: fetch it again
            progress.reported = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp_name(path)
        try:
            storage.get_file(keys.object_key(entry.sha256), tmp, progress=progress)
            verify_file(tmp, entry.sha256, entry.path)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def materialize(self, storage: Storage, record: VersionRecord, progress: ProgressCallback | None = None) -> Path:
        """The version's files under their stored names in the cache, verified. Reused by later loads.

        Safe for concurrent processes: a view is built privately and renamed into place whole; a
        loader that finds a complete, intact view (its own or another's) uses it and never deletes
        it, so the paths it returns stay valid. Only a view that fails verification is moved aside.
        The view's path comes from the requested domain and version, which the record was checked
        to name.
        """
        target = self.version_dir(storage, record.domain, record.version)
        if self._intact(target, record, progress):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = self._tmp_name(target)
        try:
            write_files(storage, record.files, staging, self, progress, link=True)
            _write_proof(staging, record)
            for _ in range(3):
                try:
                    os.rename(staging, target)  # atomic; fails if another view is already there
                    return target
                except OSError:
                    if self._intact(target, record, None):
                        return target  # a concurrent loader's finished view: use it, discard ours
                    self._move_aside(target)  # damaged or edited: never rebuilt in place
            raise ConflictError(f"the cache view {target} kept being replaced by other processes; load again")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _intact(self, view: Path, record: VersionRecord, progress: ProgressCallback | None) -> bool:
        """Whether ``view`` is a finished view whose files all hold the recorded bytes: proven by an
        unchanged file state, else hashed (and the proof renewed)."""
        try:
            found = json.loads((view / COMPLETE).read_text())
            proof = found.get("verified")
        except (OSError, ValueError, AttributeError, RecursionError):
            return False
        proof = proof if isinstance(proof, dict) else {}
        counter = Progress(progress, record.size)
        hashed = "record" not in found  # a proof from an older release: renewed with the record
        try:
            for entry in record.files:
                file = counter.file(entry.size)
                path = view / entry.path
                if proof.get(entry.path) == [*_file_state(path), entry.sha256]:
                    file.finish()
                    continue
                actual, _ = hash_file(path, file)
                check_hash(actual, entry.sha256, entry.path)
                hashed = True
        except (OSError, IntegrityError):
            return False
        if hashed:
            _write_proof(view, record)
        return True

    def _move_aside(self, view: Path) -> None:
        aside = view.with_name(f".{view.name}.{os.urandom(8).hex()}.damaged")
        try:
            os.rename(view, aside)
        except FileNotFoundError:
            return
        shutil.rmtree(aside, ignore_errors=True)


def _file_state(path: Path) -> list[int]:
    """What changes whenever a file's bytes or mode change: device, inode, size, mtime, ctime."""
    st = os.stat(path, follow_symlinks=False)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _write_proof(view: Path, record: VersionRecord) -> None:
    """Record the state of each file of ``view``, just verified (written atomically)."""
    proof = {entry.path: [*_file_state(view / entry.path), entry.sha256] for entry in record.files}
    # The record rides along, so that an offline load can use the view without asking the store.
    write_json(view / COMPLETE, {"files": [f.path for f in record.files], "verified": proof, "record": record.document})


def write_json(path: Path, doc) -> None:
    """Replace the cache file ``path`` with ``doc`` as JSON, atomically (a reader sees the old or the new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.part")
    try:
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


#: Files of one version verified at once (sha256 and file I/O release the GIL).
PARALLEL_FILES = 4


def write_files(
    storage: Storage,
    entries: tuple[FileEntry, ...],
    directory: Path,
    cache: Cache,
    progress: ProgressCallback | None = None,
    *,
    link: bool = False,
) -> None:
    """Write verified ``entries`` into ``directory`` (created), several files at once.

    With ``link``, files are hard links where the file system allows (a load's cache view): to a
    local store's own object after hashing it, or to the cached object of a remote store. Without
    it (a download), every file is a real copy, hashed as it is written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    counter = Progress(progress, sum(entry.size for entry in entries))
    jobs = [(entry, counter.file(entry.size)) for entry in entries]
    for entry in entries:
        (directory / entry.path).parent.mkdir(parents=True, exist_ok=True)

    def write(job: tuple[FileEntry, FileProgress]) -> None:
        entry, file = job
        dest = directory / entry.path
        local = storage.local_path(keys.object_key(entry.sha256))
        if local is not None:
            if not (link and _link_verified(local, dest, entry, file)):
                # One pass that copies and hashes.
                check_hash(copy_file_hashed(local, dest, progress=file)[0], entry.sha256, entry.path, partial=dest)
        else:
            cached = cache.fetch_object(storage, entry, file)
            try:
                if not link:
                    raise OSError  # a download is a real copy
                os.link(cached, dest)  # verified just now
            except OSError:
                shutil.copyfile(cached, dest)
        file.finish()

    if len(jobs) < 2:
        for job in jobs:
            write(job)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(PARALLEL_FILES, len(jobs))) as pool:
        list(pool.map(write, jobs))


def copy_verified(sources: dict[str, Path], entries: tuple[FileEntry, ...], directory: Path) -> None:
    """Copy local files (``sources``: stored name -> path) into ``directory``, hashing each copy
    against its record (an offline download)."""
    for entry in entries:
        dest = directory / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        check_hash(copy_file_hashed(sources[entry.path], dest)[0], entry.sha256, entry.path, partial=dest)


def _link_verified(source: Path, dest: Path, entry: FileEntry, progress: FileProgress) -> bool:
    """Hash a local store's object and hard-link it to ``dest``; ``False`` (nothing done) where the
    file system cannot link. Raises :class:`IntegrityError` if the object is damaged."""
    before = os.stat(source)
    actual, _ = hash_file(source, progress)
    check_hash(actual, entry.sha256, entry.path)
    try:
        os.link(source, dest)
    except OSError:
        return False
    after = os.stat(dest)
    if (after.st_ino, after.st_size, after.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns):
        dest.unlink()  # rewritten while it was hashed: hash it again through a copy
        return False
    return True

"""Local, verified copies of a version's files, for ``load`` and ``download``.

Every file is checked against its recorded sha256 before anyone reads it. Files from a
remote store pass through a content-addressed cache (``<cache>/objects``), so a file that
is already there, whichever version it came with, is never downloaded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from .errors import ConflictError, IntegrityError
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
        for part in ("versions", "objects"):
            shutil.rmtree(self.root / part, ignore_errors=True)
        return freed

    def version_dir(self, storage: Storage, domain: str, version: int) -> Path:
        store_id = hashlib.sha256(storage.url.encode()).hexdigest()[:16]
        return self.root / "versions" / store_id / domain / str(version)

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
            write_files(storage, record.files, staging, self, progress)
            (staging / COMPLETE).write_text(json.dumps({"files": [f.path for f in record.files]}))
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
        """Whether ``view`` is a finished view whose files all hash as recorded."""
        if not (view / COMPLETE).is_file():
            return False
        counter = Progress(progress, record.size)
        try:
            for entry in record.files:
                actual, _ = hash_file(view / entry.path, counter.file(entry.size))
                check_hash(actual, entry.sha256, entry.path)
        except (OSError, IntegrityError):
            return False
        return True

    def _move_aside(self, view: Path) -> None:
        aside = view.with_name(f".{view.name}.{os.urandom(8).hex()}.damaged")
        try:
            os.rename(view, aside)
        except FileNotFoundError:
            return
        shutil.rmtree(aside, ignore_errors=True)


def write_files(
    storage: Storage, entries: tuple[FileEntry, ...], directory: Path, cache: Cache, progress: ProgressCallback | None = None
) -> None:
    """Write verified copies of ``entries`` into ``directory`` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    counter = Progress(progress, sum(entry.size for entry in entries))
    for entry in entries:
        file = counter.file(entry.size)
        dest = directory / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        key = keys.object_key(entry.sha256)
        local = storage.local_path(key)
        if local is not None:
            # Local store: one pass that copies and hashes; the store's own file is never linked out.
            check_hash(copy_file_hashed(local, dest, progress=file)[0], entry.sha256, entry.path, partial=dest)
        else:
            cached = cache.fetch_object(storage, entry, file)
            try:
                os.link(cached, dest)  # verified just now; later loads re-verify
            except OSError:
                shutil.copyfile(cached, dest)
        file.finish()

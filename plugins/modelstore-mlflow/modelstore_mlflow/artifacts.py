"""Reading the files of an MLflow model from its artifact location, checked on the way.

The location comes from the MLflow store, which is untrusted input like any other: a database
row can name ``/etc``, a folder can hold a link to ``~/.ssh`` or a file of a terabyte. So:

* a local location (``file:``, a path, ``mlflow-artifacts:`` with ``artifacts_destination``)
  must resolve inside one of the allowed roots (the store's own directory unless told
  otherwise); no link is followed (a link anywhere below it is an error); only regular files
  are read, each through a descriptor opened without following links and checked to be the file
  that was listed; names must be valid stored file names here (no ``..``, no hidden part);
* the number of files and their total size are checked from the listing before a byte is
  copied, and each copy stops at the size listed (a file that grows meanwhile is an error);
* any other location (``s3://``, ``gs://``, ``mlflow-artifacts:`` through a tracking server...)
  is listed and read file by file with MLflow's artifact repository, each listed name checked
  before it is fetched into a place of this module's choosing, and each fetched file's size
  checked against the limits.

Every refusal is an :class:`ArtifactError` naming the file: the version is reported and left
out; nothing is written but into the caller's ``destination``.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from modelstore_core.plugin_api import InvalidNameError

from .registry import MlflowImportError

#: Default caps on one model's files: how many, and their total size.
MAX_FILES = 10_000
MAX_BYTES = 64 << 30
_CHUNK = 1 << 20


class ArtifactError(MlflowImportError):
    """A model's files cannot be read safely (outside the allowed roots, a link, too large...)."""


@dataclass(frozen=True)
class Limits:
    max_files: int = MAX_FILES
    max_bytes: int = MAX_BYTES


def local_path(uri: str, artifacts_destination: Path | None) -> Path | None:
    """The local directory an artifact URI names, or ``None`` for a remote one."""
    parsed = urlparse(uri)
    if parsed.scheme == "mlflow-artifacts":
        if artifacts_destination is None:
            return None  # served by a tracking server (http tracking URI), or unknown
        relative = unquote(parsed.path).lstrip("/")
        if any(part in ("", ".", "..") for part in relative.split("/")):
            raise ArtifactError(f"the artifact location {uri} is not a plain path below the artifacts destination")
        return artifacts_destination / relative
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ArtifactError(f"the artifact location {uri} names another host")
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a path (a one-letter scheme: a Windows drive)
        if not os.path.isabs(uri):
            raise ArtifactError(f"the artifact location {uri!r} is a relative path: relative to what is unknown")
        return Path(uri)
    return None


def fetch(
    uri: str,
    destination: Path,
    *,
    roots: list[Path],
    artifacts_destination: Path | None,
    limits: Limits,
    check_name: Callable[[str], object],
    advance: Callable[[int], None] | None = None,
    served: bool = False,
) -> list[str]:
    """Copy every file under artifact location ``uri`` into ``destination`` (created); their
    relative names, sorted. ``check_name`` refuses a name that cannot be stored; ``served``: the
    tracking URI is a server's, which serves ``mlflow-artifacts:`` locations."""
    local = local_path(uri, artifacts_destination)
    if local is not None:
        return _copy_local(uri, local, destination, roots, limits, check_name, advance)
    if urlparse(uri).scheme == "mlflow-artifacts" and not served:
        raise ArtifactError(
            f"its files are at {uri}, served by a tracking server: import through the server's http(s):// URI,"
            " or say where the server keeps them (artifacts_destination=, --artifacts-destination DIR)"
        )
    return _download(uri, destination, limits, check_name, advance)


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([root, path]) == root


def _copy_local(uri, directory: Path, destination: Path, roots: list[Path], limits: Limits, check_name, advance) -> list[str]:
    real = os.path.realpath(directory)
    allowed = [os.path.realpath(root) for root in roots]
    if not any(_inside(real, root) for root in allowed):
        shown = ", ".join(str(r) for r in roots) or "none"
        raise ArtifactError(
            f"its files are at {directory}, outside the directories allowed for artifacts ({shown}): pass"
            " artifact_roots= (--artifact-root) naming where your MLflow artifacts are, if that is where they belong"
        )
    try:
        mode = os.lstat(real).st_mode
    except FileNotFoundError:
        raise ArtifactError(f"its files are missing: {directory} does not exist") from None
    if not stat.S_ISDIR(mode):
        raise ArtifactError(f"its artifact location {directory} is not a directory")
    listed: list[tuple[str, str, os.stat_result]] = []
    total = 0
    for top, dirnames, filenames in os.walk(real, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = os.path.join(top, name)
            relative = os.path.relpath(path, real).replace(os.sep, "/")
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                raise ArtifactError(f"{relative[:200]} is a symbolic link (to {os.readlink(path)[:200]}): links are not followed")
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise ArtifactError(f"{relative[:200]} is not a regular file (a device, FIFO or socket)")
            _check(check_name, relative)
            listed.append((relative, path, info))
            total += info.st_size
            if len(listed) > limits.max_files:
                raise ArtifactError(f"it holds more than {limits.max_files} files")
            if total > limits.max_bytes:
                raise ArtifactError(f"its files hold more than {limits.max_bytes} bytes (at {relative[:200]})")
    if not listed:
        raise ArtifactError(f"its artifact location {directory} holds no files")
    destination.mkdir(parents=True, exist_ok=True)
    for relative, path, info in listed:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_file(relative, path, info, target, advance)
    return sorted(relative for relative, _, _ in listed)


def _check(check_name, relative: str) -> None:
    try:
        check_name(relative)
    except InvalidNameError as exc:
        raise ArtifactError(f"{relative[:200]}: {exc}") from None


def _copy_file(relative: str, path: str, listed: os.stat_result, target: Path, advance) -> None:
    """Copy exactly the file listed: opened without following a link, the same inode, at most its listed size."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ArtifactError(f"{relative[:200]} cannot be opened ({exc.strerror}): it changed while importing") from None
    with os.fdopen(fd, "rb") as source:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (listed.st_dev, listed.st_ino):
            raise ArtifactError(f"{relative[:200]} was replaced while importing")
        written = 0
        with open(target, "xb") as out:
            while written <= listed.st_size and (chunk := source.read(min(_CHUNK, listed.st_size + 1 - written))):
                out.write(chunk)
                written += len(chunk)
                if advance is not None:
                    advance(len(chunk))
    if written != listed.st_size:
        raise ArtifactError(f"{relative[:200]} holds {written} bytes, not the {listed.st_size} listed: it changed while importing")


def _download(uri: str, destination: Path, limits: Limits, check_name, advance) -> list[str]:
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        repository = get_artifact_repository(uri)
        listed = _list_remote(repository, limits, check_name)
    except (MlflowException, ImportError, OSError) as exc:  # an unknown scheme, a missing client library (boto3...)
        raise ArtifactError(f"MLflow cannot list its files at {uri}: {str(exc).splitlines()[0][:200]}") from None
    if not listed:
        raise ArtifactError(f"its artifact location {uri} holds no files")
    destination.mkdir(parents=True, exist_ok=True)
    inside = os.path.realpath(destination)
    total = 0
    for relative, _ in listed:
        with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".download-") as tmp:
            try:
                fetched = repository.download_artifacts(relative, dst_path=tmp)
            except MlflowException as exc:
                raise ArtifactError(f"{relative[:200]} could not be fetched: {str(exc).splitlines()[0][:200]}") from None
            expected = os.path.realpath(os.path.join(tmp, relative))
            if os.path.realpath(fetched) != expected or not stat.S_ISREG(os.lstat(fetched).st_mode):
                raise ArtifactError(f"{relative[:200]} was not fetched as a regular file where it was asked for")
            size = os.path.getsize(fetched)
            total += size
            if total > limits.max_bytes:
                raise ArtifactError(f"its files hold more than {limits.max_bytes} bytes (at {relative[:200]})")
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if not _inside(os.path.realpath(target.parent), inside):
                raise ArtifactError(f"{relative[:200]} would land outside the import's directory")
            shutil.move(fetched, target)
            if advance is not None:
                advance(size)
    return sorted(relative for relative, _ in listed)


def _list_remote(repository, limits: Limits, check_name) -> list[tuple[str, int | None]]:
    found: list[tuple[str, int | None]] = []
    total = 0
    pending = [None]
    seen: set[str] = set()
    while pending:
        folder = pending.pop()
        for info in repository.list_artifacts(folder):
            path = str(info.path)
            if folder is not None and not path.startswith(folder.rstrip("/") + "/"):
                raise ArtifactError(f"the listing of {folder[:200]} names {path[:200]}, which is not inside it")
            if path in seen:
                raise ArtifactError(f"the listing names {path[:200]} twice")
            seen.add(path)
            if info.is_dir:
                _check(check_name, path)
                pending.append(path)
                continue
            _check(check_name, path)
            found.append((path, info.file_size))
            total += info.file_size or 0
            if len(found) > limits.max_files:
                raise ArtifactError(f"it holds more than {limits.max_files} files")
            if total > limits.max_bytes:
                raise ArtifactError(f"its files hold more than {limits.max_bytes} bytes (at {path[:200]})")
    return found

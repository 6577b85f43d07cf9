"""The upload transaction: store every file by content, then commit the version record.

Steps, and what a crash after each one leaves behind:

1. serialize the model into a private temporary directory;
2. stage every file: hash it (the local backend copies it into its ``.tmp/`` in the same pass);
3. write ``uploads/<id>.json`` listing the objects this upload is about to store, so that
   :func:`~modelstore_core.gc.collect_garbage` leaves them alone while it runs;
4. place each object under its sha256 unless it already exists (deduplication);
5. claim the next free version number with create-if-absent (``claims/<n>``): concurrent
   uploaders each get their own number, none is ever overwritten or reused;
6. create the version record ``versions/<n>.json``: the commit point. Before it the version is
   invisible; after it, complete;
7. move the ``latest.json`` hint forward (compare-and-swap) and delete the upload marker.

A crash before step 6 leaves only unreferenced objects and a marker, which ``gc`` reclaims; a
crash after it leaves a complete version (readers do not trust the hint blindly).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout
from .errors import ConflictError, InvalidNameError, SourceChangedError, StorageError
from .flavor import Flavor
from .liveness import HOST
from .metadata import jsonable, merge
from .names import check_file_path
from .plugins import Plugins, distribution_version
from .progress import FileProgress, Progress, ProgressCallback
from .storage import StagedFile, Storage
from .transfer import file_signature
from .versions import advance_latest, dumps, now_utc, read_latest_hint

SCHEMA = 1


def checkpoint(name: str) -> None:
    """No-op marker of each step; crash tests replace it to kill the process at a named point."""


@dataclass
class SourceFile:
    """A file about to be stored: its stored name, where it is now, and its size/mtime/inode before reading."""

    name: str
    path: Path
    signature: tuple[int, int, int]


def upload(
    storage: Storage,
    plugins: Plugins,
    domain: str,
    model: Any,
    extras: list[str | os.PathLike] | None,
    tags: dict[str, str],
    options: dict[str, Any],
    progress: ProgressCallback | None = None,
) -> tuple[dict[str, Any], int]:
    """Run the whole transaction; returns the committed version record and the artifact bytes written."""
    with tempfile.TemporaryDirectory(prefix="modelstore-") as tmp:
        flavor = serialize(plugins, model, Path(tmp), options)
        sources = collect_files(flavor, Path(tmp), extras)
        checkpoint("serialized")
        staged: list[StagedFile] = []
        marker = None
        counter = Progress(progress, sum(source.signature[0] for source in sources))
        files = [counter.file(source.signature[0]) for source in sources]
        try:
            for source, file in zip(sources, files, strict=True):
                staged.append(storage.stage_file(source.path, progress=file))
            checkpoint("staged")
            record = {
                "schema": SCHEMA,
                "domain": domain,
                "flavor": flavor.record(distribution_version(flavor.plugin)),
                "files": [{"path": src.name, "size": st.size, "sha256": st.sha256} for src, st in zip(sources, staged, strict=True)],
                "tags": tags,
            }
            record = merge(collect_metadata(plugins, model, flavor, domain), record)  # core keys win

            marker = layout.upload_key(os.urandom(16).hex())
            storage.put_if_absent(marker, dumps(marker_record(domain, staged)))
            checkpoint("marker-written")
            written = place_objects(staged, sources, files)
            checkpoint("objects-stored")
            record, hint = commit_record(storage, domain, record)
            checkpoint("committed")
            advance_latest(storage, domain, record["version"], hint)
            checkpoint("latest-updated")
        finally:
            for st in staged:
                st.discard()
            if marker is not None:
                storage.delete(marker)
    return record, written


def collect_metadata(plugins: Plugins, model: Any, flavor: Flavor, domain: str) -> dict[str, Any]:
    """Every plugin's contribution, merged (builtins first, so third-party plugins can refine them)."""
    merged: dict[str, Any] = {}
    for extra in reversed(plugins.hook.modelstore_collect_metadata(model=_model_or_none(model), flavor=flavor, domain=domain)):
        if extra:
            merge(merged, jsonable(extra))
    return merged


def marker_record(domain: str, staged: list[StagedFile]) -> dict[str, Any]:
    """What ``gc`` needs to leave this upload alone while its process runs."""
    return {
        "domain": domain,
        "started": now_utc(),
        "host": HOST,
        "pid": os.getpid(),
        "objects": sorted({st.sha256 for st in staged}),
    }


def _model_or_none(model: Any) -> Any:
    from .default_plugins.raw_files import RawFiles

    return None if isinstance(model, RawFiles) else model


def serialize(plugins: Plugins, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
    from .errors import UnsupportedModelError
    from .flavor import qualified_name
    from .plugin_helpers import top_level_modules
    from .plugins import KNOWN_PLUGINS

    flavor = plugins.hook.modelstore_serialize(model=model, directory=directory, options=options)
    if flavor is None:
        flavors = [f for names in plugins.hook.modelstore_flavors() for f in names or ()]
        # Most-derived class first: a Keras model on the torch backend is also an nn.Module.
        modules = top_level_modules(model)
        hint = next((KNOWN_PLUGINS["module"][m] for m in modules if m in KNOWN_PLUGINS["module"]), None)
        raise UnsupportedModelError(qualified_name(model), flavors, hint)
    if not isinstance(flavor, Flavor):
        raise TypeError(f"a modelstore_serialize hook returned {type(flavor).__name__}, not Flavor")
    return flavor


def collect_files(flavor: Flavor, directory: Path, extras: list[str | os.PathLike] | None) -> list[SourceFile]:
    """Name and snapshot every file to store: the model's, then the extras (under ``extras/``)."""
    named: dict[str, Path] = {}

    def add(name: str, path: Path) -> None:
        check_file_path(name)
        if name in named:
            raise InvalidNameError(f"two files would be stored as {name!r}; rename one of them")
        named[name] = path

    if flavor.files:
        for name, path in flavor.files.items():
            add(name, Path(path))
    else:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            add(path.relative_to(directory).as_posix(), path)
    if not named:
        raise InvalidNameError(f"the {flavor.name!r} serializer wrote no files")
    for extra in extras or ():
        for name, path in expand(Path(extra)):
            add(f"extras/{name}", path)

    return [SourceFile(name, path, file_signature(path)) for name, path in named.items()]


def expand(path: Path) -> list[tuple[str, Path]]:
    """A file as ``[(its name, path)]``; a directory as its files, named ``dir/relative/path``."""
    if path.is_dir():
        return [(f"{path.name}/{p.relative_to(path).as_posix()}", p) for p in sorted(path.rglob("*")) if p.is_file()]
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return [(path.name, path)]


def place_objects(staged: list[StagedFile], sources: list[SourceFile], files: list[FileProgress]) -> int:
    """Make each distinct file visible under its sha256, skipping those already stored.

    Returns the bytes of the objects that were not in the store before.
    """
    placed: dict[str, bool] = {}
    for st, file in zip(staged, files, strict=True):
        if st.sha256 not in placed:
            placed[st.sha256] = st.place(layout.object_key(st.sha256), progress=file)
            checkpoint("object-stored")
        file.finish()
    for source, st in zip(sources, staged, strict=True):
        if file_signature(source.path) != source.signature:
            if placed.get(st.sha256):
                st.storage.delete(layout.object_key(st.sha256))  # its bytes may not match its name
            raise SourceChangedError(f"{source.name} changed while it was being uploaded; nothing was committed")
    sizes = {st.sha256: st.size for st in staged}
    return sum(sizes[sha] for sha, wrote in placed.items() if wrote)


def commit_record(storage: Storage, domain: str, record: dict[str, Any]) -> tuple[dict[str, Any], tuple[int, Any]]:
    """Claim the next free version number and create its record (the commit point).

    Also returns the latest-version hint as read before claiming, with its token, so that moving
    the hint forward usually needs no second read.
    """
    hint = read_latest_hint(storage, domain)
    version = hint[0] + 1
    for _ in range(10_000):
        claim = dumps({"claimed": now_utc(), "host": HOST, "pid": os.getpid()})
        if storage.put_if_absent(layout.claim_key(domain, version), claim):
            break
        version += 1  # taken by a concurrent (or crashed) uploader
    else:
        raise ConflictError(f"could not claim a version number in domain {domain!r}")
    checkpoint("claimed")
    record = {**record, "version": version, "created": now_utc()}
    if not storage.put_if_absent(layout.version_key(domain, version), dumps(record)):
        raise StorageError(f"version {version} of {domain!r} exists although this upload claimed it")
    return record, hint



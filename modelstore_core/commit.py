"""The upload transaction: store every file by content, then commit the version record.

Steps, and what a crash after each one leaves behind:

1. serialize the model into a private temporary directory and hash every file;
2. write ``uploads/<id>.json`` listing the objects this upload is about to store, so that
   :func:`~modelstore_core.gc.collect_garbage` leaves them alone while it runs;
3. store each object under its sha256 unless it already exists (deduplication);
4. claim the next free version number with create-if-absent (``claims/<n>``): concurrent
   uploaders each get their own number, none is ever overwritten or reused;
5. create the version record ``versions/<n>.json``: the commit point. Before it the version is
   invisible; after it, complete;
6. move the ``latest.json`` hint forward (compare-and-swap) and delete the upload marker.

A crash before step 5 leaves only unreferenced objects and a marker, which ``gc`` reclaims; a
crash after it leaves a complete version (readers do not trust the hint blindly).
"""

from __future__ import annotations

import json
import os

import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import layout
from .errors import ConflictError, InvalidNameError, KeyNotFoundError, SourceChangedError, StorageError
from .flavor import Flavor
from .liveness import HOST
from .metadata import jsonable, merge
from .names import check_file_path
from .plugins import Plugins, distribution_version
from .storage import Storage
from .transfer import file_signature, hash_file

SCHEMA = 1
MAX_CAS_ATTEMPTS = 100


def checkpoint(name: str) -> None:
    """No-op marker of each step; crash tests replace it to kill the process at a named point."""


@dataclass
class SourceFile:
    """A file about to be stored: its stored name, where it is now, and what it hashed to."""

    name: str
    path: Path
    sha256: str
    size: int
    signature: tuple[int, int, int]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False).encode()


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def upload(
    storage: Storage,
    plugins: Plugins,
    domain: str,
    model: Any,
    extras: list[str | os.PathLike] | None,
    tags: dict[str, str],
    options: dict[str, Any],
) -> dict[str, Any]:
    """Run the whole transaction; returns the committed version record."""
    with tempfile.TemporaryDirectory(prefix="modelstore-") as tmp:
        directory = Path(tmp)
        flavor = serialize(plugins, model, directory, options)
        sources = collect_files(flavor, directory, extras)
        checkpoint("serialized")

        record = {
            "schema": SCHEMA,
            "domain": domain,
            "flavor": flavor.record(plugin_version(plugins, flavor)),
            "files": [{"path": s.name, "size": s.size, "sha256": s.sha256} for s in sources],
            "tags": tags,
        }
        contributed: dict[str, Any] = {}
        for extra in reversed(plugins.hook.modelstore_collect_metadata(model=_model_or_none(model), flavor=flavor, domain=domain)):
            if extra:
                merge(contributed, jsonable(extra))
        record = merge(contributed, record)  # core keys win over plugin keys

        upload_id = f"{uuid.uuid4().hex}"
        marker = layout.upload_key(upload_id)
        storage.put_if_absent(
            marker,
            dumps(
                {
                    "id": upload_id,
                    "domain": domain,
                    "started": now_utc(),
                    "host": HOST,
                    "pid": os.getpid(),
                    "objects": sorted({s.sha256 for s in sources}),
                }
            ),
        )
        checkpoint("marker-written")
        try:
            store_objects(storage, sources)
            checkpoint("objects-stored")
            record = commit_record(storage, domain, record)
            checkpoint("committed")
            advance_latest(storage, domain, record["version"])
            checkpoint("latest-updated")
        finally:
            storage.delete(marker)
    return record


def _model_or_none(model: Any) -> Any:
    from .default_plugins.raw_files import RawFiles

    return None if isinstance(model, RawFiles) else model


def serialize(plugins: Plugins, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
    from .errors import UnsupportedModelError
    from .flavor import qualified_name
    from .plugins import KNOWN_PLUGINS

    flavor = plugins.hook.modelstore_serialize(model=model, directory=directory, options=options)
    if flavor is None:
        flavors = [f for names in plugins.hook.modelstore_flavors() for f in names or ()]
        modules = {c.__module__.split(".")[0] for c in type(model).__mro__}
        hint = next((KNOWN_PLUGINS["module"][m] for m in modules if m in KNOWN_PLUGINS["module"]), None)
        raise UnsupportedModelError(qualified_name(model), flavors, hint)
    if not isinstance(flavor, Flavor):
        raise TypeError(f"a modelstore_serialize hook returned {type(flavor).__name__}, not Flavor")
    return flavor


def plugin_version(plugins: Plugins, flavor: Flavor) -> str | None:
    return distribution_version(flavor.plugin)


def collect_files(flavor: Flavor, directory: Path, extras: list[str | os.PathLike] | None) -> list[SourceFile]:
    """Name, hash and snapshot every file to store: the model's, then the extras (under ``extras/``)."""
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

    sources = []
    for name, path in named.items():
        signature = file_signature(path)
        sha, size = hash_file(path)
        sources.append(SourceFile(name, path, sha, size, signature))
    return sources


def expand(path: Path) -> list[tuple[str, Path]]:
    """A file as ``[(its name, path)]``; a directory as its files, named ``dir/relative/path``."""
    if path.is_dir():
        return [(f"{path.name}/{p.relative_to(path).as_posix()}", p) for p in sorted(path.rglob("*")) if p.is_file()]
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return [(path.name, path)]


def store_objects(storage: Storage, sources: list[SourceFile]) -> None:
    """Store each distinct file by content, skipping those already in the store."""
    seen = set()
    for source in sources:
        if source.sha256 in seen:
            continue
        seen.add(source.sha256)
        key = layout.object_key(source.sha256)
        existing = storage.stat(key)
        if existing is not None and existing.size == source.size:
            continue  # deduplicated: no artifact bytes written
        storage.put_file(key, source.path)
        if file_signature(source.path) != source.signature:
            storage.delete(key)  # its bytes may not match the name it was stored under
            raise SourceChangedError(f"{source.name} changed while it was being uploaded; nothing was committed")
        checkpoint("object-stored")


def commit_record(storage: Storage, domain: str, record: dict[str, Any]) -> dict[str, Any]:
    """Claim the next free version number and create its record (the commit point)."""
    version = read_latest_hint(storage, domain)[0] + 1
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
    return record


def read_latest_hint(storage: Storage, domain: str) -> tuple[int, Any]:
    """The ``latest.json`` hint (0 if absent) and its compare-and-swap token (None if absent)."""
    try:
        data, token = storage.read(layout.latest_key(domain))
    except KeyNotFoundError:
        return 0, None
    try:
        return int(json.loads(data)["version"]), token
    except (ValueError, KeyError, TypeError):
        return 0, token  # unreadable hint: readers fall back to a listing


def advance_latest(storage: Storage, domain: str, version: int) -> None:
    """Move the hint to ``version`` unless it already points at a newer one. Best effort."""
    for _ in range(MAX_CAS_ATTEMPTS):
        current, token = read_latest_hint(storage, domain)
        if current >= version:
            return
        if set_latest_hint(storage, domain, version, token):
            return


def set_latest_hint(storage: Storage, domain: str, version: int | None, token: Any) -> bool:
    key = layout.latest_key(domain)
    data = dumps({"version": version or 0})
    if token is None:
        return storage.put_if_absent(key, data)
    return storage.compare_and_swap(key, data, token)

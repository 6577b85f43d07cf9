"""An upload, from a model object (or raw files) to a committed version: the twin of :mod:`.load`.

1. **check** the arguments (:func:`what_to_store`, :func:`~.fields.recorded_fields`), before anything is written;
2. **serialize** the model into a private temporary directory (a flavor plugin), or take the raw
   files as they are (:class:`RawFiles`), or each of several models into its folder (:class:`~.parts.Parts`);
3. **stage** every file: hash it (the local backend copies it into its ``.tmp/`` in the same pass);
4. **record**: the draft of the version record (flavor, files, tags, the plugins' metadata and
   the recorded fields), checked against the record rules;
5. **commit**: hand the files and the draft to :func:`~modelstore_core.protocol.commit.commit_version`,
   which stores and commits them (a file that changed meanwhile abandons the upload there) and,
   with a signer, signs the version, its summary entry and the latest head it moves;
6. **prove**: on a local store, remember in the per-user cache the state of each object this upload
   wrote and hashed where no one else could write (:meth:`~.cache.Cache.remember_upload`), so that
   the first load on this machine need not hash it again.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CorruptRecordError, InvalidNameError, SourceChangedError, UsageError
from .fields import draft_fields, resolved_fields
from .flavor import RAW_FILES, Flavor
from .hashing import file_signature
from .jsonvalues import json_value, merge
from .names import check_file_path, check_paths_round_trip
from .parts import Parts
from .plugins import Plugins, collect_metadata, serialize
from .progress import Progress, ProgressCallback
from .protocol import commit, keys
from .protocol.liveness import Heartbeat
from .protocol.records import SCHEMA, VersionRecord, now_utc
from .protocol.validate import check_sha256
from .storage import StagedFile, Storage
from .version import Version

if TYPE_CHECKING:
    from .cache import Cache
    from .signing import Signer


@dataclass
class SourceFile:
    """A file about to be stored: its stored name, where it is now, and its size/mtime/inode before reading."""

    name: str
    path: Path
    signature: tuple[int, int, int]
    #: written by the serializer into the upload's private directory: the backend may take it
    owned: bool = False
    #: its sha256 as the serializer computed while writing it (owned files only)
    sha256: str | None = None


class RawFiles:
    """The files passed as ``ModelStore.upload(domain, files=[...])``; directories are stored recursively."""

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def flavor(self) -> Flavor:
        named = [pair for path in self.paths for pair in expand(Path(path))]
        check_paths_round_trip([name for name, _ in named])
        return Flavor(name=RAW_FILES, format=RAW_FILES, plugin="modelstore-core", files=dict(named))


class Uploader:
    """The upload path of one store.

    :param signer: returns the :class:`~.signing.Signer` of every upload (``None``: unsigned); called
        before anything is written, so a bad key fails first.
    :param before_writing: called before the first write (the proof that conditional writes hold).
    :param cache: where the proofs of what an upload wrote are kept (step 6).
    """

    def __init__(self, storage: Storage, plugins: Plugins, cache: Cache, *, signer: Callable[[], Any], before_writing: Callable[[], None]):
        self.storage, self.plugins, self.cache = storage, plugins, cache
        self._signer, self._before_writing = signer, before_writing

    def upload(
        self,
        domain: str,
        model: Any,
        extras: list[str | os.PathLike] | None = None,
        recorded: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        metadata: dict[str, Any] | None = None,
        number: int | None = None,
        claim_for: str | None = None,
    ) -> Version:
        """Serialize, stage, record and commit ``model`` (checked by :func:`what_to_store`) as the next
        version of ``domain``; ``recorded`` are the checked fields (:func:`~.fields.recorded_fields`).

        For an import: ``metadata`` goes into the record; ``number`` is the version number wished
        for (taken if free, else the next free one above it), and ``claim_for`` names what is
        imported in the claim of the number, so that a re-run of an import killed between its
        claim and its record takes its own claim up again (see :func:`~.protocol.commit.claim_version`).
        """
        signer = self._signer()  # a bad key fails here, before anything is written
        recorded = resolved_fields(self.storage, recorded or {})  # parents exist
        self._before_writing()
        record, written = upload(
            self.storage,
            self.plugins,
            domain,
            model,
            extras,
            recorded,
            options or {},
            progress,
            signer,
            metadata,
            self.cache,
            number=number,
            claim_for=claim_for,
        )
        version = Version(domain, record.version, record)
        version.bytes_written = written
        return version


def what_to_store(model: Any, files: Any, models: Any, part_options: Any) -> Any:
    """The one thing an upload stores: ``model``, the :class:`RawFiles` of ``files``, or the
    :class:`~.parts.Parts` of ``models``; :class:`UsageError` unless exactly one is given."""
    given = [name for name, value in (("model=", model), ("files=", files), ("models=", models)) if value is not None]
    if len(given) != 1:
        got = " and ".join(given) if given else "neither model= nor files= nor models="
        got = "both " + got if len(given) == 2 else "all of " + got if given else got
        raise UsageError(
            f"upload() got {got}: pass a model (upload(domain, model=clf)), raw files (upload(domain, files=[...]))"
            " or several models (upload(domain, models={'encoder': enc, 'classifier': clf}))"
        )
    if part_options is not None and models is None:
        raise UsageError("part_options= goes with models=: it gives options to some of the parts")
    if files is not None:
        return RawFiles([Path(f) for f in ([files] if isinstance(files, (str, os.PathLike)) else files)])
    if models is not None:
        return Parts(models, part_options)
    return model


def upload(
    storage: Storage,
    plugins: Plugins,
    domain: str,
    model: Any,
    extras: list[str | os.PathLike] | None,
    recorded: dict[str, Any],
    options: dict[str, Any],
    progress: ProgressCallback | None = None,
    signer: Signer | None = None,
    metadata: dict[str, Any] | None = None,
    cache: Cache | None = None,
    *,
    number: int | None = None,
    claim_for: str | None = None,
) -> tuple[VersionRecord, int]:
    """Serialize, stage and commit; returns the committed record and the artifact bytes written.

    ``recorded`` holds the checked fields the caller passed (tags, metrics, params...), combined
    with what the flavor plugin recorded (:func:`~.fields.draft_fields`: params over its
    hyperparameters, an example's signature over its own). A ``signer`` signs what the commit
    writes (see :func:`~.protocol.commit.commit_version`). ``metadata`` (an import's own
    description of the version) goes into the record over what the plugins collect; the core's
    keys still win. ``number`` and ``claim_for``: see :meth:`Uploader.upload`. With a ``cache``,
    what the upload proved of the objects it wrote is kept there for this machine's loads.
    """
    with Heartbeat() as heartbeat, _scratch(storage, heartbeat, cache) as tmp:
        if isinstance(model, RawFiles):
            flavor = model.flavor()
        elif isinstance(model, Parts):
            flavor = model.serialize(plugins, Path(tmp), options)
        else:
            flavor = serialize(plugins, model, Path(tmp), options)
        sources = collect_files(flavor, Path(tmp), extras)
        commit.checkpoint("serialized")
        staged: list[StagedFile] = []
        counter = Progress(progress, sum(source.signature[0] for source in sources))
        files = [counter.file(source.signature[0]) for source in sources]
        try:
            staged = stage_files(storage, sources, files)
            heartbeat.add(lambda: [st.keep_alive() for st in staged])
            commit.checkpoint("staged")
            draft = {
                "schema": SCHEMA,
                "domain": domain,
                "flavor": json_value(flavor.to_json()),
                "files": [{"path": src.name, "size": st.size, "sha256": st.sha256} for src, st in zip(sources, staged, strict=True)],
            }
            if isinstance(model, Parts):
                draft["parts"] = model.metadata(plugins, domain)
            single = None if isinstance(model, (RawFiles, Parts)) else model
            collected = collect_metadata(plugins, single, flavor, domain)
            draft = merge(merge(collected, json_value(metadata or {})), draft)  # core keys win
            draft.update(draft_fields(recorded, draft))
            check_draft(draft, domain)

            def sources_unchanged(placed: dict[str, bool]) -> None:
                for source, st in zip(sources, staged, strict=True):
                    if not source.owned and file_signature(source.path) != source.signature:
                        if placed.get(st.sha256):
                            storage.delete(keys.object_key(st.sha256))  # its bytes may not match its name
                        raise SourceChangedError(f"{source.name} changed while it was being uploaded; nothing was committed")

            committed = commit.commit_version(
                storage, domain, draft, staged, files, sources_unchanged, signer, heartbeat, first=number, claim_for=claim_for
            )
        finally:
            for st in staged:
                st.discard()
    if cache is not None:  # once the heartbeat stopped touching the staged files and their second names are gone
        cache.remember_upload(storage, staged)
    return committed


#: Files of one upload hashed (and on the local backend copied) at once: sha256 and file I/O
#: release the GIL, so a version of several files uses the cores.
PARALLEL_FILES = 4


@contextmanager
def _scratch(storage: Storage, heartbeat: Heartbeat, cache: Cache | None) -> Iterator[str]:
    """The upload's private directory for the serializer: the backend's scratch directory (where
    staging can take files without copying them; touched on every heartbeat, so that ``gc`` sees
    it in use), else one in the cache (:meth:`~.cache.Cache.scratch`: a killed upload's files are
    reclaimed), else a system temporary directory."""
    where = storage.scratch_dir()
    if where is None:
        with cache.scratch("upload-") if cache is not None else tempfile.TemporaryDirectory(prefix="modelstore-") as tmp:
            yield str(tmp)
        return
    # private: what the serializer writes there is hashed before anyone else could touch it
    for _ in range(3):
        try:
            where.mkdir(mode=0o700)
            break
        except FileNotFoundError:  # a concurrent first upload that failed removed the empty store it made: again
            where = storage.scratch_dir()
    else:
        where.mkdir(mode=0o700)
    heartbeat.add(lambda: os.utime(where))
    try:
        yield str(where)
    finally:
        storage.drop_scratch(where)


def stage_files(storage: Storage, sources: list[SourceFile], files: list) -> list[StagedFile]:
    """Stage every source file, several at once; on any failure, what was staged is discarded."""
    if len(sources) < 2:
        return [
            storage.stage_file(source.path, progress=file, owned=source.owned, sha256=source.sha256)
            for source, file in zip(sources, files, strict=True)
        ]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(PARALLEL_FILES, len(sources))) as pool:
        futures = [
            pool.submit(storage.stage_file, source.path, progress=file, owned=source.owned, sha256=source.sha256)
            for source, file in zip(sources, files, strict=True)
        ]
    staged, error = [], None
    for future in futures:
        try:
            staged.append(future.result())
        except BaseException as exc:  # noqa: BLE001 - re-raised below, once the others are discarded
            error = error or exc
    if error is not None:
        for st in staged:
            st.discard()
        raise error
    return staged


def check_draft(draft: dict[str, Any], domain: str) -> None:
    """The record about to be committed reads back: a plugin's metadata that breaks the record
    rules (a ``metrics`` key holding a string...) fails here, before anything is committed."""
    try:
        VersionRecord.from_document({**draft, "version": 1, "created": now_utc()}, "the new version record", domain, 1)
    except CorruptRecordError as exc:
        raise TypeError(
            f"the metadata of this upload breaks the version record rules ({exc.field} {exc.problem}); nothing was"
            " committed: a plugin's modelstore_collect_metadata returned it, and only the core writes that key"
        ) from None


def collect_files(flavor: Flavor, directory: Path, extras: list[str | os.PathLike] | None) -> list[SourceFile]:
    """Name and snapshot every file to store: the model's, then the extras (under ``extras/``)."""
    named: list[tuple[str, Path]] = []
    if flavor.files:
        named.extend((name, Path(path)) for name, path in flavor.files.items())
    else:
        named.extend((path.relative_to(directory).as_posix(), path) for path in sorted(directory.rglob("*")) if path.is_file())
    if not named:
        raise InvalidNameError(f"the {flavor.name!r} serializer wrote no files")
    for extra in extras or ():
        named.extend((f"extras/{name}", path) for name, path in expand(Path(extra)))
    for name, _ in named:
        check_file_path(name)
    check_paths_round_trip([name for name, _ in named])
    bad = [name for name, digest in flavor.digests.items() if not check_sha256(digest)]
    if bad:
        raise TypeError(f"the {flavor.name!r} serializer gave digests that are not sha256 hex for {bad}")
    own = {path for _, path in named if not flavor.files and path.is_relative_to(directory)}
    return [
        SourceFile(name, path, file_signature(path), path in own, flavor.digests.get(name) if path in own else None) for name, path in named
    ]


def expand(path: Path) -> list[tuple[str, Path]]:
    """A file as ``[(its name, path)]``; a directory as its files, named ``dir/relative/path``.

    Only what can be loaded back as it was is taken: regular files, and inside a directory links
    to files in that same directory (stored as the file they point to). A link that leads out of
    the directory, a link to a directory, a FIFO, a socket or a device is refused, naming it. A
    path given directly may be a link (the caller named it).
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    if stat.S_ISDIR(mode):
        return _directory_files(path)
    if not stat.S_ISREG(mode):
        raise InvalidNameError(f"{path} is {_kind(mode)}, not a regular file: only regular files can be stored")
    return [(path.name, path)]


def _directory_files(top: Path) -> list[tuple[str, Path]]:
    root = os.path.realpath(top)
    found = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        for name in dirnames:
            if (Path(dirpath) / name).is_symlink():
                raise InvalidNameError(
                    f"{Path(dirpath) / name} is a link to a directory: links to directories are not followed;"
                    " upload the directory it points to instead"
                )
        for name in filenames:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                real = os.path.realpath(path)
                if os.path.commonpath([root, real]) != root:
                    raise InvalidNameError(
                        f"{path} links to {real}, outside {top}: only links within the uploaded directory are"
                        " followed; copy the file in, or upload it separately"
                    )
                try:
                    mode = path.stat().st_mode
                except FileNotFoundError:
                    raise InvalidNameError(f"{path} is a broken link (it points to {real}, which does not exist)") from None
            if not stat.S_ISREG(mode):
                raise InvalidNameError(f"{path} is {_kind(mode)}, not a regular file: only regular files can be stored")
            found.append((f"{top.name}/{path.relative_to(top).as_posix()}", path))
    return sorted(found)


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a directory"),
    )
    for test, kind in kinds:
        if test(mode):
            return kind
    return "not a regular file"

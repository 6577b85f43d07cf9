"""Pushing versions out of a store and pulling them back in: the place they go is a transport's.

A transport plugin (``modelstore_transport``; ``modelstore-oci`` for OCI registries) moves the
bytes; the core decides what a version is on the way out and what may come in:

**push** (:func:`push`): 1. resolve which version ``version``/``state``/latest names and read its
record (the bytes as stored); 2. check it may leave, as a download is checked (the trust
policy); 3. view its files in the per-user cache, each verified as the transport reads it;
4. hand the version (record, files, signature documents) to :meth:`Transport.push`.

**pull** (:func:`pull`): 1. let :meth:`Transport.pull` fetch the artifact, verified, into a scratch
directory; 2. check what came: a version record that reads back, files that are exactly those it
lists, and signatures that satisfy the trust policy, before anything is written; 3. commit it
(:func:`~modelstore_core.protocol.commit.commit_pulled`): under its own domain and number when the
number is free there (its record otherwise as pushed, so its signatures still hold, and they are
committed beside it), else as the next version of the domain, whose signatures then no longer hold
and are left out. An artifact without a modelstore record (pushed by another tool) becomes a
raw-files version. Either way the record says where it came from (``pulled_from``).
"""

from __future__ import annotations

import abc
import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CorruptRecordError, IntegrityError, InvalidNameError, KeyNotFoundError, SigningUnavailableError, UsageError
from .flavor import RAW_FILES, Flavor
from .names import check_name, check_paths_round_trip
from .progress import Progress, ProgressCallback
from .protocol import commit, keys
from .protocol.records import SignatureDocument, VersionRecord, dumps
from .protocol.validate import load_json
from .upload import RawFiles
from .version import Version

if TYPE_CHECKING:
    from .cache import Cache, VersionFiles
    from .load import Loader
    from .signing import TrustPolicy
    from .storage import Storage
    from .upload import Uploader

#: The key of a pulled version's record that says where it came from.
PULLED_FROM = "pulled_from"


# --- what a transport is handed, and what it hands back --------------------------------------------


@dataclass
class Outgoing:
    """A version on its way out of a store, as :meth:`Transport.push` receives it."""

    #: the version record, validated
    record: VersionRecord
    #: the record's bytes as stored (what a pull must give back for the version to be the same)
    data: bytes
    #: the version's files in the per-user cache, read only through ``files.open(name)`` (verified as it
    #: is read: the read that reaches the end raises ``IntegrityError`` for a damaged file) or
    #: ``files.path(name)`` (verified first), so that nothing damaged leaves the store; a file read
    #: before and unchanged since is not hashed again
    files: VersionFiles
    #: each signature document of the version, as stored (``domains/<d>/signatures/<n>/<keyid>.json``)
    signatures: list[bytes]
    #: a directory of this user's cache for what a transport remembers between runs (digests...)
    cache_dir: Path


@dataclass(frozen=True)
class IncomingFile:
    """One file a pull fetched: its name in the version, where it lies now (in the scratch
    directory), and its size and sha256 as the transport computed them while writing it."""

    name: str
    path: Path
    size: int
    sha256: str


@dataclass
class Incoming:
    """What :meth:`Transport.pull` fetched, every byte verified against what the source claims."""

    #: the source, pinned to what was fetched (``oci://host/repo@sha256:…``), without credentials
    ref: str
    files: list[IncomingFile]
    #: the modelstore version record as pushed; ``None`` for an artifact another tool made (raw files)
    record: bytes | None = None
    #: signature documents that came with it (checked by the core, never trusted on their own)
    signatures: list[bytes] = field(default_factory=list)
    #: for an artifact without a record: what it says about itself, recorded in the version's metadata
    metadata: dict[str, Any] = field(default_factory=dict)
    #: the domain to pull a recordless artifact into when the caller names none (a repository's name)
    suggested_domain: str | None = None


class Transport(abc.ABC):
    """Where versions are pushed to and pulled from, outside any store (an OCI registry's
    repository and tag). A plugin's ``modelstore_transport`` returns one for a reference."""

    #: The reference, without credentials (it is printed).
    url: str = ""

    @abc.abstractmethod
    def push(self, version: Outgoing, progress: ProgressCallback | None = None) -> str:
        """Send ``version``, its files and its signatures; return what names it there now (a digest).

        Send only what the destination lacks, and read the files through ``version.files``."""

    @abc.abstractmethod
    def pull(self, scratch: Path, progress: ProgressCallback | None = None) -> Incoming:
        """Fetch the artifact into ``scratch`` (an empty private directory: the core stores the files
        from there and deletes it), verifying every byte against what the source claims (digests).
        Raise :class:`~modelstore_core.errors.ModelStoreError` for anything that does not check out."""

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- push ------------------------------------------------------------------------------------------


def push(
    loader: Loader, transport: Transport, domain: str, version: int | None, state: str | None, progress: ProgressCallback | None
) -> str:
    """Resolve, read, check, view, hand over (:meth:`ModelStore.push <modelstore_core.ModelStore.push>`)."""
    storage = loader.storage
    v = loader.info(domain, version, state)
    key = keys.version_key(v.domain, v.version)
    data = storage.read(key)[0]  # the bytes as stored: a pull gives them back
    record = VersionRecord.parse(data, key, v.domain, v.version)
    loader.check_trust(record)
    files = loader.view(record)
    outgoing = Outgoing(record, data, files, signature_documents(storage, record), loader.cache.root / "transports")
    try:
        return transport.push(outgoing, progress)
    finally:
        files.save_proof()  # what the transport read is proven: the next push need not hash it


def signature_documents(storage: Storage, record: VersionRecord) -> list[bytes]:
    """The version's signature documents as stored; one that does not read back is left behind, with a warning."""
    from .signing import list_signers  # imports no cryptography

    found = []
    for signer in list_signers(storage, record.domain, record.version):
        key = keys.signature_key(record.domain, record.version, signer)
        try:
            data = storage.read(key)[0]
            SignatureDocument.parse(data, key, record.domain, record.version, signer)
        except KeyNotFoundError:
            continue
        except CorruptRecordError as exc:
            warnings.warn(f"{exc}; this signature is not pushed", RuntimeWarning, stacklevel=4)
            continue
        found.append(data)
    return found


# --- pull ------------------------------------------------------------------------------------------


class PulledFiles(RawFiles):
    """The files of an artifact another tool made, under the names it gives them: a raw-files upload."""

    def __init__(self, files: list[IncomingFile]):
        self.files = files

    def flavor(self) -> Flavor:
        check_paths_round_trip([f.name for f in self.files])
        return Flavor(name=RAW_FILES, format=RAW_FILES, plugin="modelstore-core", files={f.name: f.path for f in self.files})


@contextmanager
def scratch_directory(storage: Storage, cache: Cache) -> Iterator[Path]:
    """Where a pull's files land: the backend's scratch directory (a local store then takes them by
    a rename), else one in the cache (:meth:`~.cache.Cache.scratch`)."""
    where = storage.scratch_dir()
    if where is None:
        with cache.scratch("pull-") as tmp:
            yield tmp
        return
    where.mkdir(parents=True)
    try:
        yield where
    finally:
        storage.drop_scratch(where)


def pull(
    uploader: Uploader,
    transport: Transport,
    domain: str | None,
    policy: TrustPolicy | None,
    progress: ProgressCallback | None,
    before_writing: Callable[[], None],
) -> Version:
    """Fetch, check, commit (:meth:`ModelStore.pull <modelstore_core.ModelStore.pull>`)."""
    storage = uploader.storage
    with scratch_directory(storage, uploader.cache) as scratch:
        incoming = transport.pull(scratch, progress)
        if incoming.record is None:
            target = domain if domain is not None else incoming.suggested_domain
            if target is None:
                raise UsageError(f"{incoming.ref} holds no modelstore version: name the domain to pull it into")
            check_name(target, "domain name")
            metadata = {**incoming.metadata, PULLED_FROM: {"ref": incoming.ref}}
            return uploader.upload(target, PulledFiles(incoming.files), metadata=metadata)
        record, signatures = check_incoming(incoming, policy)
        return commit_incoming(storage, incoming, record, signatures, domain, policy is not None, before_writing, progress)


def check_incoming(incoming: Incoming, policy: TrustPolicy | None) -> tuple[VersionRecord, list[tuple[SignatureDocument, bytes]]]:
    """The record as pushed, validated; the files exactly those it lists; the signature documents
    that read back and hold (each for the key it names, when the ``signing`` extra is there to
    check); and, with a trust policy, signed as it requires. Raises before anything is written."""
    try:
        doc = load_json(incoming.record, "record")
        if not isinstance(doc, dict) or not isinstance(doc.get("domain"), str) or not isinstance(doc.get("version"), int):
            raise CorruptRecordError("record", None, "does not name its domain and version")
        record = VersionRecord.from_document(doc, "record", check_name(doc["domain"], "domain name"), doc["version"])
    except (CorruptRecordError, InvalidNameError) as exc:
        problem = f"{exc.field} {exc.problem}" if isinstance(exc, CorruptRecordError) and exc.field else getattr(exc, "problem", str(exc))
        raise IntegrityError(f"the version record of {incoming.ref}", "", "", f"{problem}; nothing was pulled") from None
    listed = sorted((f.path, f.size, f.sha256) for f in record.files)
    fetched = sorted((f.name, f.size, f.sha256) for f in incoming.files)
    if listed != fetched:
        differ = sorted({entry[0] for entry in listed} ^ {entry[0] for entry in fetched}) or [
            a[0] for a, b in zip(listed, fetched, strict=True) if a != b
        ]
        raise IntegrityError(
            f"the version record of {incoming.ref}",
            "",
            "",
            f"its files differ from those fetched ({', '.join(differ[:5])}); nothing was pulled",
        )
    signatures: list[tuple[SignatureDocument, bytes]] = []
    for data in incoming.signatures:
        try:
            parsed = load_json(data, "a signature document")
            keyid = parsed.get("keyid") if isinstance(parsed, dict) else None
            doc_ = SignatureDocument.parse(data, f"a signature of {incoming.ref}", record.domain, record.version, str(keyid))
        except CorruptRecordError as exc:
            warnings.warn(f"{exc}; left out", RuntimeWarning, stacklevel=4)
            continue
        problem = _problem(doc_, record)
        if problem:
            warnings.warn(
                f"a signature by {doc_.keyid} that came with {incoming.ref} does not hold ({problem}); left out",
                RuntimeWarning,
                stacklevel=4,
            )
            continue
        signatures.append((doc_, data))
    if policy is not None:
        policy.check_documents(record, {doc_.keyid: doc_ for doc_, _ in signatures})
    return record, signatures


def _problem(doc: SignatureDocument, record: VersionRecord) -> str:
    """What is wrong with ``doc`` for ``record`` by the key it names ("" when it holds, or when there is nothing to check with)."""
    from .signing import check_own_key

    try:
        return check_own_key(doc, record)
    except SigningUnavailableError:
        return ""  # kept as it came: a reader with a trust policy checks it


def commit_incoming(
    storage: Storage,
    incoming: Incoming,
    record: VersionRecord,
    signatures: list[tuple[SignatureDocument, bytes]],
    domain: str | None,
    under_policy: bool,
    before_writing: Callable[[], None],
    progress: ProgressCallback | None,
) -> Version:
    """Commit a checked version: already there (the same record, wherever it was pulled from) is
    returned as it is; under its own number when that is free in its own domain, with its signatures;
    else renumbered, without them (refused under a trust policy, which could never load it)."""
    target = check_name(domain, "domain name") if domain is not None else record.domain
    origin = {"ref": incoming.ref, "domain": record.domain, "version": record.version}
    document = {**record.document, PULLED_FROM: origin}
    key = keys.version_key(target, record.version)
    if target == record.domain:
        try:
            existing = storage.read(key)[0]
        except KeyNotFoundError:
            existing = None
        if existing is not None and _same_version(existing, record.document):
            return Version(target, record.version, VersionRecord.parse(existing, key, target, record.version))
    keep = target == record.domain and storage.stat(keys.claim_key(target, record.version)) is None
    if not keep and under_policy:
        where = (
            f"version {record.version} of {target!r} is taken in this store, so {incoming.ref} would be pulled under another number"
            if target == record.domain
            else f"{incoming.ref} is version {record.version} of {record.domain!r}: pulled into {target!r}, it would be another version"
        )
        raise UsageError(
            f"{where}, where its signatures no longer hold and the trust policy could never load it; nothing was pulled."
            " Pull it into its own domain, in a store where its number is free"
        )
    renumbered = {name: value for name, value in document.items() if name not in ("version", "created")}
    renumbered["domain"] = target
    before_writing()
    counter = Progress(progress, sum(f.size for f in incoming.files))
    staged = [storage.stage_file(f.path, owned=True, sha256=f.sha256) for f in incoming.files]
    try:
        committed, kept = commit.commit_pulled(
            storage,
            target,
            record.version if keep else None,
            dumps(document),
            renumbered,
            staged,
            [counter.file(f.size) for f in incoming.files],
            lambda committed: _put_signatures(storage, signatures),
            allow_renumber=not under_policy,
        )
    finally:
        for st in staged:
            st.discard()
    if not kept and signatures:
        warnings.warn(
            f"{incoming.ref} was pulled as version {committed.version} of {target!r}, not as version {record.version} of"
            f" {record.domain!r}: its {len(signatures)} signature(s) no longer hold and were left out",
            RuntimeWarning,
            stacklevel=4,
        )
    return Version(target, committed.version, committed)


def _put_signatures(storage: Storage, signatures: list[tuple[SignatureDocument, bytes]]) -> None:
    """Store the signatures of a version pulled under its own number, as they came (they hold for it)."""
    for doc, data in signatures:
        commit.put_signature(storage, doc, data, replaces=lambda existing: True)


def _same_version(stored: bytes, pushed: dict[str, Any]) -> bool:
    """Whether the record ``stored`` here is the version ``pushed`` (where either was pulled from aside)."""
    try:
        doc = json.loads(stored)
    except (ValueError, RecursionError):
        return False
    drop = lambda d: {k: v for k, v in d.items() if k != PULLED_FROM}  # noqa: E731
    return isinstance(doc, dict) and drop(doc) == drop(pushed)

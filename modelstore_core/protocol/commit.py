"""The write path: committing a version, the latest hint, states and deletion.

An upload (:mod:`modelstore_core.upload`) serializes the model and stages its files (hashed,
and on the local backend already copied); :func:`commit_version` then:

1. writes ``uploads/<id>.json`` listing the objects it is about to store, so that
   :func:`~modelstore_core.protocol.gc.collect_garbage` leaves them alone (re-written every heartbeat while
   the upload runs, and left for ``gc`` to remove a grace after it: :mod:`.liveness`);
2. places each object under its sha256 unless it already exists (deduplication), then checks
   that every one is there (:func:`ensure_objects`: a ``gc`` run may have deleted one it found);
3. claims the next free version number with create-if-absent (``claims/<n>``): concurrent
   uploaders each get their own number, none is ever overwritten or reused;
4. creates the version record ``versions/<n>.json``: the commit point. Before it the version is
   invisible; after it, complete; with a signer, its signature goes beside it right away
   (``signatures/<n>/<keyid>.json``; a reader with a trust policy refuses it until then);
5. adds the version to the domain's summary (compare-and-swap; :mod:`.summary`; with a signer,
   the entry signed), appends its ``uploaded`` event to the change feed (:mod:`.feed`: the claim
   of step 3 recorded where the feed ended, so that anyone can append it if this process dies
   first, and it is never there twice), moves the ``latest.json`` hint forward (compare-and-swap;
   with a signer, the signed head in it too: :mod:`modelstore_core.pointers`; and the claims whose
   events are in the feed).

A crash before step 4 leaves only unreferenced objects and a marker, which ``gc`` reclaims; a
crash after it leaves a complete version (readers trust neither the hint nor the summary blindly).

A copy from another store (:mod:`modelstore_core.replicate`) commits the same way under the
source's number (:func:`commit_copy`); a version pulled from outside any store
(:mod:`modelstore_core.transport`) under its own number when it is free, else under the next one
(:func:`commit_pulled`); signatures are written by :func:`put_signature`.

States, deletes and the hint take an optional ``signer`` (:class:`~modelstore_core.signing.Signer`):
what it changes, it signs (:mod:`modelstore_core.pointers` says what readers make of it). Every
change goes into the change feed (:mod:`.feed`): a state move's events are written into
``states.json`` with it, and appended after.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import (
    ConflictError,
    CorruptRecordError,
    DomainNotFoundError,
    KeyNotFoundError,
    StateNotFoundError,
    StorageError,
    VersionNotFoundError,
)
from ..progress import FileProgress
from ..storage import StagedFile, Storage, Token
from . import feed, keys, limits, summary
from .cas import cas_update
from .limits import check_record_size, read_capped
from .liveness import HOST, Heartbeat
from .read import domain_exists, latest, list_versions, not_found, read_latest_hint, read_record
from .records import (
    GCRunDocument,
    LatestDocument,
    SignatureDocument,
    SignedPointer,
    StateEntry,
    StatesDocument,
    UploadMarker,
    VersionRecord,
    dumps,
    now_utc,
)

if TYPE_CHECKING:
    from ..signing import Signer


def checkpoint(name: str) -> None:
    """No-op marker of each step; crash tests replace it to kill the process at a named point."""


@dataclass
class Marker:
    """An upload's marker, as :func:`upload_in_progress` wrote it."""

    key: str
    #: ``time.monotonic()`` once the store had it (the start of :func:`ensure_objects`'s wait)
    written: float
    #: set by the upload once its record exists: the marker then says which version it committed
    version: int | None = None


@contextmanager
def upload_in_progress(storage: Storage, domain: str, objects: tuple[str, ...], heartbeat: Heartbeat | None = None) -> Iterator[Marker]:
    """An upload marker listing ``objects`` (sha256), written now and re-written on every beat of
    ``heartbeat`` (one of its own when none is given) while the block runs, so that ``gc`` leaves
    them alone (:mod:`.liveness`). When the block ends, the marker stays: naming the version the
    upload committed (set ``marker.version``), so that a ``gc`` run that stalled meanwhile reads its
    record; otherwise as it was, to die a grace after its last heartbeat. ``gc`` removes it then."""
    marker = keys.upload_key(os.urandom(16).hex())
    own = heartbeat is None
    beat = Heartbeat() if own else heartbeat
    doc = UploadMarker(domain, now_utc(), HOST, os.getpid(), objects, beat.interval)
    data = dumps(doc.to_json())
    check_record_size(data, "the upload's marker (a sha256 for each of its files)")
    storage.put_if_absent(marker, data)  # a new, random key: one request on every backend
    written = time.monotonic()
    lock, beating = threading.Lock(), [True]

    def refresh() -> None:
        with lock:
            if beating[0]:
                storage.refresh(marker, data)

    beat.add(refresh)
    handle = Marker(marker, written)
    try:
        with beat if own else nullcontext():
            yield handle
    finally:
        with lock:
            beating[0] = False
    if handle.version is not None:
        storage.put(marker, io.BytesIO(dumps(replace(doc, version=handle.version).to_json())))


def ensure_objects(storage: Storage, marker: Marker, objects: tuple[str, ...], restore: Callable[[list[str]], None]) -> None:
    """Before the commit: check that every object of the version is in the store, and ``restore``
    the missing ones (from the bytes the upload still holds).

    A ``gc`` run deletes an object only while a listing of the upload markers, at most its
    ``window`` seconds old, shows no marker protecting it (:func:`~modelstore_core.protocol.gc.collect_garbage`).
    A run that listed the markers before this upload's marker existed may have deleted an object
    this upload found in the store (deduplication) after it looked. Such a run's deletes happen
    within ``window`` of that listing, so within ``window`` of this marker's write: with a run in
    progress (``gc/``), this waits until then; without one, every run that could have deleted an
    object has ended, and a ``stat`` sees what it deleted. Any run that starts later lists this
    marker (live: kept fresh, and kept a grace after the upload). One listing and a ``stat`` per object.
    """
    runs = read_gc_runs(storage)
    if runs:
        wait = max(run.window for run in runs) - (time.monotonic() - marker.written)
        if wait > 0:
            time.sleep(wait)
    missing = [sha for sha in objects if storage.stat(keys.object_key(sha)) is None]
    if missing:
        restore(missing)
        checkpoint("objects-restored")


def read_gc_runs(storage: Storage) -> list[GCRunDocument]:
    """The ``gc`` runs in progress (a document that cannot be read counts, with a window of 5 seconds)."""
    runs = []
    for info in storage.list(keys.GC_RUNS):
        try:
            runs.append(GCRunDocument.parse(read_capped(storage, info.key, limits.SMALL_BYTES, "a gc run's document")[0], info.key))
        except KeyNotFoundError:
            continue  # ended meanwhile
        except CorruptRecordError:
            runs.append(GCRunDocument("", "", 5.0, 5.0, False))
    return runs


def commit_version(
    storage: Storage,
    domain: str,
    draft: dict[str, Any],
    staged: list[StagedFile],
    progress: list[FileProgress],
    before_claim: Callable[[dict[str, bool]], None],
    signer: Signer | None = None,
    heartbeat: Heartbeat | None = None,
    *,
    first: int | None = None,
    claim_for: str | None = None,
) -> tuple[VersionRecord, int]:
    """Store the staged files and commit ``draft`` (a record without version and time) as the next
    version of ``domain`` (an import: the lowest free number from ``first``, a claim made for
    ``claim_for`` taken up again; see :func:`claim_version`).

    ``before_claim(placed)`` runs once the objects are stored (``placed``: sha256 -> whether this
    upload wrote it) and may raise to abandon the upload. With a ``signer``, the version is signed
    once the record exists, its summary entry is signed, and the signed head in the latest hint
    moves to it. ``heartbeat`` (the upload's) keeps the marker fresh. Returns the committed record
    and the bytes of objects that were new to the store.
    """
    objects = tuple(sorted({st.sha256 for st in staged}))
    with upload_in_progress(storage, domain, objects, heartbeat) as marker:
        checkpoint("marker-written")
        placed = place_objects(staged, progress)
        checkpoint("objects-stored")
        before_claim(placed)
        _ensure_staged(storage, marker, staged)  # before the record: it never names a missing object
        record, hint, change = create_record(storage, domain, draft, first, claim_for, marker=marker.key)
        marker.version = record.version
        checkpoint("committed")
        if signer is not None:
            signer.sign_version(storage, record)
            checkpoint("signed")
        summary.add_entry(storage, record, len(dumps(record.document)), signer)
        checkpoint("summarized")
        seq = feed.append(storage, change) if change is not None else 0
        checkpoint("evented")
        advance_latest(
            storage, domain, record.version, hint, repair=LatestDocument.parse(hint[0]).hint, signer=signer, record=record,
            evented={record.version}, seq=seq,
        )  # fmt: skip
        checkpoint("latest-updated")
    sizes = {st.sha256: st.size for st in staged}
    return record, sum(sizes[sha] for sha, wrote in placed.items() if wrote)


def _ensure_staged(storage: Storage, marker: Marker, staged: list[StagedFile]) -> None:
    """:func:`ensure_objects` for an upload's staged files, each placed again if a ``gc`` run took it."""

    def restore(missing: list[str]) -> None:
        for st in staged:
            if st.sha256 in missing:
                missing.remove(st.sha256)
                st.place(keys.object_key(st.sha256))

    ensure_objects(storage, marker, tuple(sorted({st.sha256 for st in staged})), restore)


def commit_copy(storage: Storage, domain: str, version: int, data: bytes, after: int, marker: str | None = None) -> tuple[str | None, Any]:
    """Commit ``data``, a version record copied byte for byte from another store (its objects stored
    already, under the upload marker ``marker``), as version ``version`` of ``domain``: claim the
    number for this record (recording ``after``, a slot of the feed taken before), create the record
    (the commit point), add it to the summary. The ``copied`` event and the latest hint are the
    caller's to write.

    Returns ``(None, change)`` once the version is there (committed now, or by an earlier run of the
    same copy: a claim names the sha256 of the record it is for, so a rerun takes its own claim up
    again), ``change`` being what its event must say (:func:`~.feed.append`); else ``(why it was not:
    the number is someone else's, None)``.
    """
    claim = claim_document(copy_of=data, feed=feed.claim_feed(after, marker))
    if not storage.put_if_absent(keys.claim_key(domain, version), claim):
        claim = claimed_for(storage, domain, version, data)
        if claim is None:
            return "the number was taken in the destination while copying", None
    checkpoint("copy-claimed")
    key = keys.version_key(domain, version)
    if not storage.put_if_absent(key, data) and read_capped(storage, key, limits.RECORD_BYTES, "a version record")[0] != data:
        return "a different version appeared in the destination while copying", None
    checkpoint("copy-committed")
    summary.add_entry(storage, VersionRecord.parse(data, key, domain, version), len(data))
    return None, claim_change(domain, version, claim)


def claim_change(domain: str, version: int, claim: bytes) -> Any:
    """What the event of the version committed under ``claim`` says (``None`` for a claim from before
    the feed, or one whose feed part cannot be read: ``verify`` is where a damaged claim shows)."""
    try:
        found = feed.read_claim(claim, keys.claim_key(domain, version))
    except CorruptRecordError:
        return None
    return None if found is None else feed.upload_change(domain, version, claim, found[0], found[2])


def commit_pulled(
    storage: Storage,
    domain: str,
    number: int | None,
    data: bytes,
    renumbered: dict[str, Any],
    staged: list[StagedFile],
    progress: list[FileProgress],
    after_commit: Callable[[VersionRecord], None],
    *,
    allow_renumber: bool = True,
) -> tuple[VersionRecord, bool]:
    """Commit a version that came from outside the store (a pull), its files staged: as version
    ``number`` with the record ``data`` (:func:`commit_copy`, then ``after_commit(record)``, which
    stores its signatures) when ``number`` is given and still free in ``domain``; else as the next
    version, from ``renumbered`` (a record draft, as :func:`commit_version` takes). Returns the
    committed record and whether it kept ``number``. A number taken meanwhile raises
    :class:`ConflictError` when ``allow_renumber`` is false (nothing is committed). Its event in the
    change feed: ``copied`` under its own number (the claim names the record, as a copy's does),
    ``uploaded`` under the next one.
    """
    with upload_in_progress(storage, domain, tuple(sorted({st.sha256 for st in staged}))) as marker:
        checkpoint("marker-written")
        place_objects(staged, progress)
        checkpoint("objects-stored")
        _ensure_staged(storage, marker, staged)
        if number is not None:
            after = feed.tail(storage, feed.domain_seq(storage, domain))  # its event comes after
            conflict, change = commit_copy(storage, domain, number, data, after, marker.key)
            if conflict is None:
                marker.version = number
                record = VersionRecord.parse(data, keys.version_key(domain, number), domain, number)
                after_commit(record)
                checkpoint("signed")
                seq = feed.append(storage, change) if change is not None else 0
                checkpoint("evented")
                advance_latest(storage, domain, number, evented={number} if change is not None else set(), seq=seq)
                return record, True
            if not allow_renumber:
                raise ConflictError(f"version {number} of {domain!r}: {conflict}; nothing was committed")
        record, hint, change = create_record(storage, domain, renumbered, marker=marker.key)
        marker.version = record.version
        checkpoint("committed")
        summary.add_entry(storage, record, len(dumps(record.document)))
        seq = feed.append(storage, change) if change is not None else 0
        checkpoint("evented")
        advance_latest(storage, domain, record.version, hint, repair=LatestDocument.parse(hint[0]).hint, evented={record.version}, seq=seq)
    return record, False


def claim_document(copy_of: bytes | None = None, feed: dict[str, Any] | None = None, claim_for: str | None = None) -> bytes:
    """What a claim of a version number holds: when and by whom, for a copy the sha256 of its record,
    for an import what it imports (``for``), and where the change feed ended before it
    (:func:`~.feed.claim_feed`: its event comes later)."""
    doc: dict[str, Any] = {"claimed": now_utc(), "host": HOST, "pid": os.getpid()}
    if copy_of is not None:
        doc["copy_of"] = hashlib.sha256(copy_of).hexdigest()
    if claim_for is not None:
        doc["for"] = claim_for
    if feed is not None:
        doc["feed"] = feed
    return dumps(doc)


def claimed_for(storage: Storage, domain: str, version: int, record: bytes) -> bytes | None:
    """The claim on ``version`` when it was made by a copy of this very record (:func:`commit_copy`), else ``None``."""
    try:
        data = read_capped(storage, keys.claim_key(domain, version), limits.SMALL_BYTES, "a claim")[0]
        doc = json.loads(data)
    except (KeyNotFoundError, CorruptRecordError, ValueError, RecursionError):
        return None
    return data if isinstance(doc, dict) and doc.get("copy_of") == hashlib.sha256(record).hexdigest() else None


def place_objects(staged: list[StagedFile], progress: list[FileProgress]) -> dict[str, bool]:
    """Make each distinct file visible under its sha256; ``{sha256: written by this call}``."""
    placed: dict[str, bool] = {}
    for st, file in zip(staged, progress, strict=True):
        if st.sha256 not in placed:
            placed[st.sha256] = st.place(keys.object_key(st.sha256), progress=file)
            checkpoint("object-stored")
        file.finish()
    return placed


def create_record(
    storage: Storage,
    domain: str,
    draft: dict[str, Any],
    first: int | None = None,
    claim_for: str | None = None,
    *,
    marker: str | None = None,
    events: bool = True,
) -> tuple[VersionRecord, tuple[bytes | None, Token], Any]:
    """Claim the next free version number (from ``first``, else just past the latest hint) and
    create its record: the commit point. ``claim_for``: see :func:`claim_version`.

    Also returns the hint document as read before claiming, with its token, so that moving the
    hint forward usually needs no second read; and what the version's ``uploaded`` event says
    (:func:`~.feed.append` puts it in the feed). Its claim records where the feed ended before it,
    and ``marker``, the upload's marker (so that whoever finds the version without its event can
    append it: :func:`~.feed.settle_uploads`). Without ``events``, the claim records neither: the
    version is taken as from before the feed (a test helper's bulk history).
    """
    check_record_size(dumps({**draft, "version": keys.MAX_VERSION, "created": now_utc()}))  # before a number is claimed
    hint, data, token = read_latest_hint(storage, domain)
    after = feed.tail(storage, LatestDocument.parse(data).feed_seq) if events else 0
    claim = claim_document(feed=feed.claim_feed(after, marker) if events else None, claim_for=claim_for)
    version, claim = claim_version(storage, domain, first if first is not None else hint + 1, claim, claim_for)
    checkpoint("claimed")
    document = {**draft, "version": version, "created": now_utc()}
    key = keys.version_key(domain, version)
    if not storage.put_if_absent(key, dumps(document)):
        raise StorageError(f"version {version} of {domain!r} exists although this upload claimed it")
    change = claim_change(domain, version, claim) if events else None  # what the claim stored says (an import's taken up)
    return VersionRecord.from_document(document, key, domain, version), (data, token), change


#: Lost claims in a row before the claimer lists the claims to jump past them (one listing
#: instead of one request per number, e.g. after a hint that lags far behind).
CLAIM_ATTEMPTS_BEFORE_LISTING = 8


def _claimed_by_import(storage: Storage, domain: str, version: int, claim_for: str) -> bytes | None:
    """The claim of ``version`` when it is claimed for ``claim_for`` and has no record yet, else ``None``."""
    try:
        data = storage.read(keys.claim_key(domain, version))[0]
        doc = json.loads(data)
    except (KeyNotFoundError, ValueError, RecursionError):
        return None
    if isinstance(doc, dict) and doc.get("for") == claim_for and storage.stat(keys.version_key(domain, version)) is None:
        return data
    return None


def _is_number(name: str) -> bool:
    return len(name) == keys.VERSION_DIGITS and name.isdigit()


def claim_version(storage: Storage, domain: str, start: int, claim: bytes | None = None, claim_for: str | None = None) -> tuple[int, bytes]:
    """Claim the lowest free version number from ``start`` (create-if-absent of ``claims/<n>``
    holding ``claim``, by default a :func:`claim_document` without feed); returns the number and
    the claim it holds.

    With ``claim_for`` (an import names what it imports; ``claim`` records it too), a claim of
    ``start`` that already names it, with no record under the number, is taken up again: what an
    import killed between its claim and its record left (run one import at a time per target).
    Its claim is then the one stored (its version's event is the one that claim says).
    """
    claim = claim if claim is not None else claim_document(claim_for=claim_for)
    version, listed = max(start, 1), False
    wished = version
    for attempt in range(10_000):
        if version > keys.MAX_VERSION:
            if listed:
                raise ConflictError(f"domain {domain!r} has no version number left below {keys.MAX_VERSION + 1}")
            version = 0  # the hint led us here: find the real last claim
        elif storage.put_if_absent(keys.claim_key(domain, version), claim):
            return version, claim
        elif version == wished and claim_for is not None and (earlier := _claimed_by_import(storage, domain, version, claim_for)):
            return version, earlier
        if version == 0 or (attempt >= CLAIM_ATTEMPTS_BEFORE_LISTING and not listed):
            listed = True
            last = max(
                (int(n) for info in storage.list(keys.claims_prefix(domain)) if _is_number(n := info.key.rsplit("/", 1)[-1])),
                default=0,
            )
            version = max(version, last) + 1
        else:
            version += 1  # taken by a concurrent (or crashed) uploader
    raise ConflictError(f"could not claim a version number in domain {domain!r}; concurrent writers kept taking them")


# --- the latest hint and the signed head ---------------------------------------------------------


def _update_latest(
    storage: Storage, domain: str, change: Callable[[LatestDocument], LatestDocument | None], known=None
) -> LatestDocument | None:
    """Best effort: a hint that lags is harmless (readers list past it), and so is a signed head
    that lags (readers under a trust policy see the version before), so losing races is fine."""
    try:
        return cas_update(
            storage,
            keys.latest_key(domain),
            change,
            parse=LatestDocument.parse,
            encode=LatestDocument.to_bytes,
            what=f"the latest hint of {domain!r}",
            limit=limits.SMALL_BYTES,
            known=known,
        )
    except ConflictError:
        return None


def _head(current: LatestDocument, domain: str) -> SignedPointer | None:
    try:
        return current.head(keys.latest_key(domain))
    except CorruptRecordError:
        return None


def _move_head(storage: Storage, domain: str, current: LatestDocument, record: VersionRecord, signer: Signer) -> dict[str, Any] | None:
    """The signed head naming ``record`` (a version just committed or signed), or ``None`` to keep
    the current one: when it names this version already, signed (by any key: the version may carry
    several signers' signatures), or a newer version that exists (a concurrent upload's). A head is
    never moved back here: only a signed delete does that."""
    head = _head(current, domain)
    named = head.claims().get("version") if head is not None else None
    if named == record.version and signer.holds(head):
        return None
    if type(named) is int and named > record.version and storage.stat(keys.version_key(domain, named)) is not None:
        return None
    return signer.sign_pointer(domain, None, record, head.serial() if head is not None else 0)


def _written(signer: Signer | None, domain: str, state: str | None, result: Any, signed: list[dict[str, Any]]) -> None:
    """Remember the pointers ``signer`` signed that are in the document written (``result``)."""
    if signer is None or result is None:
        return
    for pointer in signed:
        if (state is None and result.signed is pointer) or (state is not None and _in_states(result, state, pointer)):
            signer.signed(domain, state, pointer)


def _in_states(doc: StatesDocument, state: str, pointer: dict[str, Any]) -> bool:
    entry = doc.states.get(state)
    return (entry is not None and entry.signed is pointer) or doc.removed.get(state) is pointer


def advance_latest(
    storage: Storage,
    domain: str,
    version: int,
    known: tuple[bytes | None, Token] | None = None,
    repair: int | None = None,
    *,
    signer: Signer | None = None,
    record: VersionRecord | None = None,
    evented: set[int] | frozenset[int] = frozenset(),
    seq: int = 0,
) -> None:
    """Move the hint to ``version`` unless it already names a newer one; with a ``signer``, the
    signed head too (to ``record``, the version's).

    ``known`` is a ``(data, token)`` read earlier: tried first, re-read only if it went stale.
    ``repair`` is the hint that was read before ``version`` was claimed: if it named a version at or
    past the one claimed, it led instead of lagging (no writer put it there) and is replaced.
    ``evented``: versions whose events the caller put in the feed (its last in slot ``seq``): the
    claims said settled move past them (:func:`~.feed.advanced`). When an earlier claim is not
    settled (a concurrent upload, or one killed after its commit), it is settled here.
    """
    signed: list[dict[str, Any]] = []

    def forward(current: LatestDocument) -> LatestDocument | None:
        hint = current.hint
        if hint is not None and hint == repair and hint >= version:
            hint = version
        elif (hint or 0) < version:
            hint = version
        head = current.signed
        if signer is not None and record is not None and (moved := _move_head(storage, domain, current, record, signer)) is not None:
            head = moved
            signed.append(moved)
        new = (
            replace(feed.advanced(current, set(evented), seq), hint=hint, signed=head)
            if evented or seq
            else replace(current, hint=hint, signed=head)
        )
        return None if new == current and head is current.signed else new

    written = _update_latest(storage, domain, forward, known)
    _written(signer, domain, None, written, signed)
    if evented and written is not None and written.settled_through < max(evented):
        feed.settle_uploads(storage, domain, upto=max(evented))


def adopt_head(storage: Storage, domain: str, head: SignedPointer) -> None:
    """Put ``head``, another store's signed head (a copy's source), in place of this store's, unless
    this one's serial is as high (it names the same version or a newer one already)."""

    def adopt(current: LatestDocument) -> LatestDocument | None:
        mine = _head(current, domain)
        if mine is not None and mine.serial() >= head.serial():
            return None
        return replace(current, signed=head.to_json())

    _update_latest(storage, domain, adopt)


# --- states ----------------------------------------------------------------------------------------


def update_states(
    storage: Storage,
    domain: str,
    change: Callable[[dict[str, StateEntry]], dict[str, StateEntry] | None],
    *,
    if_corrupt: str = "raise",
    signer: Signer | None = None,
    records: dict[int, VersionRecord] | None = None,
) -> dict[str, StateEntry]:
    """Apply ``change(states) -> new states or None (no change)`` atomically, retrying lost races.

    An unreadable ``states.json`` raises :class:`CorruptRecordError` (``if_corrupt="raise"``), is
    replaced as if it held no state (``"replace"``: its states could not be used anyway), or is
    left alone (``"skip"``: nothing readable points anywhere).

    With a ``signer``, each state ``change`` sets is signed (``records``: the record of each version
    it sets a state to) and each it removes leaves a signed removal, each with a serial past the
    statement it replaces. Without, a state set carries no signature, and signed removals stay.

    Each state set, moved or removed is an event of the change feed (:mod:`.feed`): the events of
    the previous change are appended first (they must precede these), these are written into
    ``states.json`` with the states (``pending``), then appended. A write whose answer was lost (the
    backend could not tell it was its own) is recognised by its events when the retry reads the
    document back, or finds them in the feed (a later writer appended them before replacing it): the
    change is not made twice.
    """
    key = keys.states_key(domain)
    signed: list[tuple[str, dict[str, Any]]] = []
    wrote: list[StatesDocument] = []
    landed: list[StatesDocument] = []

    def parse(data: bytes | None) -> StatesDocument | None:
        try:
            return StatesDocument.parse(data, key)
        except CorruptRecordError:
            if if_corrupt == "raise":
                raise
            return None

    def apply(doc: StatesDocument | None) -> StatesDocument | None:
        if doc is None:
            if if_corrupt != "replace":
                return None
            doc = StatesDocument({})
        if wrote and wrote[-1].pending and _landed(storage, doc, wrote[-1].pending):
            landed.append(doc)  # our last write went through though its answer was lost: applying again would move twice
            return None
        new = change(dict(doc.states))
        if new is None:
            return None
        wrote.clear()
        removed = dict(doc.removed)
        if signer is not None:
            signed.clear()
            for name, entry in new.items():
                if doc.states.get(name) is not entry:  # set or moved by this change
                    pointer = signer.sign_pointer(domain, name, (records or {})[entry.version], _state_serial(doc, key, name))
                    new[name] = StateEntry(entry.version, entry.updated, pointer)
                    removed.pop(name, None)
                    signed.append((name, pointer))
            for name in set(doc.states) - set(new):
                removed[name] = signer.sign_pointer(domain, name, None, _state_serial(doc, key, name))
                signed.append((name, removed[name]))
        feed.append_pending(storage, doc)  # the previous change's events, before this one's
        events = feed.state_changes(domain, doc.states, new, doc.feed_seq, storage)
        result = StatesDocument(new, removed, max([doc.feed_seq, *(e.after for e in events)]), events)
        wrote.append(result)
        return result

    result = cas_update(
        storage, key, apply, parse=parse, encode=StatesDocument.to_bytes, what=f"the states of {domain!r}", limit=limits.STATES_BYTES
    )
    for name, pointer in signed:
        _written(signer, domain, name, result, [pointer])
    if wrote and (result is wrote[-1] or (landed and result is landed[-1])):
        checkpoint("states-written")
        feed.append_pending(storage, result)
        checkpoint("states-evented")
    return result.states if result is not None else {}


def _landed(storage: Storage, doc: StatesDocument, ours: tuple[Any, ...]) -> bool:
    """Whether a write of ``states.json`` whose events were ``ours`` took effect: ``doc`` (read since)
    is it, or a later writer replaced it, having put its events in the feed first."""
    return [e.id for e in doc.pending] == [e.id for e in ours] or feed.contains(storage, ours[0])


def _state_serial(doc: StatesDocument, key: str, name: str) -> int:
    """The serial a new statement of state ``name`` must go past: its current one's, or its removal's."""
    found = [doc.removed.get(name)] + ([doc.states[name].signed] if name in doc.states else [])
    serials = [0]
    for signed in found:
        try:
            serials.append(SignedPointer.parse(signed, key, "").serial() if signed is not None else 0)
        except CorruptRecordError:
            pass
    return max(serials)


def set_state(storage: Storage, domain: str, version: int, state: str, signer: Signer | None = None) -> None:
    """Point ``state`` at ``version``. An unreadable ``states.json`` is replaced (its states were unusable).
    With a ``signer`` the state is signed (its record is read, to name it in the statement)."""
    if signer is None:
        if storage.stat(keys.version_key(domain, version)) is None:
            raise not_found(storage, domain, version)
        records = None
    else:
        records = {version: read_record(storage, domain, version)}
    feed.settle_uploads(storage, domain, upto=version)  # its uploaded event comes before this one's
    entry = StateEntry(version, now_utc())
    update_states(storage, domain, lambda states: {**states, state: entry}, if_corrupt="replace", signer=signer, records=records)
    # A concurrent delete may have removed the version after the check above; undo if so.
    if storage.stat(keys.version_key(domain, version)) is None:
        clear_states(storage, domain, version, signer)
        raise VersionNotFoundError(domain, version)


def remove_state(storage: Storage, domain: str, state: str, signer: Signer | None = None) -> None:
    def drop(states: dict[str, StateEntry]) -> dict[str, StateEntry]:
        if state not in states:
            raise StateNotFoundError(domain, state)
        return {name: s for name, s in states.items() if name != state}

    update_states(storage, domain, drop, signer=signer)


def remove_state_if(storage: Storage, domain: str, state: str, version: int) -> None:
    """Remove ``state`` if it still points at ``version`` (repairs a state left on a deleted version)."""

    def drop(states: dict[str, StateEntry]) -> dict[str, StateEntry] | None:
        if state not in states or states[state].version != version:
            return None
        return {name: s for name, s in states.items() if name != state}

    update_states(storage, domain, drop, if_corrupt="skip")


def clear_states(storage: Storage, domain: str, version: int, signer: Signer | None = None) -> None:
    """Remove every state that points at ``version``."""

    def drop(states: dict[str, StateEntry]) -> dict[str, StateEntry] | None:
        kept = {name: s for name, s in states.items() if s.version != version}
        return kept if len(kept) != len(states) else None

    update_states(storage, domain, drop, if_corrupt="skip", signer=signer)


# --- delete ------------------------------------------------------------------------------------------


def delete_version(storage: Storage, domain: str, version: int, signer: Signer | None = None) -> None:
    """Remove a version from listings. Its number stays claimed (never reused); its files stay
    until ``gc`` finds them unreferenced; its signatures are deleted right after its record (``gc``
    collects them if a crash comes between).

    States on it are cleared first, so a crash at any point leaves either the version (delete
    again to finish) or no state on it; ``set_state`` re-checks after writing, so a concurrent one
    cannot leave a state behind either. ``verify --repair`` removes any state that still dangles.
    With a ``signer``, the removals of states are signed, and a signed head that named the version
    moves to the newest version left (a reader under a trust policy otherwise refuses ``latest``).
    """
    key = keys.version_key(domain, version)
    if storage.stat(key) is None:
        raise not_found(storage, domain, version)
    feed.settle_uploads(storage, domain, upto=version)  # its uploaded event comes before this one's
    clear_states(storage, domain, version, signer)
    checkpoint("states-cleared")
    storage.delete(key)
    checkpoint("record-deleted")
    delete_signatures(storage, domain, version)
    summary.remove_entry(storage, domain, version)
    signed: list[dict[str, Any]] = []

    def newest() -> int:
        try:
            return latest(storage, domain)[0]
        except (VersionNotFoundError, DomainNotFoundError):
            return 0

    def back(current: LatestDocument) -> LatestDocument | None:
        hint, head, left = current.hint, current.signed, None
        if hint == version:
            hint = left = newest()
        pointer = _head(current, domain) if signer is not None else None
        if pointer is not None and pointer.claims().get("version") == version:
            left = newest() if left is None else left
            try:
                record = read_record(storage, domain, left) if left else None
            except (VersionNotFoundError, DomainNotFoundError):
                record = None
            head = signer.sign_pointer(domain, None, record, pointer.serial())
            signed.append(head)
        if hint == current.hint and head is current.signed:
            return None
        return replace(current, hint=hint, signed=head)

    written = _update_latest(storage, domain, back)
    _written(signer, domain, None, written, signed)
    feed.record(storage, "deleted", domain, version, start=written.feed_seq if written is not None else 0)


def delete_domain(storage: Storage, domain: str) -> list[int]:
    """Delete every version of ``domain``, then its states, hint and claims; returns the versions deleted.

    States and the summary go first, so that no crash leaves one pointing at a deleted version; signatures go
    before the claims, so that no signature outlives them to meet a reused version number (it
    would not hold for another record anyway); claims go last, so that the domain keeps listing
    until everything else is gone (running it again finishes the job).
    """
    if not domain_exists(storage, domain):
        raise DomainNotFoundError(domain)
    feed.settle_uploads(storage, domain)
    feed.settle_states(storage, domain)
    start = feed.domain_seq(storage, domain)
    storage.delete(keys.states_key(domain))
    summary.delete_summary(storage, domain)  # before the records: no entry may outlive them to meet a reused number
    deleted = [n for n, _ in list_versions(storage, domain)]
    for n in deleted:
        storage.delete(keys.version_key(domain, n))
    storage.delete(keys.latest_key(domain))
    delete_signatures(storage, domain)
    for info in list(storage.list(keys.domain_prefix(domain))):
        storage.delete(info.key)
    feed.record(storage, "deleted", domain, start=start)
    return sorted(deleted)


def delete_signatures(storage: Storage, domain: str, version: int | None = None) -> list[str]:
    """Delete the signature documents of a version (every version when ``None``); returns their keys.

    A crash before this leaves signatures of a deleted version, which ``gc`` collects.
    """
    found = [info.key for info in storage.list(keys.signatures_prefix(domain, version))]
    for key in found:
        storage.delete(key)
    return found


# --- signatures ----------------------------------------------------------------------------------


def put_signature(storage: Storage, doc: SignatureDocument, data: bytes, replaces: Callable[[SignatureDocument | None], bool]) -> bool:
    """Store ``data``, the bytes of signature document ``doc``, beside its version; whether it was written.

    A document already under its key id is replaced only if ``replaces(existing)`` (``None``: it
    cannot be read): signing twice, or copying a signature that is there, writes nothing.
    """
    key = keys.signature_key(doc.domain, doc.version, doc.keyid)

    def parse(found: bytes | None) -> tuple[bytes | None, SignatureDocument | None]:
        if found is None:
            return None, None
        try:
            return found, SignatureDocument.parse(found, key, doc.domain, doc.version, doc.keyid)
        except CorruptRecordError:
            return found, None

    def change(current: tuple[bytes | None, SignatureDocument | None]) -> tuple[bytes, None] | None:
        found, existing = current
        if found is not None and (found == data or not replaces(existing)):
            return None
        return data, None

    written = cas_update(
        storage, key, change, parse=parse, encode=lambda new: new[0], what=f"the signature {key}", limit=limits.SMALL_BYTES
    )
    return written[0] == data and written[1] is None

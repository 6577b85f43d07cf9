"""The write path: committing a version, the latest hint, states and deletion.

An upload (:mod:`modelstore_core.upload`) serializes the model and stages its files (hashed,
and on the local backend already copied); :func:`commit_version` then:

1. writes ``uploads/<id>.json`` listing the objects it is about to store, so that
   :func:`~modelstore_core.gc.collect_garbage` leaves them alone while it runs;
2. places each object under its sha256 unless it already exists (deduplication);
3. claims the next free version number with create-if-absent (``claims/<n>``): concurrent
   uploaders each get their own number, none is ever overwritten or reused;
4. creates the version record ``versions/<n>.json``: the commit point. Before it the version is
   invisible; after it, complete; with a signer, its signature goes beside it right away
   (``signatures/<n>/<keyid>.json``; a reader with a trust policy refuses it until then);
5. adds the version to the domain's summary (compare-and-swap; :mod:`.summary`), moves the
   ``latest.json`` hint forward (compare-and-swap) and deletes the upload marker.

A crash before step 4 leaves only unreferenced objects and a marker, which ``gc`` reclaims; a
crash after it leaves a complete version (readers trust neither the hint nor the summary blindly).

A copy from another store (:mod:`modelstore_core.replicate`) commits the same way under the
source's number (:func:`commit_copy`); signatures are written by :func:`put_signature`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import (
    ConflictError,
    CorruptRecordError,
    DomainNotFoundError,
    KeyNotFoundError,
    StateNotFoundError,
    StorageError,
    VersionNotFoundError,
)
from ..liveness import HOST
from ..progress import FileProgress
from ..storage import StagedFile, Storage, Token
from . import keys, summary
from .cas import cas_update
from .read import domain_exists, latest, list_versions, not_found, read_latest_hint
from .records import (
    SignatureDocument,
    StateEntry,
    UploadMarker,
    VersionRecord,
    dumps,
    now_utc,
    parse_latest_hint,
    parse_states,
    states_document,
)


def checkpoint(name: str) -> None:
    """No-op marker of each step; crash tests replace it to kill the process at a named point."""


@contextmanager
def upload_in_progress(storage: Storage, domain: str, objects: tuple[str, ...]) -> Iterator[str]:
    """An upload marker (``uploads/<id>.json``) listing ``objects`` (sha256) for as long as the block
    runs, so that ``gc`` leaves them alone while they are stored and referenced; its key."""
    marker = keys.upload_key(os.urandom(16).hex())
    storage.put_if_absent(marker, dumps(UploadMarker(domain, now_utc(), HOST, os.getpid(), objects).to_json()))
    try:
        yield marker
    finally:
        storage.delete(marker)


def commit_version(
    storage: Storage,
    domain: str,
    draft: dict[str, Any],
    staged: list[StagedFile],
    progress: list[FileProgress],
    before_claim: Callable[[dict[str, bool]], None],
    after_commit: Callable[[VersionRecord], None] | None = None,
    *,
    first: int | None = None,
    claim_for: str | None = None,
) -> tuple[VersionRecord, int]:
    """Store the staged files and commit ``draft`` (a record without version and time) as the next
    version of ``domain`` (an import: the lowest free number from ``first``, a claim made for
    ``claim_for`` taken up again; see :func:`claim_version`).

    ``before_claim(placed)`` runs once the objects are stored (``placed``: sha256 -> whether this
    upload wrote it) and may raise to abandon the upload; ``after_commit(record)`` runs once the
    record exists, before the latest hint moves (it signs the version). Returns the committed record and the
    bytes of objects that were new to the store.
    """
    with upload_in_progress(storage, domain, tuple(sorted({st.sha256 for st in staged}))):
        checkpoint("marker-written")
        placed = place_objects(staged, progress)
        checkpoint("objects-stored")
        before_claim(placed)
        record, hint = create_record(storage, domain, draft, first, claim_for)
        checkpoint("committed")
        if after_commit is not None:
            after_commit(record)
            checkpoint("signed")
        summary.add_entry(storage, record, len(dumps(record.document)))
        checkpoint("summarized")
        advance_latest(storage, domain, record.version, hint, repair=parse_latest_hint(hint[0]))
        checkpoint("latest-updated")
    sizes = {st.sha256: st.size for st in staged}
    return record, sum(sizes[sha] for sha, wrote in placed.items() if wrote)


def commit_copy(storage: Storage, domain: str, version: int, data: bytes) -> str | None:
    """Commit ``data``, a version record copied byte for byte from another store (its objects stored
    already, under an upload marker), as version ``version`` of ``domain``: claim the number for
    this record, create the record (the commit point), add it to the summary. The latest hint is
    the caller's to move (once per domain).

    Returns ``None`` once the version is there (committed now, or by an earlier run of the same
    copy: a claim names the sha256 of the record it is for, so a rerun takes its own claim up
    again), else why it was not: the number is someone else's.
    """
    if not storage.put_if_absent(keys.claim_key(domain, version), claim_document(copy_of=data)) and not claimed_for(
        storage, domain, version, data
    ):
        return "the number was taken in the destination while copying"
    checkpoint("copy-claimed")
    key = keys.version_key(domain, version)
    if not storage.put_if_absent(key, data) and storage.read(key)[0] != data:
        return "a different version appeared in the destination while copying"
    checkpoint("copy-committed")
    summary.add_entry(storage, VersionRecord.parse(data, key, domain, version), len(data))
    return None


def claim_document(copy_of: bytes | None = None, claim_for: str | None = None) -> bytes:
    """What a claim of a version number holds: when and by whom, for a copy the sha256 of its
    record, for an import what it imports (``for``)."""
    doc: dict[str, Any] = {"claimed": now_utc(), "host": HOST, "pid": os.getpid()}
    if copy_of is not None:
        doc["copy_of"] = hashlib.sha256(copy_of).hexdigest()
    if claim_for is not None:
        doc["for"] = claim_for
    return dumps(doc)


def claimed_for(storage: Storage, domain: str, version: int, record: bytes) -> bool:
    """Whether the claim on ``version`` was made by a copy of this very record (:func:`commit_copy`)."""
    try:
        doc = json.loads(storage.read(keys.claim_key(domain, version))[0])
    except (KeyNotFoundError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.get("copy_of") == hashlib.sha256(record).hexdigest()


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
    storage: Storage, domain: str, draft: dict[str, Any], first: int | None = None, claim_for: str | None = None
) -> tuple[VersionRecord, tuple[bytes | None, Token]]:
    """Claim the next free version number (from ``first``, else just past the latest hint) and
    create its record: the commit point. ``claim_for``: see :func:`claim_version`.

    Also returns the hint document as read before claiming, with its token, so that moving the
    hint forward usually needs no second read.
    """
    hint, data, token = read_latest_hint(storage, domain)
    version = claim_version(storage, domain, first if first is not None else hint + 1, claim_for)
    checkpoint("claimed")
    document = {**draft, "version": version, "created": now_utc()}
    key = keys.version_key(domain, version)
    if not storage.put_if_absent(key, dumps(document)):
        raise StorageError(f"version {version} of {domain!r} exists although this upload claimed it")
    return VersionRecord.from_document(document, key, domain, version), (data, token)


#: Lost claims in a row before the claimer lists the claims to jump past them (one listing
#: instead of one request per number, e.g. after a hint that lags far behind).
CLAIM_ATTEMPTS_BEFORE_LISTING = 8


def _claimed_by_import(storage: Storage, domain: str, version: int, claim_for: str) -> bool:
    """Whether ``version`` is claimed for ``claim_for`` and has no record yet."""
    try:
        doc = json.loads(storage.read(keys.claim_key(domain, version))[0])
    except (KeyNotFoundError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.get("for") == claim_for and storage.stat(keys.version_key(domain, version)) is None


def _is_number(name: str) -> bool:
    return len(name) == keys.VERSION_DIGITS and name.isdigit()


def claim_version(storage: Storage, domain: str, start: int, claim_for: str | None = None) -> int:
    """Claim the lowest free version number from ``start`` (create-if-absent of ``claims/<n>``).

    With ``claim_for`` (an import names what it imports), the claim records it, and a claim of
    ``start`` that already names it, with no record under the number, is taken up again: what an
    import killed between its claim and its record left (run one import at a time per target).
    """
    claim = claim_document(claim_for=claim_for)
    version, listed = max(start, 1), False
    wished = version
    for attempt in range(10_000):
        if version > keys.MAX_VERSION:
            if listed:
                raise ConflictError(f"domain {domain!r} has no version number left below {keys.MAX_VERSION + 1}")
            version = 0  # the hint led us here: find the real last claim
        elif storage.put_if_absent(keys.claim_key(domain, version), claim):
            return version
        elif version == wished and claim_for is not None and _claimed_by_import(storage, domain, version, claim_for):
            return version
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


# --- the latest hint ---------------------------------------------------------------------------


def _move_hint(storage: Storage, domain: str, change: Callable[[int | None], int | None], known=None) -> None:
    """Best effort: a hint that lags is harmless (readers list past it), so losing races is fine."""
    try:
        cas_update(
            storage,
            keys.latest_key(domain),
            change,
            parse=parse_latest_hint,
            encode=lambda version: dumps({"version": version}),
            what=f"the latest hint of {domain!r}",
            known=known,
        )
    except ConflictError:
        pass


def advance_latest(
    storage: Storage,
    domain: str,
    version: int,
    known: tuple[bytes | None, Token] | None = None,
    repair: int | None = None,
) -> None:
    """Move the hint to ``version`` unless it already names a newer one.

    ``known`` is a ``(data, token)`` read earlier: tried first, re-read only if it went stale.
    ``repair`` is the hint that was read before ``version`` was claimed: if it named a version at or
    past the one claimed, it led instead of lagging (no writer put it there) and is replaced.
    """

    def forward(current: int | None) -> int | None:
        if current is not None and current == repair and current >= version:
            return version
        return None if (current or 0) >= version else version

    _move_hint(storage, domain, forward, known)


# --- states ----------------------------------------------------------------------------------------


def update_states(
    storage: Storage,
    domain: str,
    change: Callable[[dict[str, StateEntry]], dict[str, StateEntry] | None],
    *,
    if_corrupt: str = "raise",
) -> dict[str, StateEntry]:
    """Apply ``change(states) -> new states or None (no change)`` atomically, retrying lost races.

    An unreadable ``states.json`` raises :class:`CorruptRecordError` (``if_corrupt="raise"``), is
    replaced as if it held no state (``"replace"``: its states could not be used anyway), or is
    left alone (``"skip"``: nothing readable points anywhere).
    """
    key = keys.states_key(domain)

    def parse(data: bytes | None) -> dict[str, StateEntry] | None:
        try:
            return parse_states(data, key)
        except CorruptRecordError:
            if if_corrupt == "raise":
                raise
            return None

    def apply(states: dict[str, StateEntry] | None) -> dict[str, StateEntry] | None:
        if states is None:
            return change({}) if if_corrupt == "replace" else None
        return change(dict(states))

    result = cas_update(storage, key, apply, parse=parse, encode=states_document, what=f"the states of {domain!r}")
    return result or {}


def set_state(storage: Storage, domain: str, version: int, state: str) -> None:
    """Point ``state`` at ``version``. An unreadable ``states.json`` is replaced (its states were unusable)."""
    if storage.stat(keys.version_key(domain, version)) is None:
        raise not_found(storage, domain, version)
    entry = StateEntry(version, now_utc())
    update_states(storage, domain, lambda states: {**states, state: entry}, if_corrupt="replace")
    # A concurrent delete may have removed the version after the check above; undo if so.
    if storage.stat(keys.version_key(domain, version)) is None:
        clear_states(storage, domain, version)
        raise VersionNotFoundError(domain, version)


def remove_state(storage: Storage, domain: str, state: str) -> None:
    def drop(states: dict[str, StateEntry]) -> dict[str, StateEntry]:
        if state not in states:
            raise StateNotFoundError(domain, state)
        return {name: s for name, s in states.items() if name != state}

    update_states(storage, domain, drop)


def remove_state_if(storage: Storage, domain: str, state: str, version: int) -> None:
    """Remove ``state`` if it still points at ``version`` (repairs a state left on a deleted version)."""

    def drop(states: dict[str, StateEntry]) -> dict[str, StateEntry] | None:
        if state not in states or states[state].version != version:
            return None
        return {name: s for name, s in states.items() if name != state}

    update_states(storage, domain, drop, if_corrupt="skip")


def clear_states(storage: Storage, domain: str, version: int) -> None:
    """Remove every state that points at ``version``."""

    def drop(states: dict[str, StateEntry]) -> dict[str, StateEntry] | None:
        kept = {name: s for name, s in states.items() if s.version != version}
        return kept if len(kept) != len(states) else None

    update_states(storage, domain, drop, if_corrupt="skip")


# --- delete ------------------------------------------------------------------------------------------


def delete_version(storage: Storage, domain: str, version: int) -> None:
    """Remove a version from listings. Its number stays claimed (never reused); its files stay
    until ``gc`` finds them unreferenced; its signatures are deleted right after its record (``gc``
    collects them if a crash comes between).

    States on it are cleared first, so a crash at any point leaves either the version (delete
    again to finish) or no state on it; ``set_state`` re-checks after writing, so a concurrent one
    cannot leave a state behind either. ``verify --repair`` removes any state that still dangles.
    """
    key = keys.version_key(domain, version)
    if storage.stat(key) is None:
        raise not_found(storage, domain, version)
    clear_states(storage, domain, version)
    checkpoint("states-cleared")
    storage.delete(key)
    checkpoint("record-deleted")
    delete_signatures(storage, domain, version)
    summary.remove_entry(storage, domain, version)

    def back(current: int | None) -> int | None:
        if current != version:
            return None
        try:
            return latest(storage, domain)[0]
        except (VersionNotFoundError, DomainNotFoundError):
            return 0

    _move_hint(storage, domain, back)


def delete_domain(storage: Storage, domain: str) -> list[int]:
    """Delete every version of ``domain``, then its states, hint and claims; returns the versions deleted.

    States and the summary go first, so that no crash leaves one pointing at a deleted version; signatures go
    before the claims, so that no signature outlives them to meet a reused version number (it
    would not hold for another record anyway); claims go last, so that the domain keeps listing
    until everything else is gone (running it again finishes the job).
    """
    if not domain_exists(storage, domain):
        raise DomainNotFoundError(domain)
    storage.delete(keys.states_key(domain))
    summary.delete_summary(storage, domain)  # before the records: no entry may outlive them to meet a reused number
    deleted = [n for n, _ in list_versions(storage, domain)]
    for n in deleted:
        storage.delete(keys.version_key(domain, n))
    storage.delete(keys.latest_key(domain))
    delete_signatures(storage, domain)
    for info in list(storage.list(keys.domain_prefix(domain))):
        storage.delete(info.key)
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

    written = cas_update(storage, key, change, parse=parse, encode=lambda new: new[0], what=f"the signature {key}")
    return written[0] == data and written[1] is None

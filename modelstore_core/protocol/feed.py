"""The change feed: what happened in a store, one event per change, in order, with no server.

Events (:data:`~.records.EVENT_KINDS`): ``uploaded`` and ``copied`` (a version committed by an
upload, or copied in from another store or pulled under its own number), ``state_set`` and
``state_removed`` (a state set or moved, or removed: by ``set_state``, ``remove_state``, a delete, a
copy of states, ``verify --repair``), ``deleted`` (a version; with no version, a whole domain) and
``signed``.

**Where.** ``feed/<block>/<seq>.json``, one event per key, created with create-if-absent at
consecutive numbers from 1, never rewritten, never deleted. A slot is created only once every
slot before it exists, so the slots in use are always 1 to n: a reader that has seen up to n lists
from n's key and misses nothing, and numbers only grow.

**Appending** (:func:`append`). A change is committed first (its version record, or ``states.json``)
and its event appended after. Every change carries ``after``, a slot number taken before it was
committed: every copy of its event can only be in a later slot. An appender walks the slots from
``after + 1``: one holding the change's id means the event is there (done); one holding another
event is passed; the first absent one is created, and when someone else created it first it is read
like any other. Two appenders of one change can never both create a slot for it: each passes
every slot after ``after`` up to where it creates one, so the second reads the first's slot and
stops. An event can therefore be appended again and again (by its writer, by whoever finds it
missing): it is in the feed exactly once.

**Nothing lost.** What an event needs is durable when its change is committed:

* an upload or a copy: the claim of its version number (``claims/<n>``, written before the record)
  holds ``after`` and its upload marker's key; the event's id is derived from the claim. ``latest.json``
  says up to which version every claim is *settled* (its event appended, or its upload failed).
  An uploader settles its own claim as it moves the hint; :func:`settle_uploads` settles the claims
  past that: a claim whose record exists gets its event (appended again: a no-op if it is there); one
  without a record is settled once its upload's marker is gone or finished (the upload failed, or
  committed, appended its event and saw its version deleted since: a delete settles its version
  first); otherwise its upload may still commit, and the claim waits.
* a state move: its events go into ``states.json`` (``pending``) in the very compare-and-swap that
  moves the states; whoever writes the states next appends them before writing (so they precede any
  later move's events), and the mover itself appends them right after.

Who repairs: every upload, copy, state move and delete settles what it meets of its domain; a reader
(:func:`repair`) settles the domains that upload markers show unfinished (one listing of
``uploads/``), and with a domain named, that domain's states; ``gc`` settles every domain before it
removes a marker. ``deleted`` and ``signed`` events are appended once, after their change, with
nothing recorded before it: a writer killed in between leaves none (the version is gone, the
signature is there, for anyone who looks).

**Order.** Events are in the order they were appended. A version's ``uploaded`` or ``copied`` event
precedes the event of any state move, delete or signature naming it (these settle the version first);
a domain's state moves are in the order ``states.json`` took them; one writer's events are in the order
it made its changes. ``time`` is the writer's clock, shown and never used to order anything.

**Costs.** An upload: one listing of the feed before its claim (from the slot ``latest.json`` names: a
page per 1,000 events since that domain's last upload) and one create-if-absent of its slot (plus a
read per slot a concurrent writer took first); its claim and the hint update carry the rest. A state
move: the same two, plus a read of ``latest.json`` (is the version's event in?) and of the slot of the
previous move's event (not when this process wrote it). A poll: a listing from the reader's last key
and one read per new event, plus one listing of ``uploads/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from ..errors import ConflictError, CorruptRecordError, KeyNotFoundError, ModelStoreError
from ..storage import Storage
from . import keys, limits
from .cas import cas_update, read_document
from .limits import read_capped
from .read import READ_WORKERS
from .records import Change, Event, LatestDocument, StatesDocument, UploadMarker
from .validate import Fields, load_json

# --- what this process knows of the slots (a slot never changes once written) ------------------------


class _Slots:
    """The ids held by slots this process read or created, for one storage object (bounded)."""

    MAX = 100_000

    def __init__(self) -> None:
        self.ids: dict[int, str] = {}
        self.lock = threading.Lock()

    def get(self, seq: int) -> str | None:
        with self.lock:
            return self.ids.get(seq)

    def put(self, seq: int, ident: str) -> None:
        with self.lock:
            if len(self.ids) >= self.MAX:
                self.ids.clear()
            self.ids[seq] = ident


_KNOWN: weakref.WeakKeyDictionary[Storage, _Slots] = weakref.WeakKeyDictionary()
_KNOWN_LOCK = threading.Lock()


def _slots(storage: Storage) -> _Slots:
    with _KNOWN_LOCK:
        found = _KNOWN.get(storage)
        if found is None:
            found = _KNOWN[storage] = _Slots()
        return found


def new_id() -> str:
    """A fresh change id (a state move, a delete, a signature)."""
    return os.urandom(16).hex()


def claim_id(domain: str, version: int, claim: bytes) -> str:
    """The id of the change a version's claim committed: the same for its writer and for anyone who settles it."""
    return hashlib.sha256(f"{domain}:{version}:".encode() + claim).hexdigest()[:32]


# --- where the feed ends ---------------------------------------------------------------------------


def tail(storage: Storage, start: int | None = None) -> int:
    """The last slot of the feed (0: none yet), listed from slot ``start`` (a slot known to exist:
    a domain's place), else from the head hint. A listing that went through a page or more moves the
    hint forward (best effort), so that the next one from nowhere is short."""
    if not start:
        start = read_head(storage)
    last, seen = start or 0, 0
    for info in storage.list(keys.FEED, start_after=keys.event_key(start) if start else None):
        seq = keys.seq_from_key(info.key)
        if seq is not None and seq > last:
            last, seen = seq, seen + 1
    if seen >= keys.FEED_BLOCK:
        move_head(storage, last)
    return last


def read_head(storage: Storage) -> int:
    """The slot the head hint names (0 when absent or unusable: a listing from the start is never wrong)."""
    try:
        data, _ = read_document(storage, keys.FEED_HEAD, limits.SMALL_BYTES, "the feed's head hint")
    except CorruptRecordError:
        return 0
    return _head_of(data)


def _head_of(data: bytes | None) -> int:
    try:
        value = json.loads(data).get("seq") if data else None
    except (ValueError, RecursionError, AttributeError):
        return 0
    return value if type(value) is int and 0 <= value <= keys.MAX_SEQ else 0


def move_head(storage: Storage, seq: int) -> None:
    """Move the head hint forward to ``seq`` (a slot that exists); best effort."""
    try:
        cas_update(
            storage,
            keys.FEED_HEAD,
            lambda current: None if current >= seq else seq,
            parse=_head_of,
            encode=lambda n: json.dumps({"seq": n}).encode(),
            what="the feed's head hint",
            limit=limits.SMALL_BYTES,
        )
    except (ModelStoreError, OSError):
        pass


# --- appending -----------------------------------------------------------------------------------


def _id_at(storage: Storage, seq: int) -> str:
    """The change id slot ``seq`` holds ("" when it cannot be read: another event, as far as appending goes)."""
    known = _slots(storage).get(seq)
    if known is not None:
        return known
    try:
        ident = Event.parse(read_capped(storage, keys.event_key(seq), limits.SMALL_BYTES, "an event")[0], keys.event_key(seq), seq).id
    except CorruptRecordError:
        ident = ""
    _slots(storage).put(seq, ident)
    return ident


#: Slots one append passes at most before it gives up (a feed that grows faster than one writer can follow).
MAX_WALK = 1_000_000


def append(storage: Storage, change: Change) -> int:
    """Put ``change``'s event in the feed unless it is there: the number of its slot (see the module
    docstring for why it is then there exactly once)."""
    slots = _slots(storage)
    seq = change.after + 1
    for _ in range(MAX_WALK):
        held = slots.get(seq)
        if held is None:
            if storage.put_if_absent(keys.event_key(seq), change.event_document(seq)):
                slots.put(seq, change.id)
                return seq
            try:
                held = _id_at(storage, seq)
            except KeyNotFoundError:  # there a moment ago: look again
                continue
        if held == change.id:
            return seq
        seq += 1
    raise ConflictError(f"could not append a {change.event} event of {change.domain!r}: the feed kept growing past {MAX_WALK} slots")


def contains(storage: Storage, change: Change) -> bool:
    """Whether ``change``'s event is in the feed: the slots from ``change.after + 1`` walked as
    :func:`append` walks them, creating none (a read per slot this process has not seen)."""
    seq = change.after + 1
    for _ in range(MAX_WALK):
        try:
            if _id_at(storage, seq) == change.id:
                return True
        except KeyNotFoundError:
            return False  # the end of the feed
        seq += 1
    return False


def record(storage: Storage, event: str, domain: str, version: int | None = None, *, start: int | None = None) -> int | None:
    """Append the event of a change made just now that nothing else will append (``deleted``,
    ``signed``), listing the feed from slot ``start`` (default: where ``latest.json`` says); best
    effort: ``None`` when it could not."""
    try:
        after = tail(storage, domain_seq(storage, domain) if start is None else start)
        return append(storage, Change(event, domain, version, None, new_id(), after))
    except (ModelStoreError, OSError):
        return None


def domain_seq(storage: Storage, domain: str) -> int:
    """The slot ``latest.json`` of ``domain`` names (where to list the feed from; 0: from the head hint)."""
    try:
        data, _ = read_document(storage, keys.latest_key(domain), limits.SMALL_BYTES, "a latest hint")
    except CorruptRecordError:
        return 0
    return LatestDocument.parse(data).feed_seq


# --- uploads and copies: claims ----------------------------------------------------------------


def claim_feed(after: int, marker: str | None) -> dict[str, Any]:
    """What a claim records for the feed: ``after`` and the key of its upload's marker."""
    return {"after": after, **({"upload": marker} if marker else {})}


def read_claim(data: bytes, key: str) -> tuple[int, str | None, bool] | None:
    """``(after, marker key, is a copy)`` of a claim; ``None`` for one without feed (from before the
    feed, or written by a test helper that commits versions directly): it has no event."""
    top = Fields(load_json(data, key), key)
    feed = top.get("feed", dict, required=False)
    if feed is None:
        return None
    f = Fields(feed, key, "feed.")
    marker = f.get("upload", str, required=False)
    if marker is not None and not (marker.startswith(keys.UPLOADS) and marker.endswith(".json") and "/" not in marker[len(keys.UPLOADS) :]):
        raise f.fail("upload", "is not an upload marker's key")
    return f.integer("after", 0, keys.MAX_SEQ), marker, top.get("copy_of", str, required=False) is not None


def upload_change(domain: str, version: int, claim: bytes, after: int, copied: bool) -> Change:
    return Change("copied" if copied else "uploaded", domain, version, None, claim_id(domain, version, claim), after)


def _settleread_claim(storage: Storage, domain: str, n: int) -> bool:
    """Settle claim ``n``: whether its event is in the feed now, or never will be needed."""
    key = keys.claim_key(domain, n)
    try:
        data = read_capped(storage, key, limits.SMALL_BYTES, "a claim")[0]
        found = read_claim(data, key)
    except KeyNotFoundError:
        return True  # no claim: no version under this number
    except CorruptRecordError:
        return storage.stat(keys.version_key(domain, n)) is None  # a version without a readable claim is left to verify
    if found is None:
        return True
    after, marker, copied = found
    if storage.stat(keys.version_key(domain, n)) is not None:
        append(storage, upload_change(domain, n, data, after, copied))
        return True
    if marker is None:
        return True
    try:
        doc = UploadMarker.parse(read_capped(storage, marker, limits.RECORD_BYTES, "an upload marker")[0], marker)
    except KeyNotFoundError:
        return True  # its upload is over: it failed, or its version was deleted after its event (a delete settles first)
    except CorruptRecordError:
        return False
    return doc.version is not None  # finished: its event was appended before the marker said so


def settle_uploads(storage: Storage, domain: str, upto: int | None = None) -> int:
    """Settle the claims of ``domain`` past the ones ``latest.json`` says are settled (up to
    ``upto`` when given: then nothing is read past the hint's first read if those are settled
    already); returns the version through which every claim is settled, which ``latest.json``
    then says (best effort)."""
    data, _ = _latest(storage, domain)
    doc = LatestDocument.parse(data)
    settled = doc.settled_through
    if upto is not None and settled >= upto:
        return settled
    claimed = sorted(
        n for info in storage.list(keys.claims_prefix(domain), start_after=keys.claim_key(domain, settled) if settled else None)
        if (n := _claim_number(info.key, domain)) is not None and n > settled
    )  # fmt: skip
    through = settled
    for n in claimed:
        if upto is not None and n > upto:
            break
        if not _settleread_claim(storage, domain, n):
            break
        through = n
    if through > settled:
        mark_settled(storage, domain, {*range(settled + 1, through + 1)})
    return through


def _claim_number(key: str, domain: str) -> int | None:
    name = key[len(keys.claims_prefix(domain)) :]
    return int(name) if len(name) == keys.VERSION_DIGITS and name.isdigit() and int(name) >= 1 else None


def _latest(storage: Storage, domain: str) -> tuple[bytes | None, Any]:
    try:
        return read_document(storage, keys.latest_key(domain), limits.SMALL_BYTES, "a latest hint")
    except CorruptRecordError as exc:  # an oversized hint: unusable, replaced by the next writer
        return None, getattr(exc, "token", None)


def advanced(current: LatestDocument, evented: set[int], seq: int) -> LatestDocument:
    """``current`` with ``settled`` moved past the versions of ``evented`` (whose events the caller
    put in the feed) that follow it without a gap, and its feed place moved forward to ``seq``."""
    through = current.settled_through
    while through + 1 in evented:
        through += 1
    return replace(current, settled=through, feed_seq=max(current.feed_seq, seq))


def mark_settled(storage: Storage, domain: str, versions: set[int], seq: int = 0) -> None:
    """Say in ``latest.json`` that the claims of ``versions`` are settled (best effort; only forward;
    never creating it: a domain without one has no committed version, or was deleted)."""

    def change(current: LatestDocument) -> LatestDocument | None:
        if current.hint is None:
            return None
        new = advanced(current, versions, seq)
        return None if (new.settled, new.feed_seq) == (current.settled, current.feed_seq) else new

    try:
        cas_update(storage, keys.latest_key(domain), change, parse=LatestDocument.parse, encode=LatestDocument.to_bytes,
                   what=f"the latest hint of {domain!r}", limit=limits.SMALL_BYTES)  # fmt: skip
    except (ModelStoreError, OSError):
        pass


# --- state moves: pending in states.json -------------------------------------------------------


def state_changes(domain: str, before: dict[str, Any], after: dict[str, Any], start: int, storage: Storage) -> tuple[Change, ...]:
    """The events of a change of ``domain``'s states from ``before`` to ``after`` (state -> entry with
    a ``version``), each after the feed's last slot now (listed from ``start``)."""
    moved = [("state_set", name, entry.version) for name, entry in sorted(after.items()) if name not in before or before[name] is not entry]
    moved += [("state_removed", name, entry.version) for name, entry in sorted(before.items()) if name not in after]
    if not moved:
        return ()
    last = tail(storage, start)
    return tuple(Change(kind, domain, version, name, new_id(), last) for kind, name, version in moved)


def append_pending(storage: Storage, doc: StatesDocument | None) -> None:
    """Append the events waiting in ``states.json`` (already in the feed: nothing is written)."""
    for change in doc.pending if doc is not None else ():
        append(storage, change)


def settle_states(storage: Storage, domain: str) -> None:
    """Append the events a state mover left in ``domain``'s ``states.json`` (best effort)."""
    key = keys.states_key(domain)
    try:
        data, _ = read_document(storage, key, limits.STATES_BYTES, "the states of a domain")
        append_pending(storage, StatesDocument.parse(data, key))
    except (ModelStoreError, OSError):
        pass


# --- reading -----------------------------------------------------------------------------------------


class Markers:
    """What a reader remembers of ``uploads/``: markers that said their upload finished (they never
    change again), by key and size."""

    def __init__(self) -> None:
        self.finished: set[tuple[str, int | None]] = set()

    def unfinished_domains(self, storage: Storage) -> set[str]:
        """Domains with an upload marker that does not say its upload finished (one listing, and a
        read of each marker not known finished)."""
        domains = set()
        for info in storage.list(keys.UPLOADS):
            if (info.key, info.size) in self.finished:
                continue
            try:
                marker = UploadMarker.parse(read_capped(storage, info.key, limits.RECORD_BYTES, "an upload marker")[0], info.key)
            except (KeyNotFoundError, CorruptRecordError):
                continue
            if marker.version is not None:
                self.finished.add((info.key, info.size))
            else:
                domains.add(marker.domain)
        return domains


def repair(storage: Storage, domain: str | None, markers: Markers, problems: list[str]) -> None:
    """What a reader does before it reads the feed: settle the domains (``domain`` only, when given)
    whose uploads may have committed without their event, and ``domain``'s states. Best effort: a
    reader without write access leaves it to the writers, and says so in ``problems``."""
    try:
        for name in sorted(markers.unfinished_domains(storage)):
            if (domain is None or name == domain) and _valid_name(name):
                settle_uploads(storage, name)
        if domain is not None:
            settle_states(storage, domain)
    except (ModelStoreError, OSError) as exc:
        problems.append(f"the feed was not repaired: {' '.join(str(exc).split())}")


def _valid_name(name: str) -> bool:
    from ..names import check_name

    try:
        check_name(name, "domain name")
    except ModelStoreError:
        return False
    return True


def read_events(storage: Storage, since: int, problems: list[str]) -> Iterator[Event]:
    """The events after slot ``since``, in order (a listing from its key, then every new event read,
    several at once). An event that cannot be read is reported in ``problems`` and passed."""
    found = [seq for info in storage.list(keys.FEED, start_after=keys.event_key(since) if since else None)
             if (seq := keys.seq_from_key(info.key)) is not None and seq > since]  # fmt: skip

    def one(seq: int) -> Event | str:
        key = keys.event_key(seq)
        try:
            event = Event.parse(read_capped(storage, key, limits.SMALL_BYTES, "an event")[0], key, seq)
        except CorruptRecordError as exc:
            return f"{exc} (passed)"
        except KeyNotFoundError:
            return f"{key} is gone (passed)"
        _slots(storage).put(seq, event.id)
        return event

    for first in range(0, len(found), 1000):
        batch = found[first : first + 1000]
        if len(batch) < 2:
            results: list[Event | str] = [one(seq) for seq in batch]
        else:
            with ThreadPoolExecutor(min(READ_WORKERS, len(batch))) as pool:
                results = list(pool.map(one, batch))
        for result in results:
            if isinstance(result, str):
                problems.append(result)
            else:
                yield result


__all__ = [
    "Markers",
    "append",
    "claim_feed",
    "read_events",
    "record",
    "repair",
    "settle_states",
    "settle_uploads",
    "tail",
]

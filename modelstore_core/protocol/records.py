"""The JSON documents of a store as typed values, validated whenever they are read.

Everything read back from a store is untrusted: a bucket is written by a whole team, a disk can go
bad. Each document is parsed here, once, into frozen values; a document that breaks a rule raises
:class:`~modelstore_core.errors.CorruptRecordError` naming its key and the field, and the rest
of the core trusts what these parsers return.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import CorruptRecordError, InvalidNameError
from ..fields import FIELDS
from ..flavor import PARTS, RAW_FILES, Flavor
from ..names import check_file_path, check_name, check_paths_round_trip
from .keys import MAX_SEQ, MAX_VERSION, is_keyid
from .validate import Fields, check_sha256, kind_of, load_json

#: The version record format written by this release; older ones load, newer ones are refused.
SCHEMA = 1
#: Top-level keys of a version record that the core writes; every other one comes from a plugin.
CORE_KEYS = ("schema", "domain", "version", "created", "flavor", "files", "dependencies", "git", "runtime", *(f.name for f in FIELDS))
#: Flavors a part cannot have: parts do not nest, and raw files are not a model.
NOT_A_PART = (PARTS, RAW_FILES)


def dumps(obj: Any) -> bytes:
    """The bytes of a document as stored: sorted keys (deterministic), strict JSON (NaN refused)."""
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False).encode()


def now_utc() -> str:
    """The current time as stored in documents: ISO 8601, UTC, microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _check_identity(top: Fields, newest_schema: int, domain: str, version: int, what: str) -> None:
    """A document's schema is one this release reads, and it names the domain and version its key does."""
    schema = top.get("schema", int)
    if schema > newest_schema:
        raise top.fail("schema", f"is {schema}: written by a newer modelstore; upgrade modelstore-core to read it")
    if top.get("domain", str) != domain:
        raise top.fail("domain", f"is {top.obj['domain'][:60]!r} but the {what} is stored under domain {domain!r}")
    if top.integer("version", 1, MAX_VERSION) != version:
        raise top.fail("version", f"is {top.obj['version']} but the {what} is stored under version {version}")


# --- the version record ------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    """One stored file of a version: its name inside the version, size and sha256."""

    path: str
    size: int
    sha256: str

    @property
    def is_extra(self) -> bool:
        return self.path.startswith("extras/")

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class VersionRecord:
    """A committed version: ``domains/<domain>/versions/<n>.json``.

    ``document`` is the whole record as stored (plugin metadata, dependencies, git, runtime
    included); the typed fields are the parts the core acts on, validated. Each field of
    :data:`~modelstore_core.fields.FIELDS` (``tags``, ``metrics``, ``params``, ``signature``,
    ``data``...) is an attribute too, read from ``values``.
    """

    domain: str
    version: int
    created: datetime
    flavor: Flavor
    files: tuple[FileEntry, ...]
    document: dict[str, Any] = field(repr=False, compare=False)
    #: the value of each field of :data:`~modelstore_core.fields.FIELDS`, validated, by name
    values: dict[str, Any] = field(default_factory=dict, repr=False)
    #: the models of a ``parts`` version, in upload order (empty for other versions)
    parts: tuple[Part, ...] = ()

    @property
    def model_files(self) -> list[FileEntry]:
        """The files the flavor's plugin loads (extras excluded)."""
        return [f for f in self.files if not f.is_extra]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @classmethod
    def parse(cls, data: bytes, key: str, domain: str, version: int) -> VersionRecord:
        """Validate the record read from ``key``, which must name ``domain``/``version``."""
        return cls.from_document(load_json(data, key), key, domain, version)

    @classmethod
    def from_document(cls, doc: Any, key: str, domain: str, version: int) -> VersionRecord:
        top = Fields(doc, key)
        _check_identity(top, SCHEMA, domain, version, "record")
        created = datetime.fromisoformat(top.time("created"))
        flavor = parse_flavor(top.get("flavor", dict), key)
        files = parse_files(top.get("files", list), key)
        parts = parse_parts(flavor, files, key) if flavor.name == PARTS else ()
        values = {f.name: f.read(doc, key) for f in FIELDS}
        return cls(domain, version, created, flavor, files, doc, values, parts)


for _field in FIELDS:  # record.metrics, record.params...: one attribute per declared field
    setattr(VersionRecord, _field.name, property(lambda self, name=_field.name: self.values[name], doc=_field.doc))


def parse_flavor(obj: dict[str, Any], key: str, prefix: str = "flavor.") -> Flavor:
    f = Fields(obj, key, prefix)
    return Flavor(
        name=f.name("name", "flavor name"),
        format=f.get("format", str),
        plugin=f.get("plugin", str, required=False, default=""),
        plugin_version=f.get("plugin_version", str, required=False),
        model_class=f.get("model_class", str, required=False),
        safe=f.get("safe", bool, required=False, default=True),
        options=f.get("options", dict, required=False, default={}),
    )


@dataclass(frozen=True)
class Part:
    """One model of a ``parts`` version: its name (the folder of its files) and its flavor."""

    name: str
    flavor: Flavor


def parse_parts(flavor: Flavor, files: tuple[FileEntry, ...], key: str) -> tuple[Part, ...]:
    """The parts ``flavor.options.parts`` lists (``[{"name", "flavor"}]``): each name a plain
    folder name (a domain name's rules, not ``extras``), once; each flavor valid and not itself
    ``parts`` or raw files; ``flavor.safe`` true only if every part is safe. Every model file
    must lie in the folder of a part, and every part must have a file there."""
    items = flavor.options.get("parts")
    if not isinstance(items, list) or not items:
        raise CorruptRecordError(key, "flavor.options.parts", f"is a {kind_of(items)}, not a non-empty list of parts")
    parts: list[Part] = []
    for i, item in enumerate(items):
        f = Fields(item, key, f"flavor.options.parts[{i}].")
        name = f.name("name", "part name")
        if name == "extras" or name in [p.name for p in parts]:
            raise f.fail("name", f"is {name!r}, " + ("the folder of extras" if name == "extras" else "which names two parts"))
        part_flavor = parse_flavor(f.get("flavor", dict), key, f"flavor.options.parts[{i}].flavor.")
        if part_flavor.name in NOT_A_PART:
            raise f.fail("flavor.name", f"is {part_flavor.name!r}, which a part cannot be")
        parts.append(Part(name, part_flavor))
    if flavor.safe and not all(p.flavor.safe for p in parts):
        raise CorruptRecordError(key, "flavor.safe", "is true, but a part is not safe")
    names = {p.name for p in parts}
    for i, entry in enumerate(files):
        folder, sep, _ = entry.path.partition("/")
        if not entry.is_extra and (not sep or folder not in names):
            raise CorruptRecordError(key, f"files[{i}].path", f"is {entry.path[:80]!r}, outside the folder of every part {sorted(names)}")
    for part in parts:
        if not any(entry.path.startswith(part.name + "/") for entry in files):
            raise CorruptRecordError(key, "files", f"hold no file of part {part.name!r}")
    return tuple(parts)


def parse_files(items: list[Any], key: str) -> tuple[FileEntry, ...]:
    if not items:
        raise CorruptRecordError(key, "files", "is empty: a version has at least one file")
    entries = []
    for i, item in enumerate(items):
        f = Fields(item, key, f"files[{i}].")
        path = f.get("path", str)
        try:
            check_file_path(path)
        except InvalidNameError as exc:
            raise f.fail("path", str(exc)) from None
        sha256 = f.get("sha256", str)
        if not check_sha256(sha256):
            raise f.fail("sha256", f"is not 64 lower-case hex digits: {sha256[:70]!r}")
        entries.append(FileEntry(path, f.integer("size", 0, 2**63 - 1), sha256))
    try:
        check_paths_round_trip([e.path for e in entries])
    except InvalidNameError as exc:
        raise CorruptRecordError(key, "files", str(exc)) from None
    return tuple(entries)


# --- the latest hint, states, markers ---------------------------------------------------------------


def parse_latest_hint(data: bytes | None) -> int | None:
    """The version ``latest.json`` names, or ``None`` when it is absent, unreadable or out of range.

    The hint is only ever a starting point for a listing, so a bad one is ignored (and replaced by
    the next upload), never trusted.
    """
    return LatestDocument.parse(data).hint


#: The most bytes a ``latest.json`` without a signed head holds, its place in the feed included (a
#: listing tells the two apart: a signed head takes over a kilobyte).
MAX_HINT_BYTES = 256
#: The highest serial number a signed pointer can hold (:class:`SignedPointer`).
MAX_SERIAL = 2**53


@dataclass(frozen=True)
class SignedPointer:
    """A signer's statement of where a pointer (latest, or a state) points, beside the pointer.

    ``envelope`` is a DSSE envelope of an in-toto statement naming the domain, the pointer, the
    version (with what identifies its record), a serial number and when; ``public_key`` names the
    signer (trust comes only from the reader's keys). Only the shape is checked here; whether it
    holds is :mod:`modelstore_core.pointers`' job.
    """

    keyid: str
    public_key: str
    envelope: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"keyid": self.keyid, "public_key": self.public_key, "envelope": self.envelope}

    @classmethod
    def parse(cls, obj: Any, key: str, where: str) -> SignedPointer:
        f = Fields(obj, key, where)
        keyid = f.get("keyid", str)
        if not is_keyid(keyid):
            raise f.fail("keyid", f"is not a key id: {keyid[:40]!r}")
        public_key = f.get("public_key", str)
        if not public_key.startswith("-----BEGIN PUBLIC KEY-----") or len(public_key) > 4096:
            raise f.fail("public_key", "is not a PEM public key")
        return cls(keyid, public_key, f.get("envelope", dict))

    def claims(self) -> dict[str, Any]:
        """The statement's predicate as it reads, its signature NOT checked (``{}`` if unreadable):
        for a writer, which serial to go past."""
        try:
            statement = json.loads(base64.b64decode(self.envelope.get("payload", ""), validate=True))
        except (ValueError, TypeError, RecursionError):
            return {}
        predicate = statement.get("predicate") if isinstance(statement, dict) else None
        return predicate if isinstance(predicate, dict) else {}

    def serial(self) -> int:
        """The serial the statement claims (unchecked; 0 when it names none)."""
        value = self.claims().get("serial")
        return value if type(value) is int and 0 <= value <= MAX_SERIAL else 0


def _signed_pointer(obj: dict[str, Any], key: str, where: str) -> SignedPointer | None:
    return None if obj.get("signed") is None else SignedPointer.parse(obj["signed"], key, f"{where}signed.")


def _count(value: Any, high: int) -> int | None:
    """``value`` when it is an integer in ``0..high``, else ``None`` (lenient reads of hints)."""
    return None if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high else value


@dataclass(frozen=True)
class LatestDocument:
    """``latest.json``: the hint ``{"version": n}`` every writer moves, and under it the signed head
    (``"signed"``: a :class:`SignedPointer` naming the latest version) that writers with a signing key
    move. A writer without one moves the hint and keeps the head as it is.

    ``"feed"`` holds the domain's place in the change feed (:mod:`.feed`): ``seq``, a slot of the
    feed at or before its end (where a writer lists from), and ``settled``, the highest version
    number whose claim, and every claim before it, has its event in the feed or never will
    (``None``: a domain from before the feed, whose versions up to the hint have no events)."""

    hint: int | None
    #: the signed head as stored (kept verbatim by writers that do not sign)
    signed: dict[str, Any] | None = None
    feed_seq: int = 0
    settled: int | None = None

    @classmethod
    def parse(cls, data: bytes | None) -> LatestDocument:
        """Leniently: a bad hint reads as ``None`` (it is never trusted), a bad feed place as none
        (a writer lists the feed from its start, and events are settled from the hint); the head is
        checked when used."""
        if data is None:
            return cls(None)
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            return cls(None)
        if not isinstance(doc, dict):
            return cls(None)
        hint = _count(doc.get("version"), MAX_VERSION)
        signed = doc.get("signed")
        feed = doc.get("feed") if isinstance(doc.get("feed"), dict) else {}
        return cls(
            hint,
            signed if isinstance(signed, dict) else None,
            _count(feed.get("seq"), MAX_SEQ) or 0,
            _count(feed.get("settled"), MAX_VERSION),
        )

    @property
    def settled_through(self) -> int:
        """``settled``, or for a domain from before the feed, its hint."""
        return self.settled if self.settled is not None else self.hint or 0

    def head(self, key: str) -> SignedPointer | None:
        """The signed head, its shape checked (:class:`CorruptRecordError`); ``None`` when there is none."""
        return None if self.signed is None else SignedPointer.parse(self.signed, key, "signed.")

    def to_bytes(self) -> bytes:
        feed = {"seq": self.feed_seq, "settled": self.settled} if self.feed_seq or self.settled is not None else None
        return dumps(
            {"version": self.hint, **({"signed": self.signed} if self.signed is not None else {}), **({"feed": feed} if feed else {})}
        )


@dataclass(frozen=True)
class StateEntry:
    """Where one state points, and when it was last moved; ``signed``: the mover's
    :class:`SignedPointer` as stored, when it had a signing key."""

    version: int
    updated: str
    signed: dict[str, Any] | None = field(default=None, compare=False)

    def pointer(self, key: str, name: str) -> SignedPointer | None:
        return None if self.signed is None else SignedPointer.parse(self.signed, key, f"states.{name[:40]}.signed.")


@dataclass(frozen=True)
class StatesDocument:
    """``states.json``: the states, and the signed removals of states (``"removed"``: state name ->
    the remover's :class:`SignedPointer` naming no version), kept so that a state set again later
    takes a serial past them.

    ``"feed"`` holds the domain's state moves on their way into the change feed (:mod:`.feed`):
    ``seq``, a slot at or before the feed's end, and ``pending``, the events of the last change
    written with the states themselves (so that a mover killed before it appended them loses none)."""

    states: dict[str, StateEntry]
    removed: dict[str, dict[str, Any]] = field(default_factory=dict)
    feed_seq: int = 0
    pending: tuple[Change, ...] = ()

    @classmethod
    def parse(cls, data: bytes | None, key: str) -> StatesDocument:
        """``{"states": {name: {"version": n, "updated": iso, "signed"?}}, "removed"?: {name: signed},
        "feed"?: {"seq": n, "pending": [change...]}}`` (empty when absent)."""
        if data is None:
            return cls({})
        top = Fields(load_json(data, key), key)
        states = {}
        for name, entry in top.get("states", dict).items():
            f = Fields(entry, key, f"states.{name[:40]}.")
            try:
                check_name(name, "state name")
            except InvalidNameError as exc:
                raise CorruptRecordError(key, f"states.{name[:40]}", str(exc)) from None
            signed = f.get("signed", dict, required=False)
            states[name] = StateEntry(f.integer("version", 1, MAX_VERSION), f.time("updated"), signed)
        removed = {}
        for name, signed in top.get("removed", dict, required=False, default={}).items():
            if not isinstance(signed, dict):
                raise CorruptRecordError(key, f"removed.{name[:40]}", f"is a {kind_of(signed)}, not a signed statement")
            removed[name] = signed
        feed = Fields(top.get("feed", dict, required=False, default={}), key, "feed.")
        items = feed.get("pending", list, required=False, default=[])
        if len(items) > MAX_PENDING:
            raise feed.fail("pending", f"holds {len(items)} events, more than {MAX_PENDING}")
        pending = tuple(Change.parse(item, key, f"feed.pending[{i}].") for i, item in enumerate(items))
        seq = feed.integer("seq", 0, MAX_SEQ) if "seq" in feed.obj else 0
        return cls(states, removed, seq, pending)

    def to_bytes(self) -> bytes:
        states = {
            name: {"version": s.version, "updated": s.updated, **({"signed": s.signed} if s.signed is not None else {})}
            for name, s in sorted(self.states.items())
        }
        feed = {"seq": self.feed_seq, "pending": [c.to_json() for c in self.pending]} if self.feed_seq or self.pending else None
        return dumps(
            {
                "states": states,
                **({"removed": dict(sorted(self.removed.items()))} if self.removed else {}),
                **({"feed": feed} if feed else {}),
            }
        )


def parse_states(data: bytes | None, key: str) -> dict[str, StateEntry]:
    """The states of ``states.json`` (``{}`` when absent): :meth:`StatesDocument.parse`."""
    return StatesDocument.parse(data, key).states


# --- the change feed -------------------------------------------------------------------------------

#: What an event of the change feed says happened (:mod:`.feed`).
EVENT_KINDS = ("uploaded", "copied", "deleted", "state_set", "state_removed", "signed")
#: The event document format written by this release.
EVENT_SCHEMA = 1
#: At most this many events wait in ``states.json`` (a change sets or removes a few states).
MAX_PENDING = 256
_EVENT_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Change:
    """A change on its way into the feed: its event, and ``after``, a slot of the feed that existed
    before the change was committed (its event can only be in a later one: :mod:`.feed`). ``id``
    names the change: no two changes share one, and an event holds its change's."""

    event: str
    domain: str
    version: int | None
    state: str | None
    id: str
    after: int
    #: when the writer made it, by its clock: shown to people, never used to order anything
    time: str = field(default_factory=lambda: now_utc())

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "domain": self.domain,
            "version": self.version,
            "state": self.state,
            "id": self.id,
            "after": self.after,
            "time": self.time,
        }

    def event_document(self, seq: int) -> bytes:
        """The bytes of its event in slot ``seq``."""
        return dumps(Event(seq, self.event, self.domain, self.version, self.state, self.time, self.id).to_json())

    @classmethod
    def parse(cls, obj: Any, key: str, where: str = "") -> Change:
        f = Fields(obj, key, where)
        event, domain, version, state, ident, time = _event_fields(f)
        return cls(event, domain, version, state, ident, f.integer("after", 0, MAX_SEQ), time)


@dataclass(frozen=True)
class Event:
    """``feed/<block>/<seq>.json``: one event of the change feed."""

    seq: int
    #: one of :data:`EVENT_KINDS`
    event: str
    domain: str
    #: the version it concerns (``None``: a whole domain deleted)
    version: int | None
    #: the state moved (``state_set``, ``state_removed``), else ``None``
    state: str | None
    #: when the writer made the change, by its clock: shown, never used to order anything (``seq`` does)
    time: str
    #: the change's id (two slots never hold the same one)
    id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": EVENT_SCHEMA,
            "seq": self.seq,
            "event": self.event,
            "domain": self.domain,
            "version": self.version,
            "state": self.state,
            "time": self.time,
            "id": self.id,
        }

    @classmethod
    def parse(cls, data: bytes, key: str, seq: int) -> Event:
        """Validate the event read from ``key``, which must be slot ``seq``."""
        f = Fields(load_json(data, key), key)
        schema = f.get("schema", int)
        if schema > EVENT_SCHEMA:
            raise f.fail("schema", f"is {schema}: written by a newer modelstore; upgrade modelstore-core to read it")
        if f.integer("seq", 1, MAX_SEQ) != seq:
            raise f.fail("seq", f"is {f.obj['seq']} but the event is stored as number {seq}")
        event, domain, version, state, ident, time = _event_fields(f)
        return cls(seq, event, domain, version, state, time, ident)


def _event_fields(f: Fields) -> tuple[str, str, int | None, str | None, str, str]:
    event = f.get("event", str)
    if event not in EVENT_KINDS:
        raise f.fail("event", f"is {event[:40]!r}, not one of {', '.join(EVENT_KINDS)}")
    domain = f.name("domain", "domain name")
    version = f.integer("version", 1, MAX_VERSION) if f.obj.get("version") is not None else None
    state = f.name("state", "state name") if f.obj.get("state") is not None else None
    if (state is not None) != event.startswith("state_") or (version is None and event != "deleted"):
        raise f.fail("event", f"is {event!r} with {'a' if state is not None else 'no'} state and {'a' if version else 'no'} version")
    ident = f.get("id", str)
    if not _EVENT_ID.fullmatch(ident):
        raise f.fail("id", "is not 32 lower-case hex digits")
    return event, domain, version, state, ident, f.time("time")


@dataclass(frozen=True)
class UploadMarker:
    """``uploads/<id>.json``: an upload (or a copy) and the objects it stores. Its writer re-writes it
    every ``heartbeat`` seconds while it runs (:mod:`.liveness`); ``started``, ``host`` and ``pid``
    are for people reading it, never used to decide whether it is live."""

    domain: str
    started: str
    host: str
    pid: int
    objects: tuple[str, ...]
    #: seconds between the writer's heartbeats (a marker from before heartbeats has none: 60)
    heartbeat: float = 60.0
    #: the version the upload committed, once it has: the marker then stays a grace (``gc`` reads that
    #: version's record, in case it committed after gc listed the records), and is removed quietly
    version: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "started": self.started,
            "host": self.host,
            "pid": self.pid,
            "heartbeat": self.heartbeat,
            "objects": list(self.objects),
            **({"version": self.version} if self.version is not None else {}),
        }

    @classmethod
    def parse(cls, data: bytes, key: str) -> UploadMarker:
        f = Fields(load_json(data, key), key)
        objects = f.get("objects", list)
        if not all(check_sha256(o) for o in objects):
            raise f.fail("objects", "holds something that is not a sha256")
        heartbeat = f.get("heartbeat", int, float, required=False, default=60.0)
        if not 0 < heartbeat <= 86_400:
            raise f.fail("heartbeat", f"is {heartbeat}, not a number of seconds between 0 and 86400")
        domain, started, host, pid = f.get("domain", str), f.time("started"), f.get("host", str), f.integer("pid", 0, 2**31)
        version = f.integer("version", 1, MAX_VERSION) if f.obj.get("version") is not None else None
        return cls(domain, started, host, pid, tuple(objects), float(heartbeat), version)


@dataclass(frozen=True)
class GCRunDocument:
    """``gc/<id>.json``: a ``gc`` run in progress (re-written every heartbeat, deleted when it ends).
    An upload that finds one waits until ``window`` seconds after its own marker was written before
    it checks that its objects are all there (:func:`~.commit.ensure_objects`): the run re-lists
    upload markers at least that often while it deletes."""

    started: str
    host: str
    heartbeat: float
    window: float
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        return {"started": self.started, "host": self.host, "heartbeat": self.heartbeat, "window": self.window, "dry_run": self.dry_run}

    @classmethod
    def parse(cls, data: bytes, key: str) -> GCRunDocument:
        f = Fields(load_json(data, key), key)
        heartbeat, window = f.get("heartbeat", int, float), f.get("window", int, float)
        for name, value in (("heartbeat", heartbeat), ("window", window)):
            if not 0 < value <= 3600:
                raise f.fail(name, f"is {value}, not a number of seconds between 0 and 3600")
        return cls(f.time("started"), f.get("host", str), float(heartbeat), float(window), f.get("dry_run", bool))


# --- signatures ------------------------------------------------------------------------------------

#: The signature document format written by this release.
SIGNATURE_SCHEMA = 1


@dataclass(frozen=True)
class SignatureDocument:
    """``domains/<domain>/signatures/<n>/<keyid>.json``: one signer's two signatures of a version.

    Only the shape is checked here; whether the signatures hold (and for which key) is
    :mod:`modelstore_core.signing`'s job. ``public_key`` is the signer's key as the document claims
    it: it names the signer and lets ``verify`` check the document on its own, but trust comes only
    from the keys the reader configured, never from a document.
    """

    domain: str
    version: int
    keyid: str
    public_key: str
    signed: str
    #: the OpenSSF model-signing bundle (a sigstore bundle, as JSON), over the file manifest
    bundle: dict[str, Any]
    #: a DSSE envelope over the record fields that decide what runs (in-toto Statement v1)
    envelope: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SIGNATURE_SCHEMA,
            "domain": self.domain,
            "version": self.version,
            "keyid": self.keyid,
            "public_key": self.public_key,
            "signed": self.signed,
            "model_signing_bundle": self.bundle,
            "record_envelope": self.envelope,
        }

    @classmethod
    def parse(cls, data: bytes, key: str, domain: str, version: int, keyid: str) -> SignatureDocument:
        """Validate the document read from ``key``, which must name ``domain``/``version``/``keyid``."""
        top = Fields(load_json(data, key), key)
        _check_identity(top, SIGNATURE_SCHEMA, domain, version, "signature")
        found = top.get("keyid", str)
        if not is_keyid(found) or found != keyid:
            raise top.fail("keyid", f"is {found[:40]!r} but the signature is stored under key id {keyid}")
        public_key = top.get("public_key", str)
        if not public_key.startswith("-----BEGIN PUBLIC KEY-----") or len(public_key) > 4096:
            raise top.fail("public_key", "is not a PEM public key")
        bundle = top.get("model_signing_bundle", dict)
        envelope = top.get("record_envelope", dict)
        return cls(domain, version, found, public_key, top.time("signed"), bundle, envelope)

"""The JSON documents of a store as typed values, validated whenever they are read.

Everything read back from a store is untrusted: a bucket is written by a whole team, a disk can go
bad. Each document is parsed here, once, into frozen values; a document that breaks a rule raises
:class:`~modelstore_core.errors.CorruptRecordError` naming its key and the field, and the rest
of the core trusts what these parsers return.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import CorruptRecordError, InvalidNameError
from ..flavor import PARTS, RAW_FILES, Flavor
from ..metrics import metric_problem, param_problem
from ..names import check_file_path, check_name, check_paths_round_trip
from .keys import MAX_VERSION, is_keyid

#: The version record format written by this release; older ones load, newer ones are refused.
SCHEMA = 1
#: Top-level keys of a version record that the core writes; every other one comes from a plugin.
CORE_KEYS = (
    "schema",
    "domain",
    "version",
    "created",
    "flavor",
    "files",
    "tags",
    "dependencies",
    "git",
    "runtime",
    "metrics",
    "params",
    "signature",
    "data",
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Flavors a part cannot have: parts do not nest, and raw files are not a model.
NOT_A_PART = (PARTS, RAW_FILES)


def dumps(obj: Any) -> bytes:
    """The bytes of a document as stored: sorted keys (deterministic), strict JSON (NaN refused)."""
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False).encode()


def now_utc() -> str:
    """The current time as stored in documents: ISO 8601, UTC, microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# --- reading helpers -------------------------------------------------------------------------


def load_json(data: bytes, key: str) -> Any:
    """The JSON document in ``data``, or :class:`CorruptRecordError`.

    ``NaN``/``Infinity`` are accepted (older records may hold them in plugin metadata); every field
    the core acts on is type-checked, so they can never stand for a number the core uses.
    """
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CorruptRecordError(key, None, f"is not valid JSON ({' '.join(str(exc).split())[:80]})") from None


class _Fields:
    """Typed access to one JSON object's fields, each failure naming the key and the field."""

    def __init__(self, obj: Any, key: str, prefix: str = ""):
        if not isinstance(obj, dict):
            raise CorruptRecordError(key, prefix.rstrip(".") or None, f"is a {_kind(obj)}, not an object")
        self.obj, self.key, self.prefix = obj, key, prefix

    def fail(self, name: str, problem: str) -> CorruptRecordError:
        return CorruptRecordError(self.key, self.prefix + name, problem)

    def get(self, name: str, *types: type, required: bool = True, default: Any = None) -> Any:
        if name not in self.obj:
            if required:
                raise self.fail(name, "is missing")
            return default
        value = self.obj[name]
        if value is None and not required:
            return default
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            want = " or ".join(t.__name__ for t in types)
            raise self.fail(name, f"is a {_kind(value)}, not a {want}")
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        value = self.get(name, int)
        if not low <= value <= high:
            raise self.fail(name, f"is {value}, outside {low}..{high}")
        return value

    def time(self, name: str) -> str:
        value = self.get(name, str)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(name, f"is not an ISO 8601 time: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise self.fail(name, "has no time zone")
        return value

    def name(self, name: str, what: str) -> str:
        value = self.get(name, str)
        try:
            return check_name(value, what)
        except InvalidNameError as exc:
            raise self.fail(name, str(exc)) from None


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "integer", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _check_identity(top: _Fields, newest_schema: int, domain: str, version: int, what: str) -> None:
    """A document's schema is one this release reads, and it names the domain and version its key does."""
    schema = top.get("schema", int)
    if schema > newest_schema:
        raise top.fail("schema", f"is {schema}: written by a newer modelstore; upgrade modelstore-core to read it")
    if top.get("domain", str) != domain:
        raise top.fail("domain", f"is {top.obj['domain'][:60]!r} but the {what} is stored under domain {domain!r}")
    if top.integer("version", 1, MAX_VERSION) != version:
        raise top.fail("version", f"is {top.obj['version']} but the {what} is stored under version {version}")


def check_sha256(value: str) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


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
    included); the typed fields are the parts the core acts on, validated.
    """

    domain: str
    version: int
    created: datetime
    flavor: Flavor
    files: tuple[FileEntry, ...]
    tags: dict[str, Any]
    document: dict[str, Any] = field(repr=False, compare=False)
    #: how good the version is: name -> finite number (:mod:`modelstore_core.metrics`)
    metrics: dict[str, float] = field(default_factory=dict)
    #: the settings that made it: name -> string, finite number, boolean or None
    params: dict[str, Any] = field(default_factory=dict)
    #: what the model expects as input (:mod:`modelstore_core.input_signature`), when known
    signature: dict[str, Any] | None = None
    #: fingerprints of the datasets it was trained/evaluated on: name -> {kind, shape, dtypes, sha256...}
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
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
        top = _Fields(doc, key)
        _check_identity(top, SCHEMA, domain, version, "record")
        created = datetime.fromisoformat(top.time("created"))
        flavor = parse_flavor(top.get("flavor", dict), key)
        files = parse_files(top.get("files", list), key)
        parts = parse_parts(flavor, files, key) if flavor.name == PARTS else ()
        tags = top.get("tags", dict, required=False, default={})
        for name, value in tags.items():
            # Looser than at upload (another tool may have written newlines or escapes: the CLI
            # escapes what it prints), but a tag is always a scalar.
            if isinstance(value, (dict, list)) or value is None:
                raise CorruptRecordError(key, f"tags.{name[:40]}", f"is a {_kind(value)}, not a string, number or boolean")
        metrics = {name: float(value) for name, value in _entries(top, "metrics", metric_problem).items()}
        params = _entries(top, "params", param_problem)
        signature = top.get("signature", dict, required=False)
        if signature is not None:
            parse_signature(signature, key)
        data = top.get("data", dict, required=False, default={})
        for name, entry in data.items():
            parse_dataset(name, entry, key)
        return cls(domain, version, created, flavor, files, dict(tags), doc, metrics, params, signature, dict(data), parts)


def _entries(top: _Fields, section: str, problem_of) -> dict[str, Any]:
    """``metrics``/``params``: an object of names to values that ``problem_of`` accepts."""
    entries = top.get(section, dict, required=False, default={})
    for name, value in entries.items():
        if problem := problem_of(name, value):
            raise CorruptRecordError(top.key, f"{section}.{name[:40]}", problem)
    return dict(entries)


def parse_flavor(obj: dict[str, Any], key: str, prefix: str = "flavor.") -> Flavor:
    f = _Fields(obj, key, prefix)
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
        raise CorruptRecordError(key, "flavor.options.parts", f"is a {_kind(items)}, not a non-empty list of parts")
    parts: list[Part] = []
    for i, item in enumerate(items):
        f = _Fields(item, key, f"flavor.options.parts[{i}].")
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
        f = _Fields(item, key, f"files[{i}].")
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


# --- input signature and data fingerprints -------------------------------------------------------

#: Formats of an input signature: named columns of a table, or arrays/tensors (one, or a dict of them).
SIGNATURE_FORMATS = ("columns", "tensors")
#: Kinds of data a fingerprint describes.
DATASET_KINDS = ("dataframe", "array", "tensor", "file", "directory")
#: At most this many inputs (columns) in a signature, and this many characters in a name or dtype.
MAX_INPUTS = 100_000
MAX_TEXT = 1024


def _text(f: _Fields, name: str, *, required: bool = False) -> str | None:
    value = f.get(name, str, required=required)
    if value is not None and len(value) > MAX_TEXT:
        raise f.fail(name, f"is {len(value)} characters long, more than {MAX_TEXT}")
    return value


def _shape(f: _Fields, name: str) -> list[int | None] | None:
    """A shape: a list of sizes, each a non-negative integer or null (any size: the batch dimension)."""
    shape = f.get(name, list, required=False)
    if shape is not None and (len(shape) > 64 or not all(d is None or (type(d) is int and 0 <= d < 2**63) for d in shape)):
        raise f.fail(name, "is not a list of at most 64 sizes (non-negative integers or null)")
    return shape


def parse_signature(obj: dict[str, Any], key: str) -> None:
    """``signature``: ``{"format": "columns"|"tensors", "source": str, "inputs": [{name, dtype, shape,
    feature_type}...]}``: names, dtypes and shapes only, never data."""
    f = _Fields(obj, key, "signature.")
    if f.get("format", str) not in SIGNATURE_FORMATS:
        raise f.fail("format", f"is {obj['format'][:40]!r}, not one of {', '.join(SIGNATURE_FORMATS)}")
    _text(f, "source", required=True)
    inputs = f.get("inputs", list)
    if len(inputs) > MAX_INPUTS:
        raise f.fail("inputs", f"lists {len(inputs)} inputs, more than {MAX_INPUTS}")
    for i, item in enumerate(inputs):
        entry = _Fields(item, key, f"signature.inputs[{i}].")
        _text(entry, "name")
        _text(entry, "dtype")
        _text(entry, "feature_type")
        _shape(entry, "shape")


def parse_dataset(name: Any, obj: Any, key: str) -> None:
    """``data.<name>``: ``{"kind", "sha256", "shape", "columns", "dtypes", "bytes", "files"}`` (a fingerprint)."""
    try:
        check_name(name, "dataset name")
    except InvalidNameError as exc:
        raise CorruptRecordError(key, f"data.{str(name)[:40]}", str(exc)) from None
    f = _Fields(obj, key, f"data.{name}.")
    if f.get("kind", str) not in DATASET_KINDS:
        raise f.fail("kind", f"is {obj['kind'][:40]!r}, not one of {', '.join(DATASET_KINDS)}")
    if not check_sha256(f.get("sha256", str)):
        raise f.fail("sha256", "is not 64 lower-case hex digits")
    _shape(f, "shape")
    _text(f, "name")
    for listed in ("columns", "dtypes"):
        values = f.get(listed, list, required=False) or []
        if len(values) > MAX_INPUTS or not all(isinstance(v, str) and len(v) <= MAX_TEXT for v in values):
            raise f.fail(listed, f"is not a list of at most {MAX_INPUTS} strings")
    for count in ("bytes", "files"):
        if count in obj and obj[count] is not None:
            f.integer(count, 0, 2**63 - 1)


# --- the latest hint, states, markers ---------------------------------------------------------------


def parse_latest_hint(data: bytes | None) -> int | None:
    """The version ``latest.json`` names, or ``None`` when it is absent, unreadable or out of range.

    The hint is only ever a starting point for a listing, so a bad one is ignored (and replaced by
    the next upload), never trusted.
    """
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    value = doc.get("version") if isinstance(doc, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VERSION:
        return None
    return value


@dataclass(frozen=True)
class StateEntry:
    """Where one state points, and when it was last moved."""

    version: int
    updated: str


def parse_states(data: bytes | None, key: str) -> dict[str, StateEntry]:
    """``states.json``: ``{"states": {name: {"version": n, "updated": iso}}}`` (``{}`` when absent)."""
    if data is None:
        return {}
    top = _Fields(load_json(data, key), key)
    states = {}
    for name, entry in top.get("states", dict).items():
        f = _Fields(entry, key, f"states.{name[:40]}.")
        try:
            check_name(name, "state name")
        except InvalidNameError as exc:
            raise CorruptRecordError(key, f"states.{name[:40]}", str(exc)) from None
        states[name] = StateEntry(f.integer("version", 1, MAX_VERSION), f.time("updated"))
    return states


def states_document(states: dict[str, StateEntry]) -> bytes:
    return dumps({"states": {name: {"version": s.version, "updated": s.updated} for name, s in sorted(states.items())}})


@dataclass(frozen=True)
class UploadMarker:
    """``uploads/<id>.json``: an upload in progress and the objects it is about to store."""

    domain: str
    started: str
    host: str
    pid: int
    objects: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "started": self.started, "host": self.host, "pid": self.pid, "objects": list(self.objects)}

    @classmethod
    def parse(cls, data: bytes, key: str) -> UploadMarker:
        f = _Fields(load_json(data, key), key)
        objects = f.get("objects", list)
        if not all(check_sha256(o) for o in objects):
            raise f.fail("objects", "holds something that is not a sha256")
        return cls(f.get("domain", str), f.time("started"), f.get("host", str), f.integer("pid", 0, 2**31), tuple(objects))


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
        top = _Fields(load_json(data, key), key)
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

"""The summary of a domain: what ``find`` filters and sorts on, for every version, in a few objects.

``domains/<domain>/summary/<first>.json`` holds one entry per committed version ``first`` to
``first + 999`` (a *segment*, the span of one page of a version listing): its creation time,
flavor, file count and size, tags, metrics, params and git commit, and the byte size of its
record. A query of 1,000 versions then reads one listing and one segment instead of 1,000 records.

The records stay the truth; the summary is a cache that may lag or be damaged, and is never
trusted on its own:

* written after the record, under the same commit rules: an upload adds its entry once its record
  exists (compare-and-swap, retried under concurrent writers), a delete removes it once the record is
  gone; a crash in between, a lost race or a server that ignores conditional writes leaves it lagging;
* read against the version listing every time: only entries of listed versions are used, and only
  when the record's size in the listing is the one the entry recorded; every listed version without
  such an entry has its record read (concurrently);
* validated like every document read from a store: a segment that is not valid JSON, names another
  domain or range, breaks a field's type, or whose checksum does not match its entries, is rebuilt
  from the records; so is one whose entry disagrees with a record that had to be read anyway;
* repaired by the query that found it lagging (one conditional write per segment; a lost race is
  left for the next query). Each problem found is reported, none is fatal.

Records are immutable today; an operation that ever rewrites one (mutable tags) must call
:func:`add_entry` with the new record's size after writing it, or the next query takes the changed
record for damage and rebuilds the whole segment (correct, but reported as a problem).

The checksum catches damage and hand edits, not a forger (whoever can rewrite the summary can
rewrite the records too): ``find`` returns candidates, and what ``load`` uses is always the record;
``verify``, which reads every record anyway, compares each entry with it (:func:`check_summary`).
Against a forger there are signatures: a signer signs each entry it writes (``signatures``, over
:meth:`SummaryEntry.content`; :func:`add_entry`, :func:`sign_entry`), and a query under a trust
policy uses only entries whose signatures hold for a trusted key, else the record and its
signature documents (:mod:`modelstore_core.search`). Signatures survive a rebuild of their entry
when it says the same.

A segment is two lines: a header (schema, domain, first and last version, sha256 of the second
line) and the entries as one compact JSON list, so that an upload appends its entry without
decoding the others and a reader checks the checksum without encoding them again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import CorruptRecordError, DocumentTooLargeError, ModelStoreError
from ..fields import FIELDS
from ..names import tag_problem
from ..storage import ObjectInfo, Storage, Token
from . import keys, limits
from .cas import cas_update, read_document, write_document
from .keys import is_keyid
from .read import read_records
from .records import MAX_VERSION, VersionRecord, dumps
from .validate import Fields, kind_of, load_json

if TYPE_CHECKING:
    from ..signing import Signer

#: The summary segment format written by this release; a newer one is rebuilt, not read.
SUMMARY_SCHEMA = 1
#: A git commit as entries keep it: hex, at most a SHA-256 object name.
_COMMIT = re.compile(r"[0-9a-fA-F]{1,64}")


#: The fields a summary entry keeps: those ``find`` filters and sorts on (always there, maybe
#: empty), and those kept to be found without reading records (``parents``: there when not empty).
SEARCHED = tuple(f for f in FIELDS if f.search)
SUMMARIZED = tuple(f for f in FIELDS if f.search or f.summarized)


@dataclass(frozen=True)
class SummaryEntry:
    """What ``find`` knows of one version without reading its record. Each searched field of
    :data:`~modelstore_core.fields.FIELDS` (``tags``, ``metrics``, ``params``) is an attribute too,
    read from ``values``."""

    version: int
    created: datetime
    flavor: str
    format: str
    files: int
    size: int
    #: the value of each searched field, by name
    values: dict[str, dict[str, Any]]
    git_commit: str | None
    git_dirty: bool | None
    #: the size of the record object it was made from: a listing that shows another size means the
    #: record changed since, and the entry is not used
    record_bytes: int
    #: a ``parts`` version's models: part name -> flavor name (empty for other versions)
    parts: dict[str, str] = field(default_factory=dict)
    #: signers' signatures of the entry's :meth:`content` (``{"keyid", "sig"}``: the uploader's, and
    #: those who signed the version later), checked by a reader with a trust policy instead of the record's
    signatures: tuple[dict[str, str], ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, record: VersionRecord, record_bytes: int) -> SummaryEntry:
        """The entry of a validated record (``record_bytes``: the size of its stored object)."""
        git = record.document.get("git")
        commit = git.get("commit") if isinstance(git, dict) else None
        dirty = git.get("dirty") if isinstance(git, dict) else None
        return cls(
            version=record.version,
            created=record.created,
            flavor=record.flavor.name,
            format=record.flavor.format,
            files=len(record.files),
            size=record.size,
            values={f.name: record.values[f.name] for f in SUMMARIZED},
            git_commit=commit.lower() if _is_commit(commit) else None,
            git_dirty=dirty if isinstance(dirty, bool) else None,
            record_bytes=record_bytes,
            parts={part.name: part.flavor.name for part in record.parts},
        )

    @property
    def created_text(self) -> str:
        return self.created.isoformat(timespec="microseconds")

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created": self.created_text,
            "flavor": self.flavor,
            "format": self.format,
            "files": self.files,
            "size": self.size,
            **{name: value for name, value in self.values.items() if value or name in _SEARCHED_NAMES},
            "git": {"commit": self.git_commit, "dirty": self.git_dirty},
            "record_bytes": self.record_bytes,
            **({"parts": self.parts} if self.parts else {}),
            **({"signatures": list(self.signatures)} if self.signatures else {}),
        }

    def content(self) -> dict[str, Any]:
        """What the entry says of its version (all but the record's size and the signatures): what
        ``find`` filters and sorts by, and what signers sign."""
        return {k: v for k, v in self.to_json().items() if k not in ("record_bytes", "signatures")}

    def with_signature(self, signature: dict[str, str]) -> SummaryEntry:
        """This entry with ``signature`` added (replacing the same key's)."""
        kept = tuple(s for s in self.signatures if s["keyid"] != signature["keyid"])
        return replace(self, signatures=(*kept, signature))

    @classmethod
    def parse(cls, obj: Any, key: str, where: str) -> SummaryEntry:
        f = Fields(obj, key, where)
        values = {}
        for kept in SUMMARIZED:  # as in a record; a searched one always there (possibly empty)
            if kept.search:
                f.get(kept.name, dict)
            elif obj.get(kept.name) is None:
                values[kept.name] = kept.empty()
                continue
            try:
                values[kept.name] = kept.parse(obj[kept.name], key)
            except CorruptRecordError as exc:
                raise f.fail(exc.field or kept.name, exc.problem) from None
        git = Fields(f.get("git", dict), key, f"{where}git.")
        commit = git.get("commit", str, required=False)
        if commit is not None and (not _is_commit(commit) or commit != commit.lower()):
            raise git.fail("commit", f"is not a lower-case hex commit: {commit[:70]!r}")
        return cls(
            version=f.integer("version", 1, MAX_VERSION),
            created=datetime.fromisoformat(f.time("created")),
            flavor=f.name("flavor", "flavor name"),
            format=f.get("format", str),
            files=f.integer("files", 1, 2**31),
            size=f.integer("size", 0, 2**63 - 1),
            values=values,
            git_commit=commit,
            git_dirty=git.get("dirty", bool, required=False),
            record_bytes=f.integer("record_bytes", 0, 2**63 - 1),
            parts=_parts(f),
            signatures=_signatures(f),
        )


_SEARCHED_NAMES = frozenset(f.name for f in SEARCHED)

for _field in SUMMARIZED:  # entry.tags, entry.metrics, entry.params, entry.parents
    setattr(SummaryEntry, _field.name, property(lambda self, name=_field.name: self.values[name], doc=_field.doc))


def _parts(f: Fields) -> dict[str, str]:
    parts = f.get("parts", dict, required=False, default={})
    for name, flavor in parts.items():
        # a part name follows the domain-name rules, as a tag name does; its flavor is a plain string
        if problem := tag_problem(name, flavor) or (None if isinstance(flavor, str) else "is not a flavor name"):
            raise f.fail(f"parts.{name[:40]}", problem)
    return dict(parts)


#: At most this many signatures on one entry.
MAX_ENTRY_SIGNATURES = 8


def _signatures(f: Fields) -> tuple[dict[str, str], ...]:
    items = f.get("signatures", list, required=False, default=[])
    if len(items) > MAX_ENTRY_SIGNATURES:
        raise f.fail("signatures", f"holds {len(items)} signatures, more than {MAX_ENTRY_SIGNATURES}")
    for i, item in enumerate(items):
        entry = Fields(item, f.key, f"{f.prefix}signatures[{i}].")
        if not is_keyid(entry.get("keyid", str)):
            raise entry.fail("keyid", "is not a key id")
        if len(entry.get("sig", str)) > 200:
            raise entry.fail("sig", "is too long for a signature")
    return tuple({"keyid": item["keyid"], "sig": item["sig"]} for item in items)


def _is_commit(value: Any) -> bool:
    return isinstance(value, str) and _COMMIT.fullmatch(value) is not None


# --- segments ------------------------------------------------------------------------------------


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def segment_document(domain: str, first: int, entries: dict[int, SummaryEntry]) -> bytes:
    """Two lines: a header naming the segment, with the sha256 of the second, the entries (compact
    JSON: every query of the domain reads them). The checksum is over bytes, so checking it costs
    no re-encoding."""
    return _document(domain, first, _compact([entries[n].to_json() for n in sorted(entries)]), max(entries, default=0))


def _bounded(data: bytes) -> bytes:
    """A segment readers accept: one over :data:`~.limits.SEGMENT_BYTES` is not written (the summary
    lags for its versions, and queries read their records instead)."""
    if len(data) > limits.SEGMENT_BYTES:
        raise ModelStoreError(f"a summary segment of {len(data)} bytes is over the {limits.SEGMENT_BYTES} byte limit: not written")
    return data


def _document(domain: str, first: int, items: bytes, last: int) -> bytes:
    header = {"schema": SUMMARY_SCHEMA, "domain": domain, "first": first, "last": last, "sha256": hashlib.sha256(items).hexdigest()}
    return _compact(header) + b"\n" + items


def _appended(data: bytes, domain: str, first: int, entry: SummaryEntry) -> bytes | None:
    """``data`` with ``entry`` appended, when it is a sound segment whose entries all precede it (an
    upload's usual case), without decoding them: an upload then costs the same at any size. ``None``
    otherwise (the caller decodes it). Readers validate every entry anyway."""
    head, _, body = data.partition(b"\n")
    try:
        header = json.loads(head)
    except (ValueError, RecursionError):
        return None
    if not isinstance(header, dict) or header.get("sha256") != hashlib.sha256(body).hexdigest():
        return None
    last = header.get("last")
    if (header.get("schema"), header.get("domain"), header.get("first")) != (SUMMARY_SCHEMA, domain, first):
        return None
    if type(last) is not int or last >= entry.version or body[:1] != b"[" or body[-1:] != b"]":
        return None
    item = _compact(entry.to_json())
    return _document(domain, first, body[:-1] + (b"," if body != b"[]" else b"") + item + b"]", entry.version)


def parse_segment(data: bytes, key: str, domain: str, first: int) -> dict[int, SummaryEntry]:
    """The entries of the segment read from ``key`` (versions ``first`` to ``first + SPAN - 1`` of ``domain``)."""
    head, newline, body = data.partition(b"\n")
    top = Fields(load_json(head, key), key)
    schema = top.get("schema", int)
    if schema != SUMMARY_SCHEMA:
        raise top.fail("schema", f"is {schema}, not {SUMMARY_SCHEMA}")
    if top.get("domain", str) != domain:
        raise top.fail("domain", f"is {top.obj['domain'][:60]!r} but the summary is stored under domain {domain!r}")
    if top.integer("first", 1, MAX_VERSION) != first:
        raise top.fail("first", f"is {top.obj['first']} but the segment is stored as the one from version {first}")
    if top.get("sha256", str) != hashlib.sha256(body).hexdigest():
        raise top.fail("sha256", "does not match its entries (edited or damaged)")
    last = top.integer("last", 0, MAX_VERSION)
    items = load_json(body, key)
    if not isinstance(items, list):
        raise CorruptRecordError(key, "entries", f"is a {kind_of(items)}, not a list")
    entries: dict[int, SummaryEntry] = {}
    for i, item in enumerate(items):
        entry = SummaryEntry.parse(item, key, f"entries[{i}].")
        if not first <= entry.version < first + keys.SUMMARY_SPAN:
            raise CorruptRecordError(
                key, f"entries[{i}].version", f"is {entry.version}, outside this segment's {first}..{first + keys.SUMMARY_SPAN - 1}"
            )
        if entry.version in entries:
            raise CorruptRecordError(key, f"entries[{i}].version", f"is {entry.version} a second time")
        entries[entry.version] = entry
    if last != max(entries, default=0):
        raise top.fail("last", f"is {last}, but the newest entry is of version {max(entries, default=0)}")
    return entries


def _entries_or_none(data: bytes | None, key: str, domain: str, first: int) -> dict[int, SummaryEntry]:
    """A segment's entries for a writer; none when it is absent or unreadable (the next query reads
    the records it lacks and rebuilds it)."""
    if data is None:
        return {}
    try:
        return parse_segment(data, key, domain, first)
    except CorruptRecordError:
        return {}


def _update_segment(
    storage: Storage, domain: str, version: int, change: Callable[[dict[int, SummaryEntry]], dict[int, SummaryEntry] | None]
) -> None:
    """Apply ``change`` to the entries of the segment holding ``version`` (compare-and-swap, retried)."""
    first = keys.summary_first(version)
    key = keys.summary_key(domain, first)

    cas_update(
        storage,
        key,
        lambda entries: change(dict(entries)),
        parse=lambda data: _entries_or_none(data, key, domain, first),
        encode=lambda entries: _bounded(segment_document(domain, first, entries)),
        what=f"the summary of {domain!r}",
        limit=limits.SEGMENT_BYTES,
    )


def add_entry(storage: Storage, record: VersionRecord, record_bytes: int, signer: Signer | None = None) -> bool:
    """Add a just-committed version to its domain's summary (signed by ``signer``, if given). Best
    effort: ``False`` when it could not (the summary then lags, and the next query reads the record
    and repairs it)."""
    entry = SummaryEntry.of(record, record_bytes)
    if signer is not None:
        entry = entry.with_signature(signer.sign_entry(record.domain, entry))
    domain, first = record.domain, keys.summary_first(record.version)
    key = keys.summary_key(domain, first)

    def add(data: bytes | None) -> bytes:
        if data is not None and (appended := _appended(data, domain, first, entry)) is not None:
            return _bounded(appended)
        return _bounded(segment_document(domain, first, {**_entries_or_none(data, key, domain, first), entry.version: entry}))

    try:
        cas_update(storage, key, add, parse=lambda data: data, encode=lambda data: data, what=f"the summary of {domain!r}",
                   limit=limits.SEGMENT_BYTES)  # fmt: skip
    except (ModelStoreError, OSError):
        return False
    return True


def sign_entry(storage: Storage, record: VersionRecord, signer: Signer) -> bool:
    """Add ``signer``'s signature to the entry of ``record`` (a version signed after its upload),
    making the entry from the record if it is missing or says something else. Best effort, like
    :func:`add_entry`."""
    fresh = SummaryEntry.of(record, 0)

    def sign(entries: dict[int, SummaryEntry]) -> dict[int, SummaryEntry] | None:
        stored = entries.get(record.version)
        if stored is not None and stored.content() == fresh.content():
            entries[record.version] = stored.with_signature(signature)
        else:
            info = storage.stat(keys.version_key(record.domain, record.version))
            if info is None:
                return None  # deleted meanwhile
            entries[record.version] = replace(fresh, record_bytes=info.size or 0).with_signature(signature)
        return entries

    signature = signer.sign_entry(record.domain, fresh)
    try:
        _update_segment(storage, record.domain, record.version, sign)
    except (ModelStoreError, OSError):
        return False
    return True


def remove_entry(storage: Storage, domain: str, version: int) -> None:
    """Drop a deleted version's entry. Best effort: an entry left behind is never used (the version
    is not listed) and the next query that repairs its segment drops it."""

    def drop(entries: dict[int, SummaryEntry]) -> dict[int, SummaryEntry] | None:
        return {n: e for n, e in entries.items() if n != version} if version in entries else None

    try:
        _update_segment(storage, domain, version, drop)
    except (ModelStoreError, OSError):
        pass


def delete_summary(storage: Storage, domain: str) -> None:
    for info in list(storage.list(keys.summary_prefix(domain))):
        storage.delete(info.key)


# --- reading, against the listing ----------------------------------------------------------------

#: A segment as read: its bytes (``None``: absent or over its limit), its token, and why it cannot be used.
ReadSegment = tuple[bytes | None, Token, str | None]


def read_segment(storage: Storage, key: str) -> ReadSegment:
    """A segment's bytes and token; one over :data:`~.limits.SEGMENT_BYTES` reads as absent, with
    the problem to report (and the token its rebuild replaces it with)."""
    try:
        data, token = read_document(storage, key, limits.SEGMENT_BYTES, "a summary segment")
    except DocumentTooLargeError as exc:
        return None, exc.token, f"{exc.key} {exc.problem}"
    return data, token, None


def domain_entries(
    storage: Storage,
    domain: str,
    listed: list[tuple[int, ObjectInfo]],
    problems: list[str],
    read_already: dict[int, ReadSegment] | None = None,
    wanted: set[int] | None = None,
    listed_from: int = 1,
) -> dict[int, SummaryEntry]:
    """The entry of every listed version of ``domain`` (of those in ``wanted`` only, when given) whose
    record is valid: from the summary where it holds, from the record where it does not; segments
    found lagging or damaged are repaired. Each problem (a damaged segment, a corrupt record) is
    appended to ``problems``. ``read_already``: segments read while the listing ran (first version
    -> bytes and token). ``listed_from``: the lowest version number the listing covers (a listing
    of the newest versions only, ``ls -n``): entries below it are neither used nor dropped."""
    by_segment: dict[int, dict[int, ObjectInfo]] = {}
    for n, info in listed:
        by_segment.setdefault(keys.summary_first(n), {})[n] = info
    newest = max((n for n, _ in listed), default=0)
    firsts = sorted({keys.summary_first(n) for n, _ in listed if wanted is None or n in wanted})

    def one(first: int) -> dict[int, SummaryEntry]:
        segment = by_segment[first]
        want = set(segment) if wanted is None else wanted & set(segment)
        known = (read_already or {}).get(first)
        return _segment_entries(storage, domain, first, segment, want, (listed_from, newest), problems, known)

    if len(firsts) < 2:
        parts = [one(first) for first in firsts]
    else:
        from concurrent.futures import ThreadPoolExecutor

        from .read import READ_WORKERS

        with ThreadPoolExecutor(min(READ_WORKERS, len(firsts))) as pool:
            parts = list(pool.map(one, firsts))
    return {n: e for part in parts for n, e in part.items()}


def _segment_entries(
    storage: Storage,
    domain: str,
    first: int,
    listed: dict[int, ObjectInfo],
    wanted: set[int],
    covered: tuple[int, int],
    problems: list[str],
    known: ReadSegment | None,
) -> dict[int, SummaryEntry]:
    """The entries of the ``wanted`` versions among ``listed`` (this segment's versions in the
    listing; ``covered``: the range of version numbers the listing covers, up to the domain's
    newest listed version), and the segment repaired if needed."""
    low, newest = covered
    key = keys.summary_key(domain, first)
    data, token, oversized = known if known is not None else read_segment(storage, key)
    stored: dict[int, SummaryEntry] = {}
    rebuild = oversized is not None
    if oversized is not None:
        problems.append(f"{oversized}; rebuilt from the version records")
    if data is not None:
        try:
            stored = parse_segment(data, key, domain, first)
        except CorruptRecordError as exc:
            problems.append(f"{exc.key}: {exc.field + ' ' if exc.field else ''}{exc.problem}; rebuilt from the version records")
            rebuild = True
    usable = {n: stored[n] for n in wanted if n in stored and stored[n].record_bytes == listed[n].size}
    found = _entries_from_records(storage, domain, sorted(wanted - set(usable)), listed, problems, stored)
    if any(n in stored and stored[n].content() != e.content() for n, e in found.items()):
        # The summary disagrees with a record read anyway: none of its entries is trusted.
        problems.append(f"{key}: an entry does not match its version record; rebuilt from the version records")
        found.update(_entries_from_records(storage, domain, sorted(set(usable) - set(found)), listed, problems, stored))
        usable, rebuild = {}, True
    if found or rebuild or any(n not in listed and low <= n <= newest for n in stored):
        # Kept: entries of listed versions not wanted now (each is checked when used), of versions
        # newer than the listing (added since it was taken) or below what it covers. Dropped: those
        # of deleted versions.
        kept = {} if rebuild else {n: e for n, e in stored.items() if n in listed or not low <= n <= newest}
        try:
            write_document(storage, key, _bounded(segment_document(domain, first, {**kept, **found})), token)
        except (ModelStoreError, OSError):
            pass  # a cache: read-only credentials or a lost race leave it to the next query
    return {**usable, **found}


def _entries_from_records(
    storage: Storage,
    domain: str,
    versions: list[int],
    listed: dict[int, ObjectInfo],
    problems: list[str],
    stored: dict[int, SummaryEntry] | None = None,
) -> dict[int, SummaryEntry]:
    """Entries made from the records of ``versions`` (read concurrently); a corrupt record is reported
    and left out, a version deleted meanwhile too. The signatures of a ``stored`` entry that says
    the same are kept (each signs the content, which did not change)."""
    records, corrupt = read_records(storage, [(domain, n) for n in versions])
    problems.extend(f"skipped: {error}" for error in corrupt)
    return {r.version: _keep_signatures(SummaryEntry.of(r, listed[r.version].size or 0), stored) for r in records}


def _keep_signatures(entry: SummaryEntry, stored: dict[int, SummaryEntry] | None) -> SummaryEntry:
    old = (stored or {}).get(entry.version)
    if old is not None and old.signatures and old.content() == entry.content():
        return replace(entry, signatures=old.signatures)
    return entry


# --- verify ----------------------------------------------------------------------------------------


def check_summary(storage: Storage, domain: str, records: list[VersionRecord], *, repair: bool) -> list[tuple[int | None, str, str]]:
    """Compare every summary segment of ``domain`` with its valid ``records`` (all of them, read by
    ``verify``): ``(version or None, problem, what repair did)`` for each segment that cannot be read
    and each entry that disagrees with its record (a forged or damaged summary that ``find`` would
    trust). A summary that lags or keeps entries of deleted versions is no problem (``find`` reads
    past it); ``repair`` rewrites every segment that differs from the records in any way."""
    expected: dict[int, dict[int, SummaryEntry]] = {}
    for record in records:
        entry = SummaryEntry.of(record, len(dumps(record.document)))
        expected.setdefault(keys.summary_first(record.version), {})[record.version] = entry
    prefix = keys.summary_prefix(domain)
    stored_firsts = set()
    for info in storage.list(prefix):
        stem = info.key[len(prefix) :].removesuffix(".json")
        if len(stem) == keys.VERSION_DIGITS and stem.isdigit() and keys.summary_first(int(stem) or 1) == int(stem):
            stored_firsts.add(int(stem))
    found: list[tuple[int | None, str, str]] = []
    for first in sorted(stored_firsts | set(expected)):
        key = keys.summary_key(domain, first)
        data, token, oversized = read_segment(storage, key)
        want = expected.get(first, {})
        problems: list[tuple[int | None, str]] = [(None, oversized)] if oversized is not None else []
        stored: dict[int, SummaryEntry] = {}
        if data is not None:
            try:
                stored = parse_segment(data, key, domain, first)
            except CorruptRecordError as exc:
                problems.append((None, f"{exc.key}: {exc.field + ' ' if exc.field else ''}{exc.problem}"))
        problems += [
            (n, f"{key}: the entry of version {n} does not match its record")
            for n, entry in sorted(stored.items())
            if n in want and entry.content() != want[n].content()
        ]
        want = {n: _keep_signatures(entry, stored) for n, entry in want.items()}
        differs = data is None or problems or stored != want
        done = ""
        if repair and differs and (want or data is not None or oversized is not None):
            if want:
                try:
                    written = write_document(storage, key, _bounded(segment_document(domain, first, want)), token)
                except ModelStoreError:  # too large to store: queries read these records
                    storage.delete(key)
                    written = True
            else:
                storage.delete(key)
                written = True
            done = "rebuilt from the records" if written else "changed meanwhile: run verify --repair again"
        found += [(n, problem, done) for n, problem in problems]
    return found


__all__ = [
    "SummaryEntry",
    "add_entry",
    "check_summary",
    "delete_summary",
    "domain_entries",
    "parse_segment",
    "read_segment",
    "remove_entry",
    "segment_document",
]

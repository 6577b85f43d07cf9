"""``find``: versions filtered and sorted by what their summary holds, without reading every record.

A query is a list of filters (``"metrics.auc>0.9"``, ``"tags.team=risk"``) and sort keys
(``"-metrics.auc"``), over one domain or all. Each domain costs one listing of its versions, one read
per summary segment (1,000 versions each), one read of its states when a filter names a state, and
a record read only for a version the summary lacks or holds wrongly (:mod:`.protocol.summary`).
Over every domain of a small store (up to :data:`FLAT_LISTING_KEYS` keys under ``domains/``), one
listing of them all replaces the listing of the domains and of each one's versions. Under a trust
policy only signed data is filtered and sorted on (:func:`search`'s ``trust``).

Fields::

    version  created  flavor  format  files  size      the version and its record
    state                                               its states ("state=production")
    tags.NAME  metrics.NAME  params.NAME                what upload recorded
    git.commit  git.dirty                               the working tree it was trained in

Operators: ``=`` ``!=`` ``>`` ``>=`` ``<`` ``<=``, and ``~`` (contains) for text. A version
without the field (no such tag or metric, no git commit) never matches a filter on it, ``!=``
included, and sorts last in either direction. ``git.commit=abc123`` matches commits starting
with ``abc123``. Numbers compare as numbers, times as times (``created>2026-01-01``: a date alone
is midnight UTC; ``created=2026-01-01`` is that day); other values as text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .errors import DomainNotFoundError, UsageError
from .fields import FIELDS as RECORD_FIELDS
from .names import check_name
from .pointers import trusted_states
from .protocol import keys, read, summary
from .protocol.summary import SummaryEntry, domain_entries
from .storage import Storage

if TYPE_CHECKING:
    from .cache import SeenPointers
    from .signing import TrustPolicy
    from .store import ModelStore

OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "~")
#: Fields of their own, and the kind of value each holds.
FIELDS = {
    "version": "number",
    "created": "time",
    "flavor": "text",
    "format": "text",
    "files": "number",
    "size": "number",
    "state": "state",
    "git.commit": "commit",
    "git.dirty": "boolean",
}
#: Fields with a name after the dot (the searched record fields), and the kind of value each holds.
NAMED = {f.name: f.search for f in RECORD_FIELDS if f.search}
_ORDER = ("=", "!=", ">", ">=", "<", "<=")
_KIND_OPERATORS = {
    "number": _ORDER,
    "time": _ORDER,
    "text": ("=", "!=", "~"),
    "state": ("=", "!=", "~"),
    "commit": ("=", "!=", "~"),
    "boolean": ("=", "!="),
    "scalar": OPERATORS,
}
_EXPRESSION = re.compile(r"\s*(?P<field>[A-Za-z][A-Za-z0-9._-]*?)\s*(?P<op>!=|>=|<=|=|>|<|~)\s*(?P<value>.*?)\s*")
_MISSING = object()
#: A query of every domain first lists all of ``domains/`` at once, while that takes at most this
#: many keys (3 pages on S3: about 1,000 versions in all): one listing, instead of one per domain.
FLAT_LISTING_KEYS = 3000


def valid_fields() -> str:
    return ", ".join([*FIELDS, *(f"{name}.NAME" for name in NAMED)])


def _field_kind(name: str, text: str) -> str:
    if name in FIELDS:
        return FIELDS[name]
    section, dot, rest = name.partition(".")
    if section in NAMED and dot:
        try:
            check_name(rest, f"{section[:-1]} name")
        except Exception as exc:  # noqa: BLE001 - InvalidNameError, re-raised as the query's error
            raise UsageError(f"{text!r}: {exc}") from None
        return NAMED[section]
    raise UsageError(f"{text!r}: unknown field {name!r}; fields are {valid_fields()}")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _time(text: str, expression: str) -> tuple[datetime, datetime | None]:
    """A time, and for a date alone the end of that day."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{expression!r}: {text!r} is not a date or time (2026-01-31, 2026-01-31T12:00, 2026-01-31T12:00+02:00)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    day = len(text) == 10
    return value, value + timedelta(days=1) if day else None


@dataclass(frozen=True)
class Filter:
    """One parsed filter expression, e.g. ``metrics.auc>0.9``."""

    text: str
    field: str
    op: str
    value: Any
    kind: str
    #: for ``created`` given a date alone: the end of that day (``=`` matches the whole day)
    until: datetime | None = None

    @classmethod
    def parse(cls, text: str) -> Filter:
        if not isinstance(text, str):
            raise UsageError(f"a filter is a string like 'metrics.auc>0.9', not {type(text).__name__}")
        match = _EXPRESSION.fullmatch(text)
        if match is None:
            raise UsageError(
                f"{text!r} is not a filter: write FIELD OPERATOR VALUE, e.g. 'metrics.auc>0.9' or 'tags.team=risk'"
                f" (operators {' '.join(OPERATORS)}; fields {valid_fields()})"
            )
        name, op, raw = match["field"], match["op"], match["value"]
        kind = _field_kind(name, text)
        if op not in _KIND_OPERATORS[kind]:
            raise UsageError(f"{text!r}: {name} takes the operators {' '.join(_KIND_OPERATORS[kind])}, not {op}")
        if not raw:
            raise UsageError(f"{text!r}: no value after {op}")
        value: Any = raw
        until = None
        if kind == "number":
            value = _number(raw)
            if value is None:
                raise UsageError(f"{text!r}: {name} holds numbers, and {raw!r} is not one")
        elif kind == "time":
            value, until = _time(raw, text)
        elif kind == "boolean":
            if raw.lower() not in ("true", "false"):
                raise UsageError(f"{text!r}: {name} is true or false, not {raw!r}")
            value = raw.lower() == "true"
        elif kind == "commit":
            value = raw.lower()
        return cls(text, name, op, value, kind, until)

    def matches(self, entry: SummaryEntry, states: list[str] | None) -> bool:
        if self.kind == "state":
            found = states or []
            if self.op == "~":
                return any(self.value in s for s in found)
            return (self.value in found) == (self.op == "=")
        actual = field_value(entry, self.field)
        if actual is _MISSING:
            return False
        if self.kind == "commit":
            if self.op == "~":
                return self.value in actual
            return actual.startswith(self.value) == (self.op == "=")
        if self.kind == "time" and self.until is not None and self.op in ("=", "!="):
            return (self.value <= actual < self.until) == (self.op == "=")
        if self.kind == "time" and self.until is not None and self.op in (">", "<="):
            return _compare(actual, self.op, self.until - timedelta(microseconds=1))
        if self.kind == "scalar":
            return _compare_scalar(actual, self.op, self.value)
        if self.op == "~":
            return self.value in str(actual)
        return _compare(actual, self.op, self.value)


def _compare(actual: Any, op: str, wanted: Any) -> bool:
    if op == "=":
        return actual == wanted
    if op == "!=":
        return actual != wanted
    if op == ">":
        return actual > wanted
    if op == ">=":
        return actual >= wanted
    if op == "<":
        return actual < wanted
    return actual <= wanted


def _text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compare_scalar(actual: Any, op: str, raw: str) -> bool:
    """A tag or param against the text of a filter: as numbers when both are, else as text."""
    if op == "~":
        return raw in _text_of(actual)
    wanted = _number(raw)
    if isinstance(actual, (int, float)) and not isinstance(actual, bool) and wanted is not None:
        return _compare(actual, op, wanted)
    if op in ("=", "!="):
        return _compare(_text_of(actual), op, raw)
    if isinstance(actual, str) and wanted is None:
        return _compare(actual, op, raw)
    return False  # a number against text (or the reverse) has no order


def field_value(entry: SummaryEntry, name: str) -> Any:
    """The value of field ``name`` in ``entry``, or ``_MISSING``."""
    if name == "created":
        return entry.created
    if name == "git.commit":
        return entry.git_commit if entry.git_commit is not None else _MISSING
    if name == "git.dirty":
        return entry.git_dirty if entry.git_dirty is not None else _MISSING
    section, dot, rest = name.partition(".")
    if dot:
        value = entry.values[section].get(rest)
        return _MISSING if value is None else value
    return getattr(entry, name)


@dataclass(frozen=True)
class SortKey:
    """One sort key, e.g. ``-metrics.auc`` (descending)."""

    field: str
    descending: bool

    @classmethod
    def parse(cls, text: str) -> SortKey:
        if not isinstance(text, str) or not text.strip():
            raise UsageError(f"a sort key is a field name like 'created' or '-metrics.auc' (descending), not {text!r}")
        name = text.strip()
        descending = name.startswith("-")
        name = name.lstrip("+-")
        if _field_kind(name, text) == "state":
            raise UsageError(
                f"{text!r}: versions cannot be sorted by state; filter on it ('state=production'); fields are {valid_fields()}"
            )
        return cls(name, descending)

    def key(self, entry: SummaryEntry) -> tuple:
        value = field_value(entry, self.field)
        if isinstance(value, datetime):
            return (0, value.timestamp())
        if isinstance(value, (bool, int, float)):
            return (0, float(value))
        return (1, str(value))


def _listify(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


@dataclass
class Query:
    """A parsed query: filters, sort keys and a limit (every expression checked before any request)."""

    filters: list[Filter] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    limit: int | None = None

    @classmethod
    def parse(cls, where: str | Iterable[str] | None = None, sort: str | Iterable[str] | None = None, limit: int | None = None) -> Query:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise UsageError(f"limit must be a positive integer, not {limit!r}")
        return cls([Filter.parse(w) for w in _listify(where)], [SortKey.parse(s) for s in _listify(sort)], limit)

    @property
    def needs_states(self) -> bool:
        return any(f.kind == "state" for f in self.filters)


@dataclass(frozen=True)
class Hit:
    """A version that matched: its summary entry, and its states when they were read."""

    domain: str
    entry: SummaryEntry
    states: list[str] | None

    @property
    def version(self) -> int:
        return self.entry.version


@dataclass(frozen=True)
class Trust:
    """A trust policy for a query (:func:`search`), and this machine's memory of the signed pointers it saw."""

    policy: TrustPolicy
    seen: SeenPointers | None = None

    @classmethod
    def of(cls, store: ModelStore) -> Trust | None:
        """The trust policy of ``store`` (``None`` without one), with its user's memory of pointers."""
        policy = store.trust_policy
        return None if policy is None else cls(policy, store.cache.seen_pointers(store.url))


def search(
    storage: Storage,
    domain: str | None,
    query: Query,
    *,
    states: bool = False,
    problems: list[str] | None = None,
    from_latest: bool = False,
    trust: Trust | None = None,
) -> list[Hit]:
    """The versions of ``domain`` (every domain when ``None``) that match ``query``, in its order:
    by its sort keys, then domain, then newest first. ``states``: read every domain's states
    (otherwise only when a filter needs them). Problems found (a damaged summary, a corrupt record)
    are appended to ``problems``; none stops the query.

    ``from_latest`` (``ls DOMAIN -n N``): a query of one domain with a limit and no filter or sort
    pages from the latest hint instead of listing the domain: a constant cost at any size, but a
    few requests more than one listing for a domain of fewer than 1,000 versions (on S3: the hint,
    a listing from it, a listing window, the segment; locally a ``stat`` per version shown)."""
    problems = problems if problems is not None else []
    with_states = states or query.needs_states
    flat = None
    if domain is not None:
        check_name(domain, "domain name")
        domains = [domain]
    else:
        flat = read.every_version(storage, FLAT_LISTING_KEYS)
        domains = list(flat) if flat is not None else read.list_domains(storage)

    def one(name: str) -> list[Hit]:
        if flat is not None and not flat[name]:
            return []  # a domain without versions: nothing to read
        # Without filters or sort keys, only the newest `limit` versions can be shown (`ls -n 20`):
        # one domain then lists only those (from the latest hint), not the whole domain.
        only_newest = bool(query.limit) and not (query.filters or query.sort)
        page = from_latest and only_newest and flat is None
        with ThreadPoolExecutor(2) as pool:
            # Domain by domain, the first segment (versions 1 to 1,000) is read while the listing runs;
            # the states, when needed, while the rest is read.
            first = pool.submit(summary.read_segment, storage, keys.summary_key(name, 1)) if flat is None and not page else None
            states_read = pool.submit(_states, storage, name, trust) if with_states else None
            try:
                if flat is not None:
                    listed = flat[name]
                elif page:
                    listed = read.newest_versions(storage, name, query.limit)
                    if not listed and not read.domain_exists(storage, name):
                        raise DomainNotFoundError(name)
                else:
                    listed = read.list_versions(storage, name)
            except DomainNotFoundError:
                if domain is not None:
                    raise
                return []  # deleted meanwhile
            found: list[str] = []
            newest = {n for n, _ in listed[: query.limit]} if only_newest else None
            listed_from = min((n for n, _ in listed), default=1) if page else 1
            read_already = {1: first.result()} if first is not None else None
            entries = domain_entries(storage, name, listed, found, read_already, newest, listed_from)
            if trust is not None:
                entries = _signed_entries(storage, name, entries, trust.policy, found)
            by_version: dict[int, list[str]] = {}
            if states_read is not None:
                named, left_out = states_read.result()
                found.extend(left_out)
                for state, version in sorted(named.items()):
                    by_version.setdefault(version, []).append(state)
            problems.extend(found)
        hits = []
        for n in sorted(entries, reverse=True):
            states_of = by_version.get(n, []) if with_states else None
            if all(f.matches(entries[n], states_of) for f in query.filters):
                hits.append(Hit(name, entries[n], states_of))
        return hits

    if len(domains) < 2:
        results = [one(name) for name in domains]
    else:
        with ThreadPoolExecutor(min(read.READ_WORKERS, len(domains))) as pool:
            results = list(pool.map(one, domains))
    hits = [hit for part in results for hit in part]  # by domain, newest first
    for key in reversed(query.sort):
        present = [h for h in hits if field_value(h.entry, key.field) is not _MISSING]
        absent = [h for h in hits if field_value(h.entry, key.field) is _MISSING]
        present.sort(key=lambda h: key.key(h.entry), reverse=key.descending)
        hits = present + absent
    return hits[: query.limit] if query.limit is not None else hits


def _states(storage: Storage, domain: str, trust: Trust | None) -> tuple[dict[str, int], list[str]]:
    """The states of ``domain`` (``{name: version}``), under a trust policy those a trusted key
    vouches for, and what was left out."""
    if trust is None:
        return {name: entry.version for name, entry in read.read_states(storage, domain).items()}, []
    left_out: list[str] = []
    return trusted_states(storage, domain, trust.policy, trust.seen, left_out), left_out


def _signed_entries(
    storage: Storage, domain: str, entries: dict[int, SummaryEntry], policy: TrustPolicy, problems: list[str]
) -> dict[int, SummaryEntry]:
    """The entries that signed data backs: those whose own signatures satisfy ``policy``, and for the
    others the entry of the record, when the record's signatures do; the rest are left out."""
    out = {n: e for n, e in entries.items() if policy.entry_holds(domain, e)}
    unsigned = sorted(set(entries) - set(out))
    if not unsigned:
        return out
    records, _ = read.read_records(storage, [(domain, n) for n in unsigned])  # a corrupt record was reported already
    if len(records) < 2:
        held = [policy.holds(storage, r) for r in records]
    else:
        with ThreadPoolExecutor(min(read.READ_WORKERS, len(records))) as pool:
            held = list(pool.map(lambda r: policy.holds(storage, r), records))
    for record, ok in zip(records, held, strict=True):
        if ok:
            out[record.version] = SummaryEntry.of(record, entries[record.version].record_bytes)
    left_out = [n for n in unsigned if n not in out]
    if left_out:
        shown = ", ".join(map(str, left_out[:10])) + (f" and {len(left_out) - 10} more" if len(left_out) > 10 else "")
        need = "every trusted key" if policy.require == "all" else "a trusted key"
        problems.append(f"{domain}: left out {len(left_out)} version(s) not signed by {need}: {shown}")
    return out


__all__ = ["FIELDS", "NAMED", "OPERATORS", "Filter", "Hit", "Query", "SortKey", "Trust", "search"]

"""Retention: which versions of a domain to delete so that a store stops growing (``retain``).

A policy keeps, in each domain:

* the ``keep_last`` newest versions (by number; at least one: the latest is never deleted);
* with ``older_than``, also every version younger than that: a version goes only when it is both
  outside the newest ``keep_last`` and older;
* with ``keep_states`` (the default), every version a state names (any state in ``states.json``:
  under a trust policy, also one no trusted key vouches for);
* with ``keep_signed``, every version signed by a key the reader trusts (the store's trust policy;
  without one, by any key): a signed release is protected;
* the parents of every version kept (:mod:`.lineage`), in the domains the run looks at.

**Age** is judged by the store's own timestamps: the modification time the store gives a version's
record (when it was committed to this store: a copy's age starts when it was copied), against the
time the store gives a document written just before (``probes/``). Never the record's ``created``:
that is the uploader's clock, which can be hours off (a version from a machine whose clock runs
behind would look old and be deleted at once) and is written by whoever writes the record.

**Stored policies.** ``domains/<d>/retention.json`` (``{"schema": 1, "keep_last": N, "older_than":
seconds or null, "keep_states": bool, "keep_signed": bool}``) is read like every document of a store:
at most 64 KiB, validated (a policy that is not valid is reported, and nothing of its domain is
deleted). ``gc --apply`` applies every stored policy before it collects.

**Deleting** goes through :meth:`ModelStore.delete` (states first, signed removals with a signer, a
``deleted`` event in the change feed). What it frees: the objects the deleted versions name and no
version left in their domains does, reclaimed by the next ``gc`` (objects another domain also names
stay: the figure is at most what ``gc`` frees).

**Costs.** Per domain: the version listing, the summary (``find``'s: a read per 1,000 versions), the
states, a listing of the signatures with ``keep_signed``, and the records of the domain (for the
bytes freed: read concurrently); per version deleted, what a delete costs.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import CorruptRecordError, DomainNotFoundError, UsageError, VersionNotFoundError
from .lineage import parse_ref
from .protocol import keys, limits, read, summary
from .protocol.cas import read_document
from .protocol.liveness import store_now
from .protocol.validate import Fields, load_json

if TYPE_CHECKING:
    from .store import ModelStore

#: The policy document format written by this release.
POLICY_SCHEMA = 1
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s`` (or seconds), ``2w`` as a timedelta; :class:`UsageError` otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise UsageError(f"{text[:40]!r} is not a duration: give a number and a unit, e.g. 30d, 12h, 90m, 3600s or 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class RetentionPolicy:
    """What a domain keeps (see the module docstring)."""

    keep_last: int
    #: seconds: versions younger than this stay (``None``: age does not matter)
    older_than: float | None = None
    keep_states: bool = True
    keep_signed: bool = False

    @classmethod
    def of(cls, keep_last: Any, older_than: Any = None, keep_states: Any = True, keep_signed: Any = False) -> RetentionPolicy:
        """A policy from arguments (``older_than``: a timedelta or seconds), or :class:`UsageError`."""
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or not 1 <= keep_last <= keys.MAX_VERSION:
            raise UsageError(f"keep_last must be a number of versions, at least 1 (the latest is always kept), not {keep_last!r}")
        if isinstance(older_than, timedelta):
            older_than = older_than.total_seconds()
        if older_than is not None and (
            isinstance(older_than, bool) or not isinstance(older_than, (int, float)) or not 0 <= older_than < 1e11
        ):
            raise UsageError(f"older_than must be a timedelta (or seconds) of 0 or more, not {older_than!r}")
        for name, value in (("keep_states", keep_states), ("keep_signed", keep_signed)):
            if not isinstance(value, bool):
                raise UsageError(f"{name} must be True or False, not {value!r}")
        return cls(keep_last, None if older_than is None else float(older_than), keep_states, keep_signed)

    def to_json(self) -> dict[str, Any]:
        return {"schema": POLICY_SCHEMA, **asdict(self)}

    @classmethod
    def parse(cls, data: bytes, key: str) -> RetentionPolicy:
        """The policy stored at ``key``, validated (:class:`CorruptRecordError` naming the field)."""
        f = Fields(load_json(data, key), key)
        schema = f.get("schema", int)
        if schema > POLICY_SCHEMA:
            raise f.fail("schema", f"is {schema}: written by a newer modelstore; upgrade modelstore-core to apply it")
        unknown = sorted(set(f.obj) - {"schema", "keep_last", "older_than", "keep_states", "keep_signed"})
        if unknown:
            raise f.fail(unknown[0][:40], "is not a field of a retention policy")
        older = f.get("older_than", int, float, required=False)
        if older is not None and not 0 <= older < 1e11:
            raise f.fail("older_than", f"is {older}, not a number of seconds of 0 or more")
        return cls(
            f.integer("keep_last", 1, keys.MAX_VERSION),
            None if older is None else float(older),
            f.get("keep_states", bool, required=False, default=True),
            f.get("keep_signed", bool, required=False, default=False),
        )

    def describe(self) -> str:
        parts = [f"keep the last {self.keep_last}"]
        if self.older_than is not None:
            parts.append(f"and those younger than {timedelta(seconds=self.older_than)}")
        parts.append("and those a state names" if self.keep_states else "(states do not protect)")
        if self.keep_signed:
            parts.append("and signed ones")
        return " ".join(parts)


def read_policy(storage, domain: str) -> RetentionPolicy | None:
    """``domain``'s stored policy (``None``: none); :class:`CorruptRecordError` when it is not valid."""
    key = keys.retention_key(domain)
    data, _ = read_document(storage, key, limits.SMALL_BYTES, "a retention policy")
    return None if data is None else RetentionPolicy.parse(data, key)


def stored_policies(storage, domains: list[str], problems: list[str]) -> dict[str, RetentionPolicy]:
    """The stored policy of each of ``domains`` that has one (a read each); one that is not valid is
    reported in ``problems`` and its domain left alone."""
    found = {}
    for domain in domains:
        try:
            policy = read_policy(storage, domain)
        except CorruptRecordError as exc:
            problems.append(f"{domain}: left alone: its retention policy {exc.field + ' ' if exc.field else ''}{exc.problem} ({exc.key})")
            continue
        if policy is not None:
            found[domain] = policy
    return found


def write_policy(storage, domain: str, policy: RetentionPolicy | None) -> None:
    """Store ``domain``'s policy (``None``: remove it)."""
    if policy is None:
        storage.delete(keys.retention_key(domain))
    else:
        storage.put(keys.retention_key(domain), io.BytesIO(json.dumps(policy.to_json(), indent=1, sort_keys=True).encode()))


@dataclass
class DomainRetention:
    """What a policy does to one domain."""

    domain: str
    policy: RetentionPolicy
    #: versions kept and deleted (with ``dry_run``: to delete), newest first
    kept: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    #: versions kept only because something protects them: version -> why ("state production", "signed", "a parent...")
    protected: dict[int, list[str]] = field(default_factory=dict)
    #: the parents each kept version names (from the summary)
    parents: dict[int, list[str]] = field(default_factory=dict, repr=False)


@dataclass
class RetentionReport:
    """What ``retain`` deleted (or, with ``dry_run``, would delete)."""

    dry_run: bool
    domains: list[DomainRetention] = field(default_factory=list)
    #: bytes of the objects only the deleted versions name: what ``gc`` reclaims once they are gone
    bytes: int = 0
    #: what was left alone and why (an invalid stored policy, a corrupt record...)
    problems: list[str] = field(default_factory=list)

    @property
    def deleted(self) -> list[str]:
        return [f"{d.domain}:{n}" for d in self.domains for n in d.deleted]

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "bytes": self.bytes,
            "domains": [
                {
                    "domain": d.domain,
                    "policy": d.policy.to_json(),
                    "kept": d.kept,
                    "deleted": d.deleted,
                    "protected": {str(n): why for n, why in d.protected.items()},
                }
                for d in self.domains
            ],
            "problems": self.problems,
        }


def store_clock(storage) -> datetime:
    """The store's time now: the modification time it gives a document written for the purpose (then deleted)."""
    key = f"probes/now-{os.urandom(16).hex()}"
    storage.put(key, io.BytesIO(b"now"))
    try:
        return store_now(storage, key)
    finally:
        storage.delete(key)


def retain(
    store: ModelStore, policies: dict[str, RetentionPolicy], *, dry_run: bool = True, problems: list[str] | None = None
) -> RetentionReport:
    """Apply ``policies`` (domain -> policy): delete, or with ``dry_run`` only list, what each does not keep."""
    report = RetentionReport(dry_run=dry_run, problems=list(problems or []))
    if not policies:
        return report
    now = store_clock(store.storage) if any(p.older_than is not None for p in policies.values()) else None
    plans = []
    for domain, policy in sorted(policies.items()):
        try:
            plans.append(_plan(store, domain, policy, now, report.problems))
        except (DomainNotFoundError, CorruptRecordError) as exc:
            report.problems.append(f"{domain}: left alone: {exc}")
    # A version kept keeps its parents, in every domain looked at.
    named = {parse_ref(p) for plan in plans for n in plan.kept for p in plan.parents.get(n, ())}
    for plan in plans:
        for n in [n for n in plan.deleted if (plan.domain, n) in named]:
            plan.deleted.remove(n)
            plan.kept.append(n)
            plan.protected.setdefault(n, []).append("a parent of a version kept")
        plan.kept.sort(reverse=True)
        report.bytes += _freed(store, plan, report.problems)
        report.domains.append(plan)
    if not dry_run:
        for plan in plans:
            for n in plan.deleted:
                try:
                    store.delete(plan.domain, n)
                except (VersionNotFoundError, DomainNotFoundError):
                    pass  # deleted meanwhile
    return report


def _plan(store: ModelStore, domain: str, policy: RetentionPolicy, now: datetime | None, problems: list[str]) -> DomainRetention:
    storage = store.storage
    listed = read.list_versions(storage, domain)  # newest first
    plan = DomainRetention(domain, policy)
    # Every state in states.json protects, vouched for by a trusted key or not: keeping costs nothing, a delete is for good.
    states = {name: entry.version for name, entry in read.read_states(storage, domain).items()} if policy.keep_states and listed else {}
    signed = _signed(store, domain) if policy.keep_signed and listed else set()
    for i, (n, info) in enumerate(listed):
        if i < policy.keep_last:
            plan.kept.append(n)
            continue
        why = []
        if policy.older_than is not None and now is not None:
            if info.modified is None:  # a listing without times: its age is unknown, so it is not old
                why.append("no modification time from the store")
            elif (now - info.modified).total_seconds() < policy.older_than:
                plan.kept.append(n)
                continue
        why += [f"state {name}" for name, at in sorted(states.items()) if at == n]
        if n in signed:
            why.append("signed")
        if why:
            plan.kept.append(n)
            plan.protected[n] = why
        else:
            plan.deleted.append(n)
    if plan.deleted:  # the parents of what is kept, from the summary (find's: no record read for it)
        found: list[str] = []
        entries = summary.domain_entries(storage, domain, listed, found, wanted=set(plan.kept))
        problems.extend(f"{domain}: {p}" for p in found)
        plan.parents = {n: list(e.values.get("parents") or ()) for n, e in entries.items()}
    return plan


def _signed(store: ModelStore, domain: str) -> set[int]:
    """Versions of ``domain`` with a signature document by a key of the trust policy (any key without
    one). Documents are not checked here: a forged one keeps a version, and never deletes one."""
    policy = store.trust_policy
    trusted = set(policy.keys) if policy is not None else None
    found = set()
    for info in store.storage.list(keys.signatures_prefix(domain)):
        sig = keys.signature_from_key(info.key)
        if sig is not None and (trusted is None or sig[1] in trusted):
            found.add(sig[0])
    return found


def _freed(store: ModelStore, plan: DomainRetention, problems: list[str]) -> int:
    """Bytes of the objects the deleted versions name and no version kept in the domain does (records read concurrently)."""
    if not plan.deleted:
        return 0
    records, corrupt = read.read_records(store.storage, [(plan.domain, n) for n in plan.deleted + plan.kept])
    problems.extend(f"{plan.domain}: {error} (its files are counted as kept)" for error in corrupt)
    deleted = set(plan.deleted)
    kept = {f.sha256 for r in records if r.version not in deleted for f in r.files}
    sizes = {f.sha256: f.size for r in records if r.version in deleted for f in r.files}
    return sum(size for sha, size in sizes.items() if sha not in kept)


__all__ = ["DomainRetention", "RetentionPolicy", "RetentionReport", "parse_duration", "read_policy", "retain", "write_policy"]

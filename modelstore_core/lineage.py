"""Where a version came from and what came of it (:meth:`ModelStore.lineage`, ``modelstore lineage``).

A version names its parents when it is uploaded (``upload(..., parents=["churn:3"])``: a fine-tune,
a distilled model, a retrain), checked to exist then, and kept by copies (the record is copied byte
for byte). Its parents are read from the records, up the tree; its children are the versions that
name it, found in the domain summaries (``find``'s, one listing and a read per domain: no record is
read for that), then read. Each node shows what the records say of its origin: data fingerprints and
the git commit. A parent that is not in this store (deleted, or a copy's parent left in the source) is
shown as missing; a record naming a version twice on one path (written by hand) is shown once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import CorruptRecordError
from .protocol.read import read_records

if TYPE_CHECKING:
    from .protocol.records import VersionRecord
    from .store import ModelStore

#: Generations shown up and down from the version asked about.
MAX_DEPTH = 8


def parse_ref(ref: str) -> tuple[str, int]:
    """``("churn", 3)`` of ``"churn:3"`` (a validated ``parents`` entry)."""
    domain, _, number = ref.rpartition(":")
    return domain, int(number)


@dataclass
class LineageNode:
    """One version in a lineage tree."""

    domain: str
    version: int
    #: the version's record was found (a missing parent is deleted, or was never copied here)
    exists: bool
    created: datetime | None = None
    flavor: str | None = None
    #: data fingerprints: dataset name -> sha256
    data: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    git_dirty: bool | None = None
    parents: list[LineageNode] = field(default_factory=list)
    children: list[LineageNode] = field(default_factory=list)
    #: why the record could not be read, when it exists but is corrupt
    problem: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.domain}:{self.version}"

    @classmethod
    def of(cls, record: VersionRecord) -> LineageNode:
        git = record.document.get("git") if isinstance(record.document.get("git"), dict) else {}
        commit = git.get("commit")
        return cls(
            record.domain,
            record.version,
            True,
            record.created,
            record.flavor.name,
            {name: d["sha256"] for name, d in sorted(record.data.items())},
            commit if isinstance(commit, str) else None,
            git.get("dirty") if isinstance(git.get("dirty"), bool) else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "version": self.version,
            "exists": self.exists,
            "created": self.created.isoformat() if self.created else None,
            "flavor": self.flavor,
            "data": self.data,
            "git": {"commit": self.git_commit, "dirty": self.git_dirty},
            **({"problem": self.problem} if self.problem else {}),
            "parents": [p.to_json() for p in self.parents],
            "children": [c.to_json() for c in self.children],
        }


class _Records:
    """Records read once each, several at a time per generation."""

    def __init__(self, store: ModelStore):
        self.storage = store.storage
        self.found: dict[tuple[str, int], VersionRecord | str | None] = {}

    def read(self, refs: list[tuple[str, int]]) -> None:
        wanted = [ref for ref in dict.fromkeys(refs) if ref not in self.found]
        records, corrupt = read_records(self.storage, wanted)
        for ref in wanted:
            self.found[ref] = None
        for record in records:
            self.found[(record.domain, record.version)] = record
        for error in corrupt:
            self.found[_ref_of_error(error, wanted)] = str(error)

    def node(self, ref: tuple[str, int]) -> LineageNode:
        found = self.found.get(ref)
        if isinstance(found, str):
            return LineageNode(*ref, exists=True, problem=found)
        return LineageNode.of(found) if found is not None else LineageNode(*ref, exists=False)


def _ref_of_error(error: CorruptRecordError, wanted: list[tuple[str, int]]) -> tuple[str, int]:
    from .protocol import keys

    for ref in wanted:
        if error.key == keys.version_key(*ref):
            return ref
    return wanted[0]


def lineage(store: ModelStore, domain: str, version: int, depth: int = MAX_DEPTH, problems: list[str] | None = None) -> LineageNode:
    """The tree of ``domain``'s ``version``: its parents up to ``depth`` generations, and its
    children down as far. What the children search found wrong (a summary repaired...) goes to ``problems``."""
    root_record = store.info(domain, version).record
    records = _Records(store)
    records.found[(domain, version)] = root_record
    root = LineageNode.of(root_record)

    # Up: parents, a generation at a time.
    level = [(root, root_record)]
    seen = {(domain, version)}
    for _ in range(depth):
        refs = [parse_ref(p) for _, record in level for p in record.values.get("parents", [])]
        records.read([r for r in refs if r not in seen])
        following = []
        for node, record in level:
            for parent in record.values.get("parents", []):
                ref = parse_ref(parent)
                if ref in seen:
                    continue  # a cycle or a diamond: shown once
                seen.add(ref)
                child = records.node(ref)
                node.parents.append(child)
                found = records.found.get(ref)
                if not isinstance(found, (str, type(None))):
                    following.append((child, found))
        level = following
        if not level:
            break

    # Down: children, from the summaries of every domain.
    named_by: dict[tuple[str, int], list[tuple[str, int]]] = {}
    found_problems: list[str] = []
    for v in store.find(problems=found_problems):
        for parent in (v.summary.values.get("parents") if v.summary is not None else None) or []:
            named_by.setdefault(parse_ref(parent), []).append((v.domain, v.version))
    if problems is not None:
        problems.extend(found_problems)
    down = [root]
    seen = {(domain, version)}
    for _ in range(depth):
        refs = [c for node in down for c in named_by.get((node.domain, node.version), []) if c not in seen]
        records.read(refs)
        following = []
        for node in down:
            for ref in sorted(named_by.get((node.domain, node.version), [])):
                if ref in seen:
                    continue
                seen.add(ref)
                child = records.node(ref)
                node.children.append(child)
                following.append(child)
        down = following
        if not down:
            break
    return root

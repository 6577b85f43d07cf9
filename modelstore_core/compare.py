"""Several versions of a domain side by side: :meth:`ModelStore.compare` and ``modelstore compare``.

One row per metric, param, tag, the parents (each record field of :data:`~modelstore_core.fields.FIELDS`
compared), state, size, flavor field, dependency, git field and data fingerprint field, grouped
by section, with each version's value (``None`` where it has none).
Each metric row names its direction (``higher`` or ``lower`` is better) when it is known, and the
versions holding the best value.

The direction of a metric comes from its name: one of its words (split on ``_``, ``-``, ``.``)
is a known metric (``auc``, ``accuracy``, ``f1``, ``precision``, ``recall``, ``r2``... are better
higher; ``loss``, ``rmse``, ``mse``, ``mae``, ``error``... lower); a ``neg_`` prefix (scikit-learn's
scorers) turns a lower-is-better name into a higher-is-better one. ``directions`` overrides it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .fields import FIELDS
from .protocol.records import VersionRecord

#: Words of metric names whose higher values are better.
HIGHER = frozenset(
    "auc roc aucpr auprc prauc accuracy acc f1 fbeta precision recall r2 map ndcg mrr iou jaccard dice bleu rouge meteor"
    " sensitivity specificity tpr tnr mcc kappa top1 top5 hit hitrate ap coverage".split()
)
#: Words of metric names whose lower values are better.
LOWER = frozenset(
    "loss logloss rmse mse mae mape smape rmsle msle error err errors perplexity ppl wer cer brier fpr fnr latency"
    " deviance mad medae huber hinge nll crossentropy".split()
)
DIRECTIONS = ("higher", "lower")
#: The sections of a comparison, in the order they are shown: the record fields compared key by
#: key (metrics, params, tags), the version's own sections, then the fields compared per dataset.
SECTIONS = (
    *(f.name for f in FIELDS if f.compare in ("metric", "pairs", "list")),
    "states",
    "size",
    "flavor",
    "dependencies",
    "git",
    *(f.name for f in FIELDS if f.compare == "datasets"),
)


def metric_direction(name: str) -> str | None:
    """``"higher"``/``"lower"`` when the name says which is better, else ``None``."""
    words = [w for w in re.split(r"[_\-.\s]+", name.lower()) if w]
    negated = bool(words) and words[0] == "neg"
    higher = any(w in HIGHER for w in words)
    lower = any(w in LOWER for w in words)
    if higher == lower:
        return None
    direction = "higher" if higher else "lower"
    if negated:
        direction = "lower" if direction == "higher" else "higher"
    return direction


@dataclass
class Row:
    """One compared value: its key within the section, each version's value, and for a metric
    the direction and the indices (into ``Comparison.versions``) of the best values."""

    key: str
    values: list[Any]
    direction: str | None = None
    best: list[int] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        present = [repr(v) for v in self.values]
        return len(set(present)) > 1

    def to_json(self, versions: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "values": self.values, "differs": self.differs}
        if self.direction is not None or self.best:
            out["direction"] = self.direction
            out["best"] = [versions[i] for i in self.best]
        return out


@dataclass
class Comparison:
    """What :meth:`ModelStore.compare` returns: ``versions`` and, per section, its rows."""

    domain: str
    versions: list[int]
    sections: dict[str, list[Row]]

    def row(self, section: str, key: str) -> Row:
        for row in self.sections.get(section, []):
            if row.key == key:
                return row
        raise KeyError(f"{section}.{key}")

    def best(self, metric: str) -> list[int]:
        """The versions holding the best value of ``metric`` (empty when its direction is unknown)."""
        row = self.row("metrics", metric)
        return [self.versions[i] for i in row.best]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: ``{"domain", "versions", "sections": {section: [{"key", "values", "differs", "direction", "best"}]}}``."""
        return {
            "domain": self.domain,
            "versions": self.versions,
            "sections": {name: [row.to_json(self.versions) for row in rows] for name, rows in self.sections.items()},
        }


def check_directions(directions: Any) -> dict[str, str]:
    if directions is None:
        return {}
    if not isinstance(directions, dict) or not all(isinstance(k, str) and v in DIRECTIONS for k, v in directions.items()):
        raise UsageError(f"directions must map metric names to 'higher' or 'lower', not {directions!r:.80}")
    return dict(directions)


def compare_records(records: list[VersionRecord], states: dict[str, int], directions: dict[str, str] | None = None) -> Comparison:
    """Build the comparison of ``records`` (in the order given); ``states`` maps state names to versions."""
    directions = check_directions(directions)
    versions = [r.version for r in records]
    sections: dict[str, list[Row]] = {}

    def add(section: str, key: str, values: list[Any], **extra: Any) -> None:
        if all(v is None for v in values):  # recorded by none of them (git outside a repository...)
            return
        sections.setdefault(section, []).append(Row(key, values, **extra))

    for f in FIELDS:
        values = [r.values[f.name] or {} for r in records]
        if f.compare == "metric":
            for name in _keys(values):
                direction = directions.get(name) or metric_direction(name)
                recorded = [
                    r.document[f.name][name] if name in v else None for r, v in zip(records, values, strict=True)
                ]  # an int stays an int
                add(f.name, name, recorded, direction=direction, best=_best([v.get(name) for v in values], direction))
        elif f.compare == "pairs":
            for name in _keys(values):
                add(f.name, name, [v.get(name) for v in values])
        elif f.compare == "list":
            add(f.name, f.name, [list(v) or None for v in values])
    by_version: dict[int, list[str]] = {}
    for state, version in sorted(states.items()):
        by_version.setdefault(version, []).append(state)
    add("states", "states", [by_version.get(v, []) for v in versions])
    add("size", "bytes", [r.size for r in records])
    add("size", "files", [len(r.files) for r in records])
    for key, get in (
        ("name", lambda r: r.flavor.name),
        ("format", lambda r: r.flavor.format),
        ("class", lambda r: r.flavor.model_class),
        ("framework", lambda r: _model(r).get("framework")),
        ("framework_version", lambda r: _model(r).get("framework_version")),
        ("plugin", lambda r: r.flavor.plugin),
        ("plugin_version", lambda r: r.flavor.plugin_version),
        ("python", lambda r: _section(r, "runtime").get("python")),
    ):
        add("flavor", key, [_scalar(get(r)) for r in records])
    for name in _keys(_section(r, "dependencies") for r in records):
        add("dependencies", name, [_scalar(_section(r, "dependencies").get(name)) for r in records])
    for key in ("commit", "dirty", "branch"):
        add("git", key, [_scalar(_section(r, "git").get(key)) for r in records])
    for f in FIELDS:
        if f.compare == "datasets":
            values = [r.values[f.name] or {} for r in records]
            for name in _keys(values):
                for key in ("kind", "sha256", "shape", "columns", "bytes"):
                    add(f.name, f"{name}.{key}", [(v.get(name) or {}).get(key) for v in values])
    return Comparison(records[0].domain if records else "", versions, {s: sections[s] for s in SECTIONS if s in sections})


def _keys(dicts) -> list[str]:
    found: dict[str, None] = {}
    for d in dicts:
        found.update(dict.fromkeys(d))
    return sorted(found)


def _best(values: list[float | None], direction: str | None) -> list[int]:
    present = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if direction is None or not present:
        return []
    pick = max if direction == "higher" else min
    target = pick(v for _, v in present)
    return [i for i, v in present if v == target]


def _section(record: VersionRecord, name: str) -> dict[str, Any]:
    value = record.document.get(name)
    return value if isinstance(value, dict) else {}


def _model(record: VersionRecord) -> dict[str, Any]:
    return _section(record, "model")


def _scalar(value: Any) -> Any:
    """A value from the untrusted, unchecked part of a record: scalars as they are, else their text."""
    if value is None or isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return str(value)[:200]

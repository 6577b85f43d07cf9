"""How values read to people, the same on the command line (a terminal's tables, piped lines) and
in the web view: sizes, shapes, nested metadata as dotted rows, a recorded value as text, and
which comparison sections fold.

One format for every recorded value: text as it is, ``null``, ``true``/``false``, integers in
full, other numbers to :data:`NUMBER_FORMAT` (six significant digits: ``0.912346``); a non-finite
float, kept as ``{"float": "nan"}`` (:mod:`.jsonvalues`), reads ``nan``. ``--json`` output keeps
every value as recorded, in full precision.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from .fields import FIELDS
from .jsonvalues import is_float_marker

#: Sections of a comparison that a table shows only where the versions differ, unless asked for
#: all rows (``modelstore compare --all``, the web view's compare page).
FOLDED = ("params", "dependencies", "data", "flavor")

#: What a terminal or a web page shows of one record at most: the characters of one value, and
#: the entries of one field (tags, metrics, params, plugin metadata). A record is untrusted input
#: up to its size limit (16 MiB); ``modelstore info --json`` prints it whole.
MAX_VALUE_CHARS = 1000
MAX_ENTRIES_SHOWN = 1000
WHOLE_RECORD = "`modelstore info --json` prints the whole record"

#: How a float reads to people (``format(value, NUMBER_FORMAT)``).
NUMBER_FORMAT = ".6g"

#: Dotted paths of a record whose facts a record field shows (``RecordField.restated_at``): left
#: out of ``diff``, ``info`` and the web view unless everything is asked for.
RESTATED = tuple(path for f in FIELDS for path in f.restated_at)


def restated(key: str) -> bool:
    """Whether the dotted ``key`` of a record is at or under one of :data:`RESTATED`."""
    return any(key == path or key.startswith(path + ".") for path in RESTATED)


def unset(value: Any) -> bool:
    """``None``, ``""`` or an empty list or object: a setting left at the library's default (the
    scikit-learn API's ``None``), which a page leaves out unless everything is asked for."""
    return value is None or (isinstance(value, (str, list, tuple, dict)) and not value)


def human_size(n: int | None) -> str:
    """``1.5 MB``: decimal units, ``""`` for ``None``."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError  # pragma: no cover


def flatten(value: Any, prefix: str = "", *, keep_empty: bool = True) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists, non-finite float markers and other values are leaves.

    An empty dict is a leaf too, unless ``keep_empty`` is false (then it has no leaves).
    """
    if isinstance(value, dict) and (value or not keep_empty) and not is_float_marker(value):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(flatten(sub, f"{prefix}.{key}" if prefix else str(key), keep_empty=keep_empty))
        return out
    return {prefix: value}


def value_text(value: Any, none: str = "") -> str:
    """A recorded value as text (see the module's docstring); ``None`` reads ``none``: empty in a
    cell of its own (nothing recorded), ``"null"`` where it is a value among others (``max_depth=null``)."""
    if value is None:
        return none
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return format(value, NUMBER_FORMAT) if math.isfinite(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if is_float_marker(value):
        return value["float"]
    if isinstance(value, (list, tuple)) and not any(isinstance(v, (list, tuple, dict)) and not is_float_marker(v) for v in value):
        return ", ".join(value_text(v, "null") for v in value)
    if isinstance(value, (list, tuple, dict)):
        return _nested_text(value)
    return str(value)  # not from a record: a path, a time


def _nested_text(value: Any) -> str:
    """Nested lists and objects as JSON, their numbers and markers as they read alone."""
    if isinstance(value, dict) and not is_float_marker(value):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_nested_text(v)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_nested_text(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, (bool, int, float)) or is_float_marker(value):
        return value_text(value, "null")
    return json.dumps(str(value), ensure_ascii=False)


def value_texts(values: list[Any], none: str = "") -> list[str]:
    """:func:`value_text` of each of ``values`` (the versions of one row, one change's old and new),
    with full precision for floats whose short texts would hide that they differ."""
    short = [value_text(v, none) for v in values]
    return [
        repr(value) if isinstance(value, float) and any(short[j] == text and values[j] != value for j in range(len(values))) else text
        for value, text in zip(values, short, strict=True)
    ]


def differing_keys(mappings: list[Mapping[str, Any]]) -> list[str]:
    """The keys, sorted, whose values are not the same in all of ``mappings`` (a key one of them
    lacks reads ``None`` there): the rows a comparison shows of a folded section."""
    keys = sorted({key for m in mappings for key in m})
    return [key for key in keys if len({repr(m.get(key)) for m in mappings}) > 1]


def pairs_text(values: Mapping[str, Any], separator: str = ", ") -> str:
    """``team=risk, auc=0.912346, max_depth=null``: names and :func:`value_text` of their values."""
    return separator.join(f"{name}={value_text(value, 'null')}" for name, value in values.items())


def shape_text(shape: list[int | None] | None) -> str:
    """A recorded shape: ``(*, 6)`` (``*``: any size, the batch dimension); ``""`` for ``None``."""
    if shape is None:
        return ""
    return "(" + ", ".join("*" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def clipped(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many more there are."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters: {WHOLE_RECORD})"


def first_entries(
    values: dict[str, Any] | Iterable[tuple[str, Any]], limit: int = MAX_ENTRIES_SHOWN
) -> tuple[list[tuple[str, Any]], str | None]:
    """The first ``limit`` entries of ``values`` (a dict, or its items), and a note of how many are
    left out (``None``: none)."""
    items = list(values.items() if isinstance(values, dict) else values)
    if len(items) <= limit:
        return items, None
    return items[:limit], f"… and {len(items) - limit} more ({WHOLE_RECORD})"

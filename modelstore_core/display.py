"""How values read to people, the same on the command line and in the web view: sizes, nested
metadata as dotted rows, a recorded value as text, and which comparison sections fold.

Recorded values are shown as JSON (``null``, ``true``, ``0.91``), text as it is; a non-finite
float kept as ``{"float": "nan"}`` (:mod:`.jsonvalues`) reads ``nan``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

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


def value_text(value: Any) -> str:
    """A recorded value as one cell of text: ``None`` empty, text as it is, lists joined, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if is_float_marker(value):
        return value["float"]
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


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

"""Making plugin metadata JSON-safe and merging what each plugin contributes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any


def jsonable(value: Any, _depth: int = 0) -> Any:
    """Convert ``value`` into plain JSON types without importing numpy or any framework.

    numpy scalars and arrays become Python numbers and lists, NaN and infinities become
    ``None`` (strict JSON has neither), paths keep only their final name (no absolute local
    path is ever stored), and anything unknown becomes its ``repr``.
    """
    if _depth > 50:
        return repr(value)
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, _depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v, _depth + 1) for v in value), key=repr)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value, _depth + 1)
    if isinstance(value, PurePath):
        return value.name
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value), _depth + 1)
    module = type(value).__module__ or ""
    if module.split(".")[0] in ("numpy", "torch") and hasattr(value, "tolist"):
        return jsonable(value.tolist(), _depth + 1)  # numpy scalar/array, torch tensor
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return repr(value)


def merge(into: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``into`` in place: nested dicts key by key, other values replaced."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into

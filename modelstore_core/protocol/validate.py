"""Reading JSON documents from a store as untrusted input: typed access to an object's fields,
each failure a :class:`~modelstore_core.errors.CorruptRecordError` naming the key and the field."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from ..errors import CorruptRecordError, InvalidNameError
from ..names import check_name

_SHA256 = re.compile(r"[0-9a-f]{64}")


def load_json(data: bytes, key: str) -> Any:
    """The JSON document in ``data``, or :class:`CorruptRecordError`.

    ``NaN``/``Infinity`` are accepted (older records may hold them in plugin metadata); every field
    the core acts on is type-checked, so they can never stand for a number the core uses.
    """
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CorruptRecordError(key, None, f"is not valid JSON ({' '.join(str(exc).split())[:80]})") from None


class Fields:
    """Typed access to one JSON object's fields, each failure naming the key and the field."""

    def __init__(self, obj: Any, key: str, prefix: str = ""):
        if not isinstance(obj, dict):
            raise CorruptRecordError(key, prefix.rstrip(".") or None, f"is a {kind_of(obj)}, not an object")
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
            raise self.fail(name, f"is a {kind_of(value)}, not a {want}")
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


def kind_of(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "integer", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def check_sha256(value: str) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None

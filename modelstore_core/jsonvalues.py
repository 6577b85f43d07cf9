"""The one JSON encoding policy for what modelstore writes into a record (plugin metadata,
hyperparameters, flavor options), and merging what each plugin contributes.

Records are strict JSON (no NaN, no infinities). :func:`json_value` turns any Python value into
plain JSON without importing numpy or a framework:

* JSON scalars stay as they are; a non-finite float becomes ``{"float": "nan"}`` (``"inf"``,
  ``"-inf"``): the value survives (``missing=nan`` is a setting, not an absent value) and
  :func:`restored_value` gives it back;
* mappings become objects with string keys; lists, tuples and sets become lists (sets sorted);
* numpy and torch scalars, arrays and tensors become numbers and lists (through ``tolist``);
* datetimes their ISO 8601 text, enums their value, bytes their hex, dataclasses their fields,
  paths only their final name (no absolute local path is ever stored);
* classes and functions their qualified name, anything else its ``repr``.

With ``skip_unknown`` (:func:`stored_params`: settings given back to a class when it is rebuilt),
only what JSON holds as it is (scalars, lists, objects with string keys, numpy values) is kept, and
a value holding anything else is left out (so the class uses its default instead of a name or a repr).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from .errors import CorruptRecordError

#: What marks a non-finite float in stored JSON: ``{"float": "nan"}``.
FLOAT_MARKER = "float"
_NON_FINITE = ("nan", "inf", "-inf")
#: Returned by ``json_value(..., skip_unknown=True)`` for a value that is left out.
SKIP = object()
_MAX_DEPTH = 50


def json_value(value: Any, *, skip_unknown: bool = False, _depth: int = 0) -> Any:
    """``value`` as plain JSON, by the policy above (:data:`SKIP` for a left-out value with ``skip_unknown``)."""
    if _depth > _MAX_DEPTH:
        return SKIP if skip_unknown else repr(value)
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {FLOAT_MARKER: repr(value)}
    if (type(value).__module__ or "").split(".")[0] in ("numpy", "torch") and hasattr(value, "tolist"):
        return json_value(value.tolist(), skip_unknown=skip_unknown, _depth=_depth + 1)
    if isinstance(value, Mapping):
        if skip_unknown and not all(isinstance(k, str) for k in value):
            return SKIP
        items = {str(k): json_value(v, skip_unknown=skip_unknown, _depth=_depth + 1) for k, v in value.items()}
        return SKIP if SKIP in items.values() else items
    if isinstance(value, (list, tuple)):
        listed = [json_value(v, skip_unknown=skip_unknown, _depth=_depth + 1) for v in value]
        return SKIP if any(v is SKIP for v in listed) else listed
    if skip_unknown:
        return SKIP
    if isinstance(value, (set, frozenset)):
        return sorted((json_value(v, _depth=_depth + 1) for v in value), key=repr)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return json_value(value.value, _depth=_depth + 1)
    if isinstance(value, PurePath):
        return value.name
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_value(dataclasses.asdict(value), _depth=_depth + 1)
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return repr(value)


def is_float_marker(value: Any) -> bool:
    """Whether ``value`` is the stored form of a non-finite float (``{"float": "nan"}``)."""
    return isinstance(value, dict) and len(value) == 1 and value.get(FLOAT_MARKER) in _NON_FINITE


def restored_value(value: Any) -> Any:
    """A value of :func:`json_value` with its non-finite floats given back (``{"float": "nan"}`` -> ``nan``)."""
    if is_float_marker(value):
        return float(value[FLOAT_MARKER])
    if isinstance(value, dict):
        return {k: restored_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restored_value(v) for v in value]
    return value


def stored_params(params: dict[str, Any]) -> dict[str, Any]:
    """An estimator's ``get_params()`` as JSON, sorted by name, to give back to its class when it is
    rebuilt (a flavor's options): what JSON cannot hold (callables: custom objectives, callbacks)
    is left out, so it keeps its default."""
    stored = {key: encoded for key, value in params.items() if (encoded := json_value(value, skip_unknown=True)) is not SKIP}
    return dict(sorted(stored.items()))


def restored_params(params: Any, field: str = "flavor.options.params") -> dict[str, Any]:
    """Keyword arguments for the estimator's class from :func:`stored_params` read back from a record
    (untrusted): an object whose names are identifiers; :class:`CorruptRecordError` otherwise."""
    if not isinstance(params, dict):
        raise CorruptRecordError("the version record", field, f"is a {type(params).__name__}, not an object of parameters")
    for key in params:
        if not key.isidentifier():
            raise CorruptRecordError("the version record", field, f"has a parameter named {key[:40]!r}")
    return {key: restored_value(value) for key, value in params.items()}


def merge(into: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``into`` in place: nested dicts key by key, other values replaced."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into

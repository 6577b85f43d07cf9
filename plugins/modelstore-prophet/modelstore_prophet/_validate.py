"""Checking a stored Prophet document before ``model_from_json`` reads it.

``model_from_json`` sets every attribute from the document as it finds it: a missing key is a
``KeyError``, a wrong type an error deep inside pandas or numpy at ``predict``, and some numbers
size what ``predict`` allocates (``uncertainty_samples`` draws per row, ``fourier_order`` feature
columns per seasonality). So the document's shape is checked here first, against what
``model_to_json`` writes (Prophet 1.1 to 1.5), and anything else is a :class:`CorruptArtifactError`
naming the file and the field. Standard library only.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from modelstore_core.plugin_api import CorruptArtifactError

from . import _keys

#: ``predict`` draws this many samples per future row (default 1000): a bound keeps memory sane.
MAX_UNCERTAINTY_SAMPLES = 10_000
#: Each seasonality adds ``2 × fourier_order`` feature columns (defaults: 3 to 10).
MAX_FOURIER_ORDER = 1_000
MODES = {"additive", "multiplicative"}
SEASONALITY_FLAGS = (bool, int, str)  # True/False, "auto", or a Fourier order
#: The parameters Stan fits; each an array of samples (one row for a MAP fit).
PARAMS = ("k", "m", "delta", "sigma_obs", "beta")
#: What ``to_json(date_format="iso")`` writes for a timestamp.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?")
OPTIONAL_KEYS = {"scaling", "y_min", "holidays_mode"}  # absent from models written by Prophet < 1.1.5


class _Bad(Exception):
    """A failed check, turned into a CorruptArtifactError that names the file."""


def validate(data: bytes, file: str) -> str:
    """Return the text of ``data`` (the bytes of ``file``) if it is a Prophet document of the
    expected shape, else raise :class:`CorruptArtifactError`."""
    try:
        try:
            text = data.decode("utf-8")
            doc = json.loads(text, object_pairs_hook=_no_duplicates)
        except (UnicodeDecodeError, ValueError) as exc:
            if isinstance(exc, _Bad):
                raise
            raise _Bad(f"it is not JSON ({str(exc)[:120]})") from None
        check_document(doc)
    except _Bad as exc:
        raise CorruptArtifactError(file, str(exc)) from None
    except RecursionError:
        raise CorruptArtifactError(file, "the document is nested too deeply") from None
    return text


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Bad("an object repeats a key")
    return out


# --- typed access -------------------------------------------------------------------------


def _number(value: Any, where: str, low: float = -math.inf, high: float = math.inf) -> float:
    if type(value) not in (int, float) or not low <= value <= high:
        raise _Bad(f"{where} is {str(value)[:40]!r}, not a number in [{low}, {high}]")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _Bad(f"{where} is {str(value)[:40]!r}, not an integer in [{low}, {high}]")
    return value


def _one_of(value: Any, where: str, allowed: set) -> Any:
    if not isinstance(value, str) or value not in allowed:
        raise _Bad(f"{where} is {str(value)[:40]!r}, not one of {sorted(allowed)}")
    return value


def _embedded(value: Any, where: str) -> dict[str, Any] | None:
    """A pandas object that model_to_json wrote as JSON text inside the document."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{where} is not pandas JSON text")
    try:
        inner = json.loads(value, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        if isinstance(exc, _Bad):
            raise
        raise _Bad(f"{where} is not JSON") from None
    if not isinstance(inner, dict):
        raise _Bad(f"{where} is not a pandas object")
    return inner


def _series(value: Any, where: str, dates: bool = False) -> int | None:
    """A series written with ``orient='split'`` (of ISO dates, with ``dates``): its length."""
    inner = _embedded(value, where)
    if inner is None:
        return None
    if set(inner) != {"name", "index", "data"} or not isinstance(inner["index"], list) or not isinstance(inner["data"], list):
        raise _Bad(f"{where} is not a pandas series (name, index, data)")
    if len(inner["index"]) != len(inner["data"]):
        raise _Bad(f"{where} has {len(inner['index'])} index entries for {len(inner['data'])} values")
    if dates and not all(isinstance(d, str) and _ISO_DATE.fullmatch(d) for d in inner["data"]):
        raise _Bad(f"{where} holds values that are not ISO dates")
    return len(inner["data"])


def _frame(value: Any, where: str) -> tuple[list[str], int] | None:
    """A frame written with ``orient='table'``: its column names and number of rows."""
    inner = _embedded(value, where)
    if inner is None:
        return None
    schema, rows = inner.get("schema"), inner.get("data")
    fields = schema.get("fields") if isinstance(schema, dict) else None
    if not isinstance(fields, list) or not isinstance(rows, list):
        raise _Bad(f"{where} is not a pandas table (schema, data)")
    names = []
    for i, field in enumerate(fields):
        if not isinstance(field, dict) or not isinstance(field.get("name"), str) or not isinstance(field.get("type"), str):
            raise _Bad(f"{where} field {i} is not a named, typed column")
        names.append(field["name"])
    if len(set(names)) != len(names):
        raise _Bad(f"{where} repeats a column")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not set(row) <= set(names) or any(isinstance(v, (dict, list)) for v in row.values()):
            raise _Bad(f"{where} row {i} is not a record of the table's columns")
    return names, len(rows)


def _matrix(value: Any, where: str) -> tuple[int, int]:
    """A list of equally long lists of numbers: its shape."""
    if not isinstance(value, list) or not value or not all(isinstance(row, list) for row in value):
        raise _Bad(f"{where} is not a non-empty list of rows")
    width = len(value[0])
    for row in value:
        if len(row) != width or not all(type(v) in (int, float) for v in row):
            raise _Bad(f"{where} is not a rectangle of numbers")
    return len(value), width


def _ordered(value: Any, where: str) -> dict[str, Any]:
    """``[keys, mapping]``, as model_to_json writes an OrderedDict."""
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], list) or not isinstance(value[1], dict):
        raise _Bad(f"{where} is not [names, properties]")
    keys, mapping = value
    if not all(isinstance(k, str) for k in keys) or sorted(keys) != sorted(mapping) or len(set(keys)) != len(keys):
        raise _Bad(f"{where} does not list exactly its names")
    for name, props in mapping.items():
        if not isinstance(props, dict):
            raise _Bad(f"{where}.{name[:40]} is not an object")
    return mapping


# --- the document -------------------------------------------------------------------------


def check_document(doc: Any) -> None:
    if not isinstance(doc, dict):
        raise _Bad("the document is not an object")
    missing = sorted(set(_keys.ALL) - OPTIONAL_KEYS - set(doc))
    if missing:
        raise _Bad(f"the document lacks {', '.join(missing[:5])}")
    unknown = sorted(set(doc) - set(_keys.ALL))
    if unknown:
        raise _Bad(f"the document has keys model_to_json does not write: {', '.join(k[:40] for k in unknown[:5])}")

    _one_of(doc["growth"], "growth", {"linear", "logistic", "flat"})
    n_changepoints = _int(doc["n_changepoints"], "n_changepoints", 0, 1_000_000)
    for key in ("specified_changepoints", "logistic_floor"):
        if type(doc[key]) is not bool:
            raise _Bad(f"{key} is not true or false")
    _number(doc["changepoint_range"], "changepoint_range", 0, 1)
    for key in ("yearly_seasonality", "weekly_seasonality", "daily_seasonality"):
        flag = doc[key]
        if not isinstance(flag, SEASONALITY_FLAGS) or (isinstance(flag, str) and flag != "auto"):
            raise _Bad(f"{key} is {str(flag)[:40]!r}, not true, false, 'auto' or a Fourier order")
        if type(flag) is int:
            _int(flag, key, 1, MAX_FOURIER_ORDER)
    for key in ("seasonality_mode", "holidays_mode"):
        if key in doc:
            _one_of(doc[key], key, MODES)
    for key in ("seasonality_prior_scale", "changepoint_prior_scale", "holidays_prior_scale"):
        _number(doc[key], key, 0)
    _int(doc["mcmc_samples"], "mcmc_samples", 0, 1_000_000)
    _number(doc["interval_width"], "interval_width", 0, 1)
    if type(doc["uncertainty_samples"]) is not bool:  # False turns sampling off
        _int(doc["uncertainty_samples"], "uncertainty_samples", 0, MAX_UNCERTAINTY_SAMPLES)
    _number(doc["y_scale"], "y_scale")
    if "y_min" in doc:
        _number(doc["y_min"], "y_min")
    if "scaling" in doc:
        _one_of(doc["scaling"], "scaling", {"absmax", "minmax"})
    country = doc["country_holidays"]
    if country is not None and not (isinstance(country, str) and re.fullmatch(r"[A-Za-z][A-Za-z_-]{0,15}", country)):
        raise _Bad(f"country_holidays is {str(country)[:40]!r}, not a country code")
    modes = doc["component_modes"]
    if modes is not None:
        names_ok = isinstance(modes, dict) and all(isinstance(v, list) and all(isinstance(c, str) for c in v) for v in modes.values())
        if not names_ok or not set(modes) <= MODES:
            raise _Bad("component_modes is not {'additive': [...], 'multiplicative': [...]} of component names")

    changepoints = _series(doc["changepoints"], "changepoints", dates=True)
    history_length = _series(doc["history_dates"], "history_dates", dates=True)
    _series(doc["train_holiday_names"], "train_holiday_names")
    _number(doc["start"], "start", -1e11, 1e11)  # seconds since 1970: years -1200 to 5100
    _number(doc["t_scale"], "t_scale", 0, 1e11)
    history = _frame(doc["history"], "history")
    _frame(doc["holidays"], "holidays")
    components = _frame(doc["train_component_cols"], "train_component_cols")
    if history is None or components is None or history_length is None:
        raise _Bad("the model is not fitted (no history or components)")
    if not {"ds", "y"} <= set(history[0]):
        raise _Bad("history has no ds and y columns")
    changepoints_t = doc["changepoints_t"]
    if not isinstance(changepoints_t, list) or not all(type(v) in (int, float) for v in changepoints_t):
        raise _Bad("changepoints_t is not a list of numbers")
    if changepoints is not None and len(changepoints_t) != changepoints and not (changepoints == 0 and len(changepoints_t) == 1):
        raise _Bad(f"changepoints_t has {len(changepoints_t)} entries for {changepoints} changepoints")
    del n_changepoints  # a setting for the next fit: changepoints_t is what predict uses

    for name, props in _ordered(doc["seasonalities"], "seasonalities").items():
        where = f"seasonalities.{name[:40]}"
        _number(props.get("period"), f"{where}.period", 0)
        _int(props.get("fourier_order"), f"{where}.fourier_order", 1, MAX_FOURIER_ORDER)
        _number(props.get("prior_scale"), f"{where}.prior_scale", 0)
        _one_of(props.get("mode"), f"{where}.mode", MODES)
        if props.get("condition_name") is not None and not isinstance(props.get("condition_name"), str):
            raise _Bad(f"{where}.condition_name is not a column name")
    for name, props in _ordered(doc["extra_regressors"], "extra_regressors").items():
        where = f"extra_regressors.{name[:40]}"
        for key in ("prior_scale", "mu", "std"):
            _number(props.get(key), f"{where}.{key}")
        _one_of(props.get("mode"), f"{where}.mode", MODES)
        if props.get("standardize") not in (True, False, "auto"):
            raise _Bad(f"{where}.standardize is not true, false or 'auto'")
    if not isinstance(doc["fit_kwargs"], dict):
        raise _Bad("fit_kwargs is not an object")
    _check_params(doc["params"], len(changepoints_t), components[1], history_length)


def _check_params(params: Any, n_changepoints: int, n_features: int, history_length: int) -> None:
    """Every fitted parameter as ``predict`` multiplies it: one row per sample, and as many columns
    as changepoints (``delta``), features (``beta``) or history rows (``trend``)."""
    if not isinstance(params, dict):
        raise _Bad("params is not an object")
    width = {"k": 1, "m": 1, "sigma_obs": 1, "delta": n_changepoints, "beta": n_features}
    samples = None
    for name in PARAMS:
        if name not in params:
            raise _Bad(f"params lacks {name}")
        rows, cols = _matrix(params[name], f"params.{name}")
        if cols != width[name]:
            raise _Bad(f"params.{name} has {cols} columns, not {width[name]}")
        if samples not in (None, rows):
            raise _Bad(f"params.{name} has {rows} samples, not {samples} like the others")
        samples = rows
    for name, value in params.items():
        if name not in PARAMS:
            shape = _matrix(value, f"params.{name}")
            if name == "trend" and shape[1] != history_length:
                raise _Bad(f"params.trend has {shape[1]} columns for {history_length} history rows")

"""Metrics and params of a version: how good it is, and the settings that made it.

Both are recorded at upload under the record's ``metrics`` and ``params`` keys and never change
afterwards (tags and states are the mutable parts of a version).

* A metric is a finite number (``int`` or ``float``; numpy and torch scalars are converted). NaN
  and infinities are refused at upload: a diverged loss is not a value that can be compared or
  sorted; record that as a tag (``tags={"diverged": True}``) instead.
* A param is a JSON scalar: a string, a finite number, a boolean or ``None``. By default a
  version's params are its flavor's hyperparameters (what the plugin records under
  ``model.hyperparameters``), flattened to dotted names; params passed to ``upload`` are added
  over them.

Names follow the tag-name rules (letters, digits, ``.``, ``_``, ``-``; 1-128 characters), so a
name can be written on a command line (``--where metrics.auc>0.9``) and printed as it is.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import InvalidNameError, UsageError
from .jsonvalues import is_float_marker
from .names import check_name

#: At most this many metrics or params in one version (a record stays small enough to list fast).
MAX_ENTRIES = 1000
#: A param string longer than this is cut (at upload) when it comes from the flavor's hyperparameters.
MAX_PARAM_STRING = 1000


def number(value: Any) -> int | float | None:
    """``value`` as a Python number if it is one (numpy and torch scalars included, booleans not), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    module = (type(value).__module__ or "").split(".")[0]
    if module in ("numpy", "torch") and hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        item = value.item()  # a 0-d array or tensor, or a numpy scalar
        if isinstance(item, float) and getattr(getattr(value, "dtype", None), "itemsize", 8) < 8 and math.isfinite(item):
            # numpy prints a float32 at its own precision: 0.91, not 0.9100000262260437
            item = float(str(value.item() if module == "torch" else value))
        return item if isinstance(item, (int, float)) and not isinstance(item, bool) else None
    return None


def metric_problem(name: Any, value: Any) -> str | None:
    """Why ``value`` cannot be recorded (or read back) as metric ``name``, or ``None``."""
    try:
        check_name(name, "metric name")
    except InvalidNameError as exc:
        return str(exc)
    if isinstance(value, float) and not math.isfinite(value):
        return f"metric {name!r} is {value}: metrics are finite numbers (record a diverged run as a tag instead)"
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return f"metric {name!r} is an integer too large for a float"
        return None
    if isinstance(value, float):
        return None
    return f"metric {name!r} must be a number, not {type(value).__name__} ({str(value)[:40]!r})"


def check_metrics(metrics: Any) -> dict[str, int | float]:
    """The metrics passed to ``upload``, checked: a dict of names to finite numbers."""
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise UsageError(f"metrics must be a dict of names to numbers ({{'auc': 0.91}}), not {type(metrics).__name__}")
    if len(metrics) > MAX_ENTRIES:
        raise UsageError(f"{len(metrics)} metrics: a version records at most {MAX_ENTRIES}")
    out = {}
    for name, value in metrics.items():
        converted = number(value)
        if problem := metric_problem(name, value if converted is None else converted):
            raise UsageError(problem)
        out[name] = converted
    return out


def param_problem(name: Any, value: Any) -> str | None:
    """Why ``value`` cannot be recorded (or read back) as param ``name``, or ``None``."""
    try:
        check_name(name, "param name")
    except InvalidNameError as exc:
        return str(exc)
    if isinstance(value, float) and not math.isfinite(value):
        return f"param {name!r} is {value}: store it as a string ({str(value)!r}) if that is the setting"
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    return f"param {name!r} must be a string, number, boolean or None, not {type(value).__name__}"


def check_params(params: Any) -> dict[str, Any]:
    """The params passed to ``upload``, checked: a dict of names to JSON scalars.

    numpy and torch scalars become Python numbers; a non-finite float becomes its string
    (``"nan"``: ``missing=nan`` is a setting, as the flavor plugins record it).
    """
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise UsageError(f"params must be a dict of names to strings, numbers or booleans, not {type(params).__name__}")
    if len(params) > MAX_ENTRIES:
        raise UsageError(f"{len(params)} params: a version records at most {MAX_ENTRIES}")
    out = {}
    for name, value in params.items():
        converted = number(value)
        value = value if converted is None else converted
        if isinstance(value, float) and not math.isfinite(value):
            value = repr(value)
        if problem := param_problem(name, value):
            raise UsageError(problem)
        out[name] = value
    return out


def flavor_params(metadata: dict[str, Any]) -> dict[str, Any]:
    """The flavor's hyperparameters (``metadata["model"]["hyperparameters"]``) as params.

    Nested settings get dotted names: a nested estimator recorded as ``{"class", "params"}`` is
    its class under its own name and its settings below it, and a list of ``[name, value, ...]``
    steps (a scikit-learn pipeline) is keyed by step name: the ``C`` of a pipeline's
    ``logisticregression`` step is ``steps.logisticregression.C``. Other lists become their
    compact JSON text, long strings are cut, and a setting whose name cannot be a param name is
    left out (it stays in the plugin metadata).
    """
    model = metadata.get("model")
    hyperparameters = model.get("hyperparameters") if isinstance(model, dict) else None
    if not isinstance(hyperparameters, dict):
        return {}
    out: dict[str, Any] = {}

    def walk(value: Any, name: str) -> None:
        if len(out) >= MAX_ENTRIES:
            return
        if is_float_marker(value):
            value = value["float"]  # a non-finite setting: "nan", "inf", "-inf", as a param string
        if isinstance(value, dict) and value.keys() == {"class", "params"} and name:
            walk(value["class"], name)
            value = value["params"]
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(sub, f"{name}.{key}" if name else str(key))
            return
        if isinstance(value, (list, tuple)) and value and all(_is_step(item) for item in value):
            walk({item[0]: item[1] for item in value}, name)
            return
        if isinstance(value, (list, tuple)):
            value = json.dumps(value, separators=(",", ":"), default=str, allow_nan=True)
        if isinstance(value, float) and not math.isfinite(value):
            value = repr(value)
        if isinstance(value, str) and len(value) > MAX_PARAM_STRING:
            value = value[: MAX_PARAM_STRING - 1] + "…"
        if param_problem(name, value) is None:
            out[name] = value

    walk(hyperparameters, "")
    return out


def _is_step(item: Any) -> bool:
    """``["scaler", {...}]``: a named step of a pipeline (or a transformer of a column transformer)."""
    return isinstance(item, (list, tuple)) and len(item) >= 2 and isinstance(item[0], str)

"""What a reader of an ``sklearn`` version wants to know without loading it."""

from __future__ import annotations

import math
from typing import Any

from modelstore_core.plugin_api import Flavor, columns_signature, tensors_signature

#: Arrays longer than this are summarised (shape and dtype) rather than listed.
MAX_LISTED = 100


def describe(model: Any, flavor: Flavor) -> dict[str, Any]:
    import sklearn

    info: dict[str, Any] = {
        "framework": "scikit-learn",
        "framework_version": sklearn.__version__,
        "hyperparameters": params(model),
    }
    if flavor.format == "skops":
        info["skops_version"] = flavor.options.get("skops_version")
        info["types_to_trust"] = flavor.options.get("types_to_trust", [])
    else:
        info["loads_only_with_trust"] = True
    for attr in ("n_features_in_", "feature_names_in_", "classes_", "n_outputs_"):
        if hasattr(model, attr):
            try:
                info[attr.rstrip("_")] = value(getattr(model, attr))
            except Exception:  # noqa: BLE001 - a property that raises on this model: skip it
                continue
    if hasattr(model, "steps"):  # Pipeline
        info["steps"] = [[name, _class(step)] for name, step in model.steps]
    return info


def signature(model: Any) -> dict[str, Any] | None:
    """The input the model was fitted on: its column names (``feature_names_in_``, fitted on a
    DataFrame), else its number of features (``n_features_in_``); ``None`` when unfitted."""
    try:
        names = getattr(model, "feature_names_in_", None)
        if names is not None:
            return columns_signature([str(n) for n in names], source="feature_names_in_")
        n = getattr(model, "n_features_in_", None)
    except Exception:  # noqa: BLE001 - a property that raises on this model
        return None
    if isinstance(n, int) or (type(n).__module__ == "numpy" and hasattr(n, "item")):
        return tensors_signature({None: ([None, int(n)], None)}, source="n_features_in_")
    return None


def params(estimator: Any) -> dict[str, Any]:
    """``get_params(deep=False)`` made JSON-safe, nested estimators as ``{"class", "params"}``."""
    try:
        raw = estimator.get_params(deep=False)
    except Exception:  # noqa: BLE001 - a third-party estimator with a broken get_params
        return {}
    return {str(k): value(v) for k, v in sorted(raw.items())}


def value(v: Any, depth: int = 0) -> Any:
    if depth > 20:
        return repr(v)
    if v is None or isinstance(v, (bool, str, int)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if hasattr(v, "get_params") and not isinstance(v, type):
        return {"class": _class(v), "params": params(v)}
    if isinstance(v, dict):
        return {str(k): value(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [value(x, depth + 1) for x in v]
    module = (type(v).__module__ or "").split(".")[0]
    if module == "numpy":
        if getattr(v, "ndim", 0) == 0 and hasattr(v, "item"):
            return value(v.item(), depth + 1)
        if hasattr(v, "tolist"):
            if v.size > MAX_LISTED:
                return {"shape": list(v.shape), "dtype": str(v.dtype)}
            return value(v.tolist(), depth + 1)
    if isinstance(v, type) or callable(v):
        return f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', repr(v))}"
    return repr(v)


def _class(obj: Any) -> str:
    if isinstance(obj, str):  # "passthrough", "drop"
        return obj
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"

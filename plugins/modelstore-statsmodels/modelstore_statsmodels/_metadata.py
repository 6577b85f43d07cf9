"""What a reader of a ``statsmodels`` version wants to know without loading it (and so without unpickling)."""

from __future__ import annotations

from typing import Any

from modelstore_core.plugin_api import json_value, qualified_name


def describe(results: Any) -> dict[str, Any]:
    """The metadata, read without leaving a trace: statsmodels computes statistics lazily and keeps
    them on the objects (in caches and plain attributes), which would change the bytes of the
    next upload of the same results."""
    objects = [getattr(results, "_results", results), results.model, getattr(results.model, "data", None)]
    saved = [
        (o, {k: dict(v) if k == "_cache" and isinstance(v, dict) else v for k, v in vars(o).items()})
        for o in objects
        if hasattr(o, "__dict__")
    ]
    try:
        return _describe(results)
    finally:
        for obj, state in saved:
            vars(obj).clear()
            vars(obj).update(state)


def _describe(results: Any) -> dict[str, Any]:
    import statsmodels

    model = results.model
    info: dict[str, Any] = {
        "framework": "statsmodels",
        "framework_version": statsmodels.__version__,
        "model": qualified_name(model),
        # The model's constructor settings (ARIMA's order, GLM's family...) besides the data.
        "hyperparameters": json_value(_safe(model._get_init_kwds) or {}),
        "endog_names": json_value(_safe(lambda: model.endog_names)),
        "exog_names": json_value(_safe(lambda: model.exog_names)),
        "nobs": json_value(_safe(lambda: results.nobs)),
        "params": json_value(_safe(lambda: dict(zip(_names(results), results.params.tolist(), strict=True)))),
    }
    for stat in ("aic", "bic", "llf", "rsquared", "rsquared_adj"):
        value = _safe(lambda stat=stat: float(getattr(results, stat)))  # numpy scalars as plain floats
        if value is not None:
            info[stat] = json_value(value)
    return info


def _names(results: Any) -> list[str]:
    names = getattr(results.params, "index", None)
    if names is not None:
        return [str(n) for n in names]
    return list(results.model.exog_names or []) or [f"param_{i}" for i in range(len(results.params))]


def _safe(get: Any) -> Any:
    """A value some results lack or cannot compute: ``None``."""
    try:
        return get()
    except Exception:  # noqa: BLE001
        return None

"""What a reader of a ``catboost`` version wants to know without loading it."""

from __future__ import annotations

import math
from typing import Any

from modelstore_core import Flavor


def describe(model: Any, flavor: Flavor) -> dict[str, Any]:
    import catboost

    info: dict[str, Any] = {
        "framework": "catboost",
        "framework_version": catboost.__version__,
        "class": flavor.model_class,
        "serialization": flavor.format,
        "hyperparameters": value(model.get_params()),
        "all_parameters": value(_safe(model.get_all_params) or {}),
        "feature_names": value(_safe(lambda: model.feature_names_)),
        "cat_features": value(_safe(model.get_cat_feature_indices)),
        "text_features": value(_safe(model.get_text_feature_indices)),
        "embedding_features": value(_safe(model.get_embedding_feature_indices)),
        "tree_count": value(_safe(lambda: model.tree_count_)),
        "best_iteration": value(_safe(model.get_best_iteration)),
        "model_guid": _safe(lambda: dict(model.get_metadata()).get("model_guid")),
        "train_finish_time": _safe(lambda: dict(model.get_metadata()).get("train_finish_time")),
    }
    classes = _safe(lambda: model.classes_)
    if classes is not None and len(classes):
        info["classes"] = value(classes)
    return info


def _safe(get: Any) -> Any:
    """An attribute some models or catboost versions lack, or that raises: ``None``."""
    try:
        return get()
    except Exception:  # noqa: BLE001
        return None


def value(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str, int)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, dict):
        return {str(k): value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [value(x) for x in v]
    if (type(v).__module__ or "").split(".")[0] == "numpy" and hasattr(v, "tolist"):
        return value(v.tolist())
    if isinstance(v, type) or callable(v):
        return f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', repr(v))}"
    return repr(v)

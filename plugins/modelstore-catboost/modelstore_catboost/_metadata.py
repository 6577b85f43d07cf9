"""What a reader of a ``catboost`` version wants to know without loading it."""

from __future__ import annotations

from typing import Any

from modelstore_core.plugin_api import Flavor, columns_signature, json_value


def describe(model: Any, flavor: Flavor) -> dict[str, Any]:
    import catboost

    info: dict[str, Any] = {
        "framework": "catboost",
        "framework_version": catboost.__version__,
        "hyperparameters": json_value(model.get_params()),
        "all_parameters": json_value(_safe(model.get_all_params) or {}),
        "feature_names": json_value(_safe(lambda: model.feature_names_)),
        "cat_features": json_value(_safe(model.get_cat_feature_indices)),
        "text_features": json_value(_safe(model.get_text_feature_indices)),
        "embedding_features": json_value(_safe(model.get_embedding_feature_indices)),
        "tree_count": json_value(_safe(lambda: model.tree_count_)),
        "best_iteration": json_value(_safe(model.get_best_iteration)),
        "model_guid": _safe(lambda: dict(model.get_metadata()).get("model_guid")),
        "train_finish_time": _safe(lambda: dict(model.get_metadata()).get("train_finish_time")),
    }
    classes = _safe(lambda: model.classes_)
    if classes is not None and len(classes):
        info["classes"] = json_value(classes)
    return info


def signature(model: Any) -> dict[str, Any] | None:
    """The feature names the model was trained with, and which are categorical, text or embeddings
    (catboost keeps no dtypes: a categorical feature takes strings or integers)."""
    names = _safe(lambda: model.feature_names_)
    if not names:
        return None
    feature_types: dict[int, str] = {}
    for kind, indices in (
        ("categorical", _safe(model.get_cat_feature_indices)),
        ("text", _safe(model.get_text_feature_indices)),
        ("embedding", _safe(model.get_embedding_feature_indices)),
    ):
        feature_types.update({int(i): kind for i in indices or ()})
    return columns_signature([str(n) for n in names], feature_types=feature_types, source="catboost")


def _safe(get: Any) -> Any:
    """An attribute some models or catboost versions lack, or that raises: ``None``."""
    try:
        return get()
    except Exception:  # noqa: BLE001
        return None

"""What a reader of a ``lightgbm`` version wants to know without loading it."""

from __future__ import annotations

from typing import Any

from modelstore_core.plugin_api import json_value


def describe(model: Any) -> dict[str, Any]:
    import lightgbm

    booster = model if isinstance(model, lightgbm.Booster) else model.booster_
    info: dict[str, Any] = {
        "framework": "lightgbm",
        "framework_version": lightgbm.__version__,
        "num_trees": booster.num_trees(),
        "num_iterations": booster.current_iteration(),
        "num_model_per_iteration": booster.num_model_per_iteration(),
        "num_features": booster.num_feature(),
        "feature_names": booster.feature_name(),
        "best_iteration": booster.best_iteration,
    }
    if isinstance(model, lightgbm.Booster):
        # A Booster has no get_params: the parameters it was trained with (or read back with).
        info["hyperparameters"] = json_value(dict(sorted(booster.params.items())))
        info["objective"] = booster.params.get("objective")
    else:
        info["hyperparameters"] = json_value(dict(sorted(model.get_params().items())))
        info["objective"] = json_value(model.objective_)
        info["best_score"] = json_value(model.best_score_)
        if hasattr(model, "classes_") and not isinstance(model, lightgbm.LGBMRegressor):
            info["classes"] = json_value(model.classes_)
    return info

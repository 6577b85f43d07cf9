"""What a reader of an ``xgboost`` version wants to know without loading it."""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any

from modelstore_core.plugin_api import Flavor, columns_signature, json_value, tensors_signature

from ._persist import DISTRIBUTIONS


def installed_distributions() -> dict[str, str]:
    """Which of ``xgboost`` / ``xgboost-cpu`` provides the module here, with versions."""
    found = {}
    for name in DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def describe(model: Any, flavor: Flavor) -> dict[str, Any]:
    import xgboost

    booster = model if isinstance(model, xgboost.Booster) else model.get_booster()
    config = json.loads(booster.save_config())
    learner = config.get("learner", {})
    info: dict[str, Any] = {
        "framework": "xgboost",
        "framework_version": xgboost.__version__,
        "distribution": installed_distributions(),
        "objective": (learner.get("objective") or {}).get("name"),
        "booster": (learner.get("gradient_booster") or {}).get("name"),
        "num_features": booster.num_features(),
        "num_boosted_rounds": booster.num_boosted_rounds(),
        "feature_names": booster.feature_names,
        "feature_types": booster.feature_types,
        "attributes": booster.attributes(),  # best_iteration, best_score... as xgboost keeps them
        "booster_config": config,
    }
    if isinstance(model, xgboost.Booster):
        info["hyperparameters"] = learner_parameters(config)
    else:
        info["hyperparameters"] = {k: json_value(v) for k, v in sorted(model.get_params().items())}
        if hasattr(model, "n_classes_"):
            info["n_classes"] = int(model.n_classes_)
    return info


def learner_parameters(config: dict[str, Any]) -> dict[str, Any]:
    """A Booster has no ``get_params``: the training parameters from its saved config, flattened."""
    learner = config.get("learner", {})
    flat: dict[str, Any] = {}
    flat.update(learner.get("learner_train_param", {}))
    flat.update(learner.get("generic_param", {}))
    booster = learner.get("gradient_booster", {})
    flat.update(booster.get("tree_train_param", {}))
    flat.update(booster.get("gbtree_train_param", {}))
    flat.update((booster.get("gbtree", {}) or {}).get("gbtree_train_param", {}))  # dart nests gbtree
    return dict(sorted(flat.items()))


#: xgboost's feature types as dtype families: "q" is quantitative, "i" an indicator, "c" categorical.
FEATURE_DTYPES = {"float": "float", "int": "int", "q": "float", "i": "bool", "c": "category"}


def signature(model: Any) -> dict[str, Any] | None:
    """The booster's feature names and types (set when it was trained on a DataFrame or a DMatrix
    with names), else its number of features."""
    import xgboost

    booster = model if isinstance(model, xgboost.Booster) else model.get_booster()
    names, types = booster.feature_names, booster.feature_types
    if names:
        dtypes = [FEATURE_DTYPES.get(t, t) for t in types] if types else None
        categorical = {i: "categorical" for i, t in enumerate(types or []) if t == "c"}
        return columns_signature(list(names), dtypes, feature_types=categorical, source="xgboost")
    n = booster.num_features()
    return tensors_signature({None: ([None, n], None)}, source="xgboost") if n else None

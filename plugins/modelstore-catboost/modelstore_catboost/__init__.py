"""modelstore plugin for CatBoost: the ``catboost`` flavor.

``CatBoostClassifier``, ``CatBoostRegressor``, ``CatBoostRanker`` and ``CatBoost`` are written
with their own ``save_model`` in CatBoost's binary format (``model.cbm``), categorical features
included, and load back as the same class. The format is data: no version needs ``trust=True``.

Nothing here imports catboost until a catboost model is actually handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, VersionFiles, comes_from, hookimpl

FLAVOR = "catboost"
PLUGIN = "modelstore-catboost"


def handles(model: Any) -> bool:
    """Whether ``model``'s class comes from catboost (decided from module names, without importing it)."""
    return comes_from(model, "catboost", "_catboost")


@hookimpl
def modelstore_serialize(model: Any, directory: Path) -> Flavor | None:
    if not handles(model):
        return None
    from ._persist import serialize

    return serialize(model, directory)


@hookimpl
def modelstore_deserialize(flavor: Flavor, files: list[str], verified: VersionFiles) -> Any:
    if flavor.name != FLAVOR:
        return None
    from ._persist import deserialize

    return deserialize(flavor, files, verified)


@hookimpl
def modelstore_flavors() -> list[str]:
    return [FLAVOR]


@hookimpl
def modelstore_collect_metadata(model: Any, flavor: Flavor) -> dict[str, Any] | None:
    if flavor.name != FLAVOR or model is None:
        return None
    from ._metadata import describe, signature

    return {"model": describe(model, flavor), "signature": signature(model)}

"""modelstore plugin for XGBoost: the ``xgboost`` flavor.

``Booster``, ``XGBClassifier``, ``XGBRegressor``, ``XGBRanker``, ``XGBRFClassifier`` and
``XGBRFRegressor`` are written with their own ``save_model`` as UBJSON (``model.ubj``, or JSON with
``upload(..., format="json")``) and load back as the same class. Neither format can run code, so
no version of this flavor needs ``trust=True``.

Nothing here imports xgboost until an xgboost model is actually handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, VersionFiles, comes_from, hookimpl

FLAVOR = "xgboost"
PLUGIN = "modelstore-xgboost"


def handles(model: Any) -> bool:
    """Whether ``model``'s class comes from xgboost (decided from module names, without importing it)."""
    return comes_from(model, "xgboost")


@hookimpl
def modelstore_serialize(model: Any, directory: Path, options: dict[str, Any]) -> Flavor | None:
    if not handles(model):
        return None
    from ._persist import serialize

    return serialize(model, directory, options)


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

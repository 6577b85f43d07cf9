"""modelstore plugin for LightGBM: the ``lightgbm`` flavor.

``Booster``, ``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker`` and ``LGBMModel`` are written in
LightGBM's text model format (``model.txt``, every iteration) and load back as the same class. The
format is data, checked before LightGBM reads it: no version of this flavor needs ``trust=True``.

Nothing here imports lightgbm until a lightgbm model is actually handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, VersionFiles, comes_from, hookimpl

FLAVOR = "lightgbm"
PLUGIN = "modelstore-lightgbm"


def handles(model: Any) -> bool:
    """Whether ``model``'s class comes from lightgbm (decided from module names, without importing it)."""
    return comes_from(model, "lightgbm")


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
    from ._metadata import describe

    return {"model": describe(model)}

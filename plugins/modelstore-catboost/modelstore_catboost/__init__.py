"""modelstore plugin for CatBoost: the ``catboost`` flavor.

``CatBoostClassifier``, ``CatBoostRegressor``, ``CatBoostRanker`` and ``CatBoost`` are written
with their own ``save_model`` in CatBoost's binary format (``model.cbm``), categorical features
included, and load back as the same class. The format is data: no version needs ``trust=True``.

Nothing here imports catboost until a catboost model is actually handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, FlavorPlugin, VersionFiles

FLAVOR = "catboost"
PLUGIN = "modelstore-catboost"


class CatBoostPlugin(FlavorPlugin):
    flavor = FLAVOR
    modules = ("catboost", "_catboost")  # _catboost: the compiled module behind its classes

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        from ._persist import serialize

        return serialize(model, directory)

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        from ._persist import deserialize

        return deserialize(flavor, files, verified)

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        from ._metadata import describe, signature

        return {"model": describe(model, flavor), "signature": signature(model)}


plugin = CatBoostPlugin()

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

from modelstore_core.plugin_api import Flavor, FlavorPlugin, VersionFiles

FLAVOR = "xgboost"
PLUGIN = "modelstore-xgboost"


class XGBoostPlugin(FlavorPlugin):
    flavor = FLAVOR
    modules = ("xgboost",)

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        from ._persist import serialize

        return serialize(model, directory, options)

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        from ._persist import deserialize

        return deserialize(flavor, files, verified)

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        from ._metadata import describe, signature

        return {"model": describe(model, flavor), "signature": signature(model)}


plugin = XGBoostPlugin()

"""modelstore plugin for LightGBM: the ``lightgbm`` flavor.

``Booster``, ``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker`` and ``LGBMModel`` are written in
LightGBM's text model format (``model.txt``, every iteration) and load back as the same class. The
format is data, checked before LightGBM reads it: no version of this flavor needs ``trust=True``.

Nothing here imports lightgbm until a lightgbm model is actually handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, FlavorPlugin, VersionFiles

FLAVOR = "lightgbm"
PLUGIN = "modelstore-lightgbm"


class LightGBMPlugin(FlavorPlugin):
    flavor = FLAVOR
    modules = ("lightgbm",)

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        from ._persist import serialize

        return serialize(model, directory)

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        from ._persist import deserialize

        return deserialize(flavor, files, verified)

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        from ._metadata import describe

        return {"model": describe(model)}


plugin = LightGBMPlugin()

"""modelstore plugin for scikit-learn: the ``sklearn`` flavor.

Models are written with skops (``model.skops``: a zip of JSON and ``.npy`` files, loaded without
pickle) and re-packed so that the same fitted model always gives the same bytes. A model skops
cannot represent falls back to a joblib pickle (``format: "pickle"``, ``safe: false``), which only
loads with ``ModelStore.load(..., trust=True)``.

Nothing here imports scikit-learn or skops until a scikit-learn model is actually handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, FlavorPlugin, VersionFiles

FLAVOR = "sklearn"
PLUGIN = "modelstore-sklearn"


class SklearnPlugin(FlavorPlugin):
    flavor = FLAVOR
    modules = ("sklearn",)
    # trylast: a class from another framework that subclasses scikit-learn's base classes (xgboost's
    # ``XGBClassifier``...) goes to that framework's own plugin when one is installed.
    trylast = True

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        from ._persist import serialize

        return serialize(model, directory, options)

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        from ._persist import deserialize

        return deserialize(flavor, files, options, verified)

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        from ._metadata import describe, signature

        return {"model": describe(model, flavor), "signature": signature(model)}


plugin = SklearnPlugin()

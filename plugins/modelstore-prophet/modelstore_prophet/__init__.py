"""modelstore plugin for Prophet: the ``prophet`` flavor.

A fitted ``prophet.Prophet`` is written with Prophet's own ``model_to_json`` (``model.json``: no
pickle) and read back with ``model_from_json``, after the document's shape has been checked. JSON
is data: no version of this flavor needs ``trust=True``.

Nothing here imports prophet until a Prophet model is actually handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, FlavorPlugin, VersionFiles

FLAVOR = "prophet"
PLUGIN = "modelstore-prophet"


class ProphetPlugin(FlavorPlugin):
    flavor = FLAVOR
    modules = ("prophet",)

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        from ._persist import serialize

        return serialize(model, directory)

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        from ._persist import deserialize

        return deserialize(flavor, files, verified)

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        from ._metadata import describe

        return {"model": describe(model)}


plugin = ProphetPlugin()

"""modelstore plugin for statsmodels: the ``statsmodels`` flavor.

Fitted results (``OLS(...).fit()``, ``ARIMA(...).fit()``, ``Logit``, ``GLM``...) are written with
their own ``save`` (``model.pickle``) and read back with ``statsmodels.iolib.smpickle.load_pickle``.
That is a pickle, which can run code when loaded: every version of this flavor is ``safe: false``
and loads only with ``load(..., trust=True)``.

Nothing here imports statsmodels until a statsmodels object is actually handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, FlavorPlugin, VersionFiles

FLAVOR = "statsmodels"
PLUGIN = "modelstore-statsmodels"


class StatsmodelsPlugin(FlavorPlugin):
    flavor = FLAVOR
    modules = ("statsmodels",)

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        from ._persist import serialize

        return serialize(model, directory)

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        from ._persist import deserialize

        return deserialize(flavor, files, options, verified)

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        from ._metadata import describe

        return {"model": describe(model)}


plugin = StatsmodelsPlugin()

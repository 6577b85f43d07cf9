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

from modelstore_core.plugin_api import Flavor, VersionFiles, comes_from, hookimpl

FLAVOR = "statsmodels"
PLUGIN = "modelstore-statsmodels"


def handles(model: Any) -> bool:
    """Whether ``model``'s class comes from statsmodels (decided from module names, without importing it)."""
    return comes_from(model, "statsmodels")


@hookimpl
def modelstore_serialize(model: Any, directory: Path) -> Flavor | None:
    if not handles(model):
        return None
    from ._persist import serialize

    return serialize(model, directory)


@hookimpl
def modelstore_deserialize(flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
    if flavor.name != FLAVOR:
        return None
    from ._persist import deserialize

    return deserialize(flavor, files, options, verified)


@hookimpl
def modelstore_flavors() -> list[str]:
    return [FLAVOR]


@hookimpl
def modelstore_collect_metadata(model: Any, flavor: Flavor) -> dict[str, Any] | None:
    if flavor.name != FLAVOR or model is None:
        return None
    from ._metadata import describe

    return {"model": describe(model)}

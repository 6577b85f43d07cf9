"""modelstore plugin for Prophet: the ``prophet`` flavor.

A fitted ``prophet.Prophet`` is written with Prophet's own ``model_to_json`` (``model.json``: no
pickle) and read back with ``model_from_json``, after the document's shape has been checked. JSON
is data: no version of this flavor needs ``trust=True``.

Nothing here imports prophet until a Prophet model is actually handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, VersionFiles, comes_from, hookimpl

FLAVOR = "prophet"
PLUGIN = "modelstore-prophet"


def handles(model: Any) -> bool:
    """Whether ``model``'s class comes from prophet (decided from module names, without importing it)."""
    return comes_from(model, "prophet")


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

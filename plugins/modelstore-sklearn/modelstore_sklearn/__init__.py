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

from modelstore_core import Flavor, hookimpl
from modelstore_core.plugin_helpers import top_level_modules

FLAVOR = "sklearn"
PLUGIN = "modelstore-sklearn"


def handles(model: Any) -> bool:
    """Whether ``model`` is a scikit-learn object this plugin should store (decided from module names only).

    A class from another framework that merely subclasses scikit-learn's base classes (xgboost's
    ``XGBClassifier``...) is left to that framework's own plugin.
    """
    from modelstore_core.plugins import KNOWN_PLUGINS

    modules = top_level_modules(model)
    if "sklearn" not in modules:
        return False
    if modules[0] == "sklearn":
        return True
    others = {name for name, dist in KNOWN_PLUGINS["module"].items() if dist != PLUGIN}
    return not others.intersection(modules)


@hookimpl
def modelstore_serialize(model: Any, directory: Path, options: dict[str, Any]) -> Flavor | None:
    if not handles(model):
        return None
    from ._persist import serialize

    return serialize(model, directory, options)


@hookimpl
def modelstore_deserialize(flavor: dict[str, Any], directory: Path, files: list[str], options: dict[str, Any]) -> Any:
    if flavor.get("name") != FLAVOR:
        return None
    from ._persist import deserialize

    return deserialize(flavor, directory, files, options)


@hookimpl
def modelstore_flavors() -> list[str]:
    return [FLAVOR]


@hookimpl
def modelstore_collect_metadata(model: Any, flavor: Flavor) -> dict[str, Any] | None:
    if flavor.name != FLAVOR or model is None:
        return None
    from ._metadata import describe

    return {"model": describe(model, flavor)}

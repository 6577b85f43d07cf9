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

from modelstore_core.plugin_api import Flavor, VersionFiles, comes_from, hookimpl

FLAVOR = "sklearn"
PLUGIN = "modelstore-sklearn"


def handles(model: Any) -> bool:
    """Whether ``model``'s class or a base class comes from scikit-learn (decided from module names only)."""
    return comes_from(model, "sklearn")


# trylast: a class from another framework that subclasses scikit-learn's base classes (xgboost's
# ``XGBClassifier``...) goes to that framework's own plugin when one is installed.
@hookimpl(trylast=True)
def modelstore_serialize(model: Any, directory: Path, options: dict[str, Any]) -> Flavor | None:
    if not handles(model):
        return None
    from ._persist import serialize

    return serialize(model, directory, options)


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
    from ._metadata import describe, signature

    return {"model": describe(model, flavor), "signature": signature(model)}

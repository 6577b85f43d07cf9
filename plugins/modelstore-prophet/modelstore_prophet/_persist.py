"""Writing and reading Prophet models with ``model_to_json``/``model_from_json`` (``model.json``).

Imported only when a Prophet model (or a ``prophet`` flavor version) is handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import CorruptArtifactError, Flavor, UsageError, VersionFiles, model_file, qualified_name

from . import FLAVOR, PLUGIN

FILE = "model.json"


def serialize(model: Any, directory: Path) -> Flavor:
    from prophet import Prophet
    from prophet.serialize import model_to_json

    if type(model) is not Prophet:
        raise UsageError(
            f"modelstore-prophet stores prophet.Prophet models and loads them back as such; {qualified_name(model)} is not one "
            "(a subclass could not be rebuilt)"
        )
    if model.history is None:
        raise UsageError("this Prophet model is not fitted: there is nothing to store yet (call fit first)")
    (directory / FILE).write_text(model_to_json(model), encoding="utf-8")
    return Flavor(
        name=FLAVOR,
        format="json",
        plugin=PLUGIN,
        model_class=qualified_name(model),
        safe=True,
        dependencies=["prophet"],
        options={"file": FILE},
    )


def deserialize(flavor: Flavor, files: list[str], verified: VersionFiles) -> Any:
    """The model of a ``prophet`` version: its JSON read once through ``verified`` (hashed in the
    same pass), checked, and rebuilt by ``model_from_json``."""
    from prophet.serialize import model_from_json

    from ._validate import validate

    file = flavor.options.get("file")
    model_file(verified.directory, files, file, option="file")  # only the check: the bytes come through ``verified``
    with verified.open(file) as reader:
        data = reader.read(reader.size)  # reaching the end raises IntegrityError unless these are the recorded bytes
    text = validate(data, file)
    try:
        return model_from_json(text)
    except (ValueError, TypeError, KeyError, OverflowError, AttributeError) as exc:  # pandas refusing a frame or a date
        raise CorruptArtifactError(file, f"prophet refused it: {type(exc).__name__}: {str(exc)[:200]}") from exc

"""Writing and reading xgboost models with their own ``save_model``/``load_model``.

Imported only when an xgboost model (or an ``xgboost`` flavor version) is handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import (
    CorruptArtifactError,
    CorruptRecordError,
    Flavor,
    ModelStoreError,
    UsageError,
    VersionFiles,
    check_name,
    model_file,
    qualified_name,
    restored_params,
    stored_params,
)

from . import FLAVOR, PLUGIN

#: The version of :mod:`._validate`'s checks, in the name of the verdict a load keeps when they pass:
#: bump it when they change. (Here, so that a load with a verdict does not import them.)
CHECKS = 1

#: The classes that come back as themselves: ``save_model`` writes everything they need.
CLASSES = ("Booster", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")

#: ``upload(..., format=...)`` -> (recorded format, file name). The extension picks xgboost's encoding.
FORMATS = {"ubj": ("ubjson", "model.ubj"), "json": ("json", "model.json")}

#: Either distribution provides the ``xgboost`` module; the core records the installed one(s).
DISTRIBUTIONS = ["xgboost", "xgboost-cpu"]


def known_classes() -> dict[str, type]:
    import xgboost

    return {name: getattr(xgboost, name) for name in CLASSES if hasattr(xgboost, name)}


def serialize(model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
    classes = known_classes()
    name = next((n for n, cls in classes.items() if type(model) is cls), None)
    if name is None:
        raise UsageError(
            f"modelstore-xgboost stores {', '.join(CLASSES)} and loads them back as the same class; "
            f"{qualified_name(model)} is not one of them (a subclass could not be rebuilt): store "
            "model.get_booster(), or the files of model.save_model(...) with upload(domain, files=[...])"
        )
    fmt = options.get("format", "ubj")
    if fmt not in FORMATS:
        raise UsageError(f"format={fmt!r} is not an xgboost format modelstore writes; use 'ubj' (default) or 'json'")
    kind, file = FORMATS[fmt]
    try:
        model.save_model(str(directory / file))
    except Exception as exc:
        raise UsageError(f"xgboost could not save this {qualified_name(model)} (is it fitted?): {exc}") from exc
    return Flavor(
        name=FLAVOR,
        format=kind,
        plugin=PLUGIN,
        model_class=qualified_name(model),
        safe=True,
        dependencies=list(DISTRIBUTIONS),
        options={"file": file, "class": name, **({"params": stored_params(model.get_params())} if name != "Booster" else {})},
    )


#: How each recorded format's document starts, as xgboost writes it. ``load_model`` of a buffer
#: picks JSON or UBJSON from these bytes (not from the name): checked, so that the document
#: validated in the recorded encoding is the document xgboost reads.
MAGIC = {"json": b'{"', "ubjson": b"{L"}


def deserialize(flavor: Flavor, files: list[str], verified: VersionFiles) -> Any:
    """The model of an ``xgboost`` version, parsed from the bytes that ``verified`` hashes as they
    are read: checked by :func:`._validate.validate` (unless these bytes passed the checks in an
    earlier load: a verdict kept in the cache), then loaded from memory (one read)."""
    import xgboost

    options = flavor.options
    name, file = options.get("class"), options.get("file")
    model_file(verified.directory, files, file, option="file")  # only the check: the bytes come through ``verified``
    # The file must be the one this format writes, so that the document checked below is the
    # document xgboost reads.
    expected = next((f for kind, f in FORMATS.values() if kind == flavor.format), None)
    if expected is None or file != expected:
        raise CorruptRecordError(
            "the version record", "flavor.options.file", f"is {file!r}, but an xgboost {flavor.format!r} version stores {expected!r}"
        )
    classes = known_classes()
    if name not in classes:
        raise ModelStoreError(
            f"this version holds an xgboost {name!r}, which xgboost {xgboost.__version__} with this "
            f"modelstore-xgboost cannot rebuild; upgrade them (`pip install -U {PLUGIN}[xgboost]`, or `[xgboost-cpu]`)"
        )
    with verified.open(file) as reader:
        data = bytearray(reader.size)
        reader.readinto(data)  # reaching the end raises IntegrityError unless these are the recorded bytes
    if not data.startswith(MAGIC[flavor.format]):
        raise CorruptArtifactError(file, f"it does not start like an xgboost {flavor.format} document ({bytes(data[:2])!r})")
    # The same bytes checked on this machine before (another view, store or version) are not checked again.
    check = check_name(PLUGIN, f"{flavor.format}-{CHECKS}", xgboost)
    passed = verified.passed_before(file, check)
    if not passed:
        from ._validate import validate

        validate(data, flavor.format, file)
    model = classes[name]()
    try:
        model.load_model(data)
    except xgboost.core.XGBoostError as exc:  # a document that passed the checks but not xgboost's own
        raise CorruptArtifactError(file, f"xgboost refused it: {str(exc).splitlines()[0][:200]}") from exc
    if not passed:
        verified.remember_passed(file, check)
    if options.get("params"):
        model.set_params(**restored_params(options["params"]))
    return model


# --- parameters of the scikit-learn API classes ------------------------------------------
# ``load_model`` restores the trees, objective and best iteration, but not the estimator's other
# parameters (``missing``, ``n_estimators``...), and ``missing`` changes what ``predict`` computes.
# The JSON-representable ones are recorded and set back; callables (custom objectives, metrics,
# callbacks) cannot be, and keep their defaults.

"""Writing and reading LightGBM models in LightGBM's text format (``model.txt``).

Imported only when a lightgbm model (or a ``lightgbm`` flavor version) is handled.

The text file holds the trees, objective, feature names and the pandas categories, but neither
the booster's ``best_iteration`` nor what a scikit-learn API estimator learned besides its booster
(classes, number of input features, best score) nor its constructor parameters. Those are recorded
in the version (``flavor.options``) as JSON and set back on load, so predictions are identical.
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
    restored_value,
    stored_params,
)

from . import FLAVOR, PLUGIN

#: The version of :mod:`._validate`'s checks, in the name of the verdict a load keeps when they pass:
#: bump it when they change. (Here, so that a load with a verdict does not import them.)
CHECKS = 1

#: The classes that come back as themselves.
CLASSES = ("Booster", "LGBMClassifier", "LGBMRegressor", "LGBMRanker", "LGBMModel")
FILE = "model.txt"
#: LightGBM's names for its thread count: a recorded value is bounded (each is a thread started).
THREAD_PARAMS = {"n_jobs", "num_threads", "num_thread", "nthread", "nthreads"}
MAX_THREADS = 1024


def known_classes() -> dict[str, type]:
    import lightgbm

    return {name: getattr(lightgbm, name) for name in CLASSES if hasattr(lightgbm, name)}


def serialize(model: Any, directory: Path) -> Flavor:
    classes = known_classes()
    name = next((n for n, cls in classes.items() if type(model) is cls), None)
    if name is None:
        raise UsageError(
            f"modelstore-lightgbm stores {', '.join(CLASSES)} and loads them back as the same class; "
            f"{qualified_name(model)} is not one of them (a subclass could not be rebuilt): store "
            "model.booster_, or the file of model.booster_.save_model(...) with upload(domain, files=[...])"
        )
    if name == "Booster":
        booster, options = model, {}
    else:
        if not model.__sklearn_is_fitted__():
            raise UsageError(f"this {qualified_name(model)} is not fitted: there is nothing to store yet")
        booster, options = model.booster_, {"params": stored_params(model.get_params()), "fitted": fitted_state(model, name)}
    # Every iteration (num_iteration=-1): model_to_string() would keep only up to best_iteration.
    (directory / FILE).write_text(booster.model_to_string(num_iteration=-1), encoding="utf-8")
    return Flavor(
        name=FLAVOR,
        format="text",
        plugin=PLUGIN,
        model_class=qualified_name(model),
        safe=True,
        dependencies=["lightgbm"],
        options={"file": FILE, "class": name, "best_iteration": int(booster.best_iteration), **options},
    )


def fitted_state(model: Any, name: str) -> dict[str, Any]:
    """What ``fit`` learned besides the booster, as JSON."""
    state: dict[str, Any] = {
        "n_features_in": int(model.n_features_in_),
        "fitted_with_feature_names": bool(model._fitted_with_feature_names),
        "best_score": stored_params(model.best_score_),
        "objective": model._objective if isinstance(model._objective, str) else None,
    }
    if name == "LGBMClassifier":
        classes = model.classes_.tolist()
        if not all(isinstance(c, (str, int, float, bool)) for c in classes):
            raise UsageError(
                f"this LGBMClassifier's classes are {type(classes[0]).__name__} values, which cannot be recorded as JSON: "
                "fit it with string or numeric labels, or store model.booster_"
            )
        state["classes"] = classes
    return state


def deserialize(flavor: Flavor, files: list[str], verified: VersionFiles) -> Any:
    """The model of a ``lightgbm`` version: its text model read once through ``verified`` (hashed
    in the same pass), checked (unless these bytes passed the checks in an earlier load: a verdict
    kept in the cache), and parsed by lightgbm from memory."""
    import lightgbm

    options = flavor.options
    file = options.get("file")
    model_file(verified.directory, files, file, option="file")  # only the check: the bytes come through ``verified``
    name = options.get("class")
    classes = known_classes()
    if name not in classes:
        raise ModelStoreError(
            f"this version holds a lightgbm {str(name)[:40]!r}, which lightgbm {lightgbm.__version__} with this "
            f"modelstore-lightgbm cannot rebuild; upgrade them (`pip install -U {PLUGIN}[lightgbm]`)"
        )
    best_iteration = options.get("best_iteration", -1)
    if type(best_iteration) is not int or best_iteration < -1:
        problem = f"is {str(best_iteration)[:40]!r}, not an iteration"
        raise CorruptRecordError("the version record", "flavor.options.best_iteration", problem)
    with verified.open(file) as reader:
        data = reader.read(reader.size)  # reaching the end raises IntegrityError unless these are the recorded bytes
    # The same bytes checked on this machine before (another view, store or version) are not checked again.
    check = check_name(PLUGIN, f"text-{CHECKS}", lightgbm)
    passed = verified.passed_before(file, check)
    if passed:
        text = data.decode("utf-8")
    else:
        from ._validate import validate

        text = validate(data, file)
    try:
        booster = lightgbm.Booster(model_str=text)
    except Exception as exc:  # noqa: BLE001 - LightGBMError, or the package's own JSON/parsing errors
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CorruptArtifactError(file, f"lightgbm refused it: {reason}") from exc
    if not passed:
        verified.remember_passed(file, check)
    booster.best_iteration = best_iteration
    if name == "Booster":
        return booster
    return rebuild_estimator(classes[name], name, booster, options)


def rebuild_estimator(cls: type, name: str, booster: Any, options: dict[str, Any]) -> Any:
    """An estimator as ``fit`` leaves it, from the booster and the recorded state.

    lightgbm's scikit-learn classes have no public way to wrap a loaded booster; these are the
    attributes their ``fit`` sets (lightgbm 4.x), checked by the round-trip tests.
    """
    params = options.get("params", {})
    state = options.get("fitted")
    if not isinstance(params, dict) or not isinstance(state, dict):
        raise CorruptRecordError("the version record", "flavor.options", "lacks the estimator's params and fitted state")
    model = cls(**checked_params(params))
    n_in = state.get("n_features_in")
    if type(n_in) is not int or n_in != booster.num_feature():
        problem = f"is {str(n_in)[:20]!r}, not the model's {booster.num_feature()} features"
        raise CorruptRecordError("the version record", "flavor.options.fitted.n_features_in", problem)
    best_score = state.get("best_score", {})
    if not isinstance(best_score, dict):
        raise CorruptRecordError("the version record", "flavor.options.fitted.best_score", "is not an object")
    model._Booster = booster
    model._n_features = booster.num_feature()
    model._n_features_in = n_in
    model._fitted_with_feature_names = state.get("fitted_with_feature_names") is True
    model._best_iteration = booster.best_iteration
    model._best_score = restored_value(best_score)
    booster.best_score = model._best_score
    objective = state.get("objective")
    if objective is not None:
        if not isinstance(objective, str):
            raise CorruptRecordError("the version record", "flavor.options.fitted.objective", "is not a string")
        model._objective = objective
    if name == "LGBMClassifier":
        _restore_classes(model, state.get("classes"), booster)
    model.fitted_ = True
    return model


def _restore_classes(model: Any, classes: Any, booster: Any) -> None:
    import numpy as np
    from lightgbm.compat import _LGBMLabelEncoder

    if not isinstance(classes, list) or not classes or not all(isinstance(c, (str, int, float, bool)) for c in classes):
        raise CorruptRecordError("the version record", "flavor.options.fitted.classes", "is not a list of class labels")
    if len({isinstance(c, str) for c in classes}) > 1:  # numpy cannot sort strings among numbers
        raise CorruptRecordError("the version record", "flavor.options.fitted.classes", "mixes strings and numbers")
    outputs = booster.num_model_per_iteration()
    if len(classes) != (2 if outputs == 1 else outputs):
        raise CorruptRecordError(
            "the version record", "flavor.options.fitted.classes", f"names {len(classes)} classes for a model with {outputs} outputs"
        )
    encoder = _LGBMLabelEncoder().fit(np.asarray(classes))
    if len(encoder.classes_) != len(classes):
        raise CorruptRecordError("the version record", "flavor.options.fitted.classes", "repeats a class")
    model._le = encoder
    model._classes = encoder.classes_
    model._n_classes = len(encoder.classes_)
    model._class_map = dict(zip(encoder.classes_, encoder.transform(encoder.classes_), strict=True))
    if isinstance(model.class_weight, dict):
        model._class_weight = {model._class_map[k]: v for k, v in model.class_weight.items() if k in model._class_map}
    else:
        model._class_weight = model.class_weight


# --- parameters, as JSON ------------------------------------------------------------------
# get_params() of the scikit-learn API classes. Callables (custom objectives) cannot be stored and
# keep their defaults; a non-finite float is {"float": "nan"}.


def checked_params(params: Any) -> dict[str, Any]:
    """:func:`restored_params`, and thread counts LightGBM can take (n_jobs=100000 crashes it)."""
    restored = restored_params(params)
    for key, value in restored.items():
        if key in THREAD_PARAMS and not (type(value) is int and abs(value) <= MAX_THREADS or value is None):
            raise CorruptRecordError("the version record", f"flavor.options.params.{key}", f"is {str(value)[:40]!r}, not a thread count")
    return restored

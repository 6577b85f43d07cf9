"""Writing and reading scikit-learn models: skops first, a joblib pickle only where skops cannot.

Imported only when a scikit-learn model (or an ``sklearn`` flavor version) is handled.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from modelstore_core.plugin_api import (
    CorruptArtifactError,
    Flavor,
    ModelStoreError,
    UntrustedArtifactError,
    UsageError,
    VersionFiles,
    model_file,
    qualified_name,
)

from . import FLAVOR, PLUGIN
from ._checks import CHECKED_TYPES, check_loaded_state, check_model
from ._skops import is_sklearn_estimator, node_tree, read_back, skops_io

SKOPS_FILE = "model.skops"
PICKLE_FILE = "model.joblib"

#: Types trusted on load in addition to skops's own defaults (builtins, numpy dtypes and ufuncs,
#: the public scikit-learn estimators...). Fixed here, never derived from the artifact. Each one
#: is plain Python data, a function reference that scikit-learn only calls while fitting, or (the
#: last entries, :data:`._checks.CHECKED_TYPES`) a type whose stored arrays compiled code indexes
#: without bounds checks and whose contents :mod:`._checks` therefore validates before use:
#: ``sklearn.tree._tree.Tree`` (trees, forests, gradient boosting, isolation forests) and
#: HistGradientBoosting's ``TreePredictor``.
DEFAULT_TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.utils._bunch.Bunch",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.impute._iterative.IterativeImputer",
    "sklearn.impute._iterative._ImputerTriplet",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.feature_selection._univariate_selection.chi2",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.feature_selection._univariate_selection.f_oneway",
    "sklearn.feature_selection._univariate_selection.f_regression",
    "sklearn.feature_selection._univariate_selection.r_regression",
    "sklearn.feature_selection._mutual_info.mutual_info_classif",
    "sklearn.feature_selection._mutual_info.mutual_info_regression",
    "sklearn.gaussian_process.kernels.ConstantKernel",
    "sklearn.gaussian_process.kernels.DotProduct",
    "sklearn.gaussian_process.kernels.ExpSineSquared",
    "sklearn.gaussian_process.kernels.Exponentiation",
    "sklearn.gaussian_process.kernels.Hyperparameter",
    "sklearn.gaussian_process.kernels.Matern",
    "sklearn.gaussian_process.kernels.PairwiseKernel",
    "sklearn.gaussian_process.kernels.Product",
    "sklearn.gaussian_process.kernels.RBF",
    "sklearn.gaussian_process.kernels.RationalQuadratic",
    "sklearn.gaussian_process.kernels.Sum",
    "sklearn.gaussian_process.kernels.WhiteKernel",
    *CHECKED_TYPES,
)

#: Types left untrusted by default because compiled code indexes their stored arrays without
#: bounds checks and this plugin does not (yet) check their contents: a crafted file could crash
#: the process or read past memory on ``predict``. Pass them as ``trusted_types=[...]`` for
#: artifacts whose source you trust.
MEMORY_UNSAFE_TYPES: tuple[str, ...] = ("scipy.interpolate._bsplines.BSpline",)

#: Fixed zip entry attributes, so that the archive's bytes depend only on its contents.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# --- writing -------------------------------------------------------------------------


def serialize(model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
    import skops

    sio = skops_io()
    try:
        data = canonical_skops(sio.dumps(model))
        to_trust = types_to_trust(data)
        if to_trust:
            # Read the fresh bytes back once: skops writes some objects it cannot rebuild (a
            # lambda, a class defined inside a function), and those are never among the types
            # trusted by default. This is the uploader's own in-memory model. A file of trusted
            # types only (scikit-learn's estimators, numpy, builtins) rebuilds: not read back.
            read_back(data)
    except Exception as exc:  # noqa: BLE001 - any skops failure means: use the pickle fallback
        return serialize_pickle(model, directory, exc)

    (directory / SKOPS_FILE).write_bytes(data)
    return Flavor(
        name=FLAVOR,
        format="skops",
        plugin=PLUGIN,
        model_class=qualified_name(model),
        safe=True,
        dependencies=["scikit-learn", "skops", *distributions_of(to_trust)],
        options={"file": SKOPS_FILE, "skops_version": skops.__version__, "types_to_trust": to_trust},
    )


def types_to_trust(data: bytes) -> list[str]:
    """The types in a skops archive that load only with ``trusted_types=``/``trust=True``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return untrusted_types(node_tree(archive), [])


def untrusted_types(tree: Any, allowed: list[str]) -> list[str]:
    trusted = {*DEFAULT_TRUSTED_TYPES, *allowed}
    return sorted(name for name in tree.get_unsafe_set() if name not in trusted and not is_sklearn_estimator(name))


def distributions_of(type_names: list[str]) -> list[str]:
    """The installed distributions that provide these types' top-level modules (a pipeline that
    holds an ``XGBClassifier`` needs ``xgboost`` or ``xgboost-cpu`` to load back)."""
    from importlib.metadata import packages_distributions

    modules = {name.split(".")[0] for name in type_names} - {"sklearn", "numpy", "scipy", "builtins"}
    if not modules:
        return []
    provided = packages_distributions()
    return sorted({dist for module in modules for dist in provided.get(module, ())})


def serialize_pickle(model: Any, directory: Path, skops_error: BaseException) -> Flavor:
    import joblib

    reason = f"{type(skops_error).__name__}: {skops_error}"
    try:
        joblib.dump(model, directory / PICKLE_FILE)
    except Exception as exc:
        raise UsageError(
            f"cannot store this {qualified_name(model)}: skops cannot represent it ({reason}) and "
            f"pickling it failed too ({type(exc).__name__}: {exc}); store its files with "
            "upload(domain, files=[...]) instead"
        ) from exc
    warnings.warn(
        f"skops cannot represent this {qualified_name(model)} ({reason}); it is stored as a pickle, which loads only with trust=True",
        UserWarning,
        stacklevel=2,
    )
    return Flavor(
        name=FLAVOR,
        format="pickle",
        plugin=PLUGIN,
        model_class=qualified_name(model),
        safe=False,
        dependencies=["scikit-learn", "joblib"],
        options={"file": PICKLE_FILE, "skops_error": reason[:500]},
    )


def canonical_skops(data: bytes) -> bytes:
    """Re-pack a skops archive so that equal models give equal bytes.

    skops names objects and their array files after ``id(obj)`` (memory addresses) and stamps
    every zip entry with the current time. Both are renumbered here in order of first
    appearance (ids from 1: skops ignores an id of 0), entries written in a fixed order with a
    fixed date. The object graph is unchanged: equal ids stay equal, distinct ids distinct. An
    archive whose members are not all referenced the way this expects is returned unchanged
    (correct, only not deduplicated).
    """
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        members = set(src.namelist())
        schema = json.loads(src.read("schema.json"))
        ids: dict[int, int] = {}
        files: dict[str, str] = {}

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "__id__" and type(value) is int:
                        node[key] = ids.setdefault(value, len(ids) + 1)
                    elif key == "file" and isinstance(value, str) and value in members and value != "schema.json":
                        node[key] = files.setdefault(value, f"{len(files) + 1}{PurePosixPath(value).suffix}")
                    else:
                        walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(schema)
        if set(files) != members - {"schema.json"}:
            return data
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
            for old, new in files.items():  # insertion order: order of first reference
                _write(dst, new, src.read(old))
            _write(dst, "schema.json", json.dumps(schema, indent=2).encode())
    return out.getvalue()


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


# --- reading -------------------------------------------------------------------------


def deserialize(flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
    """The model of an ``sklearn`` version. A skops archive is read whole through ``verified``
    (hashed as it is read, one pass) and parsed from memory; a pickle, only with ``trust``, is
    loaded by joblib from the verified file."""
    fmt = flavor.format
    file = flavor.options.get("file")
    model_file(verified.directory, files, file, option="file")  # only the check: the bytes come through ``verified``
    if fmt == "skops":
        with verified.open(file) as reader:
            # Reaching the end raises IntegrityError unless these are the recorded bytes. ``bytes``,
            # not a bytearray: BytesIO shares it (a bytearray is copied) and skops reads it ~20% faster.
            data = reader.read(reader.size)
        return load_skops(file, data, options)
    if fmt == "pickle":
        if not options.get("trust"):
            imported_from = flavor.options.get("imported_from")
            why = f"imported from {str(imported_from)[:40]}" if imported_from else "skops could not represent it"
            raise UntrustedArtifactError(
                f"this {flavor.model_class} was stored as a pickle ({why}), "
                "and unpickling can run arbitrary code; pass trust=True to load() only if you trust "
                "whoever could write to this store"
            )
        import joblib

        return joblib.load(verified.path(file))
    raise ModelStoreError(f"unknown sklearn format {fmt!r}: upgrade modelstore-sklearn (`pip install -U {PLUGIN}`)")


def type_names(types: Any) -> list[str]:
    """``trusted_types`` as ``module.name`` strings (types and functions accepted too)."""
    if types is None:
        return []
    if isinstance(types, (str, type)) or callable(types):
        types = [types]
    names = []
    for t in types:
        if isinstance(t, str):
            names.append(t)
        else:
            names.append(f"{t.__module__}.{getattr(t, '__qualname__', t.__name__)}")
    return names


def load_skops(file: str, data: bytes, options: dict[str, Any]) -> Any:
    """Audit the types (skops's defaults, :data:`DEFAULT_TRUSTED_TYPES`, the caller's), check the
    contents of the types trusted because they are checked, then build the model and check the
    links between its objects. ``data`` (the verified bytes of ``file``) is parsed once."""
    allowed = type_names(options.get("trusted_types"))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorruptArtifactError(file, f"not a readable skops zip ({exc})") from exc
    with archive:
        try:
            tree = node_tree(archive)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:  # skops's own refusals of a malformed schema
            raise CorruptArtifactError(file, f"skops cannot read its schema ({type(exc).__name__}: {exc})") from exc
        outside = untrusted_types(tree, allowed)
        if outside and not options.get("trust"):
            raise UntrustedArtifactError(untrusted_message(outside))
        check_loaded_state(file, tree)
        model = tree.construct()
    check_model(file, model)
    return model


def untrusted_message(types: list[str]) -> str:
    msg = (
        f"this skops artifact contains types that are not trusted by default: {', '.join(types)}. "
        f"Review them, then pass load(..., trusted_types={types!r}) to allow exactly these, "
        "or trust=True only if you trust whoever could write to this store."
    )
    unsafe = [t for t in types if t in MEMORY_UNSAFE_TYPES]
    if unsafe:
        # skops's own reasons end with its advice ``trusted=[...]``, not a keyword of load().
        msg += (
            f" Not trusted by default: {', '.join(unsafe)}: scikit-learn's compiled code indexes their stored arrays"
            " without bounds checks, and this plugin does not check their contents, so a crafted file could crash the process."
        )
    return msg

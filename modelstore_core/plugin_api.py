"""Everything a plugin author needs, in one module: the hook marker, the types hooks receive and
return, the storage base classes, the errors to raise, and small helpers.

::

    from modelstore_core.plugin_api import Flavor, hookimpl, comes_from

Standard library only besides the core: importing this module never imports an ML framework.
The helpers for ``modelstore_cli_commands`` (``common_options``, ``pass_cmdline``, ``CommandLine``,
``CLIError``, ``human_size``) are imported on first use, so that loading plugins never imports click.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bucket import BucketURL, Endpoint, backend_options, scrub, split_userinfo
from .cloud_errors import CloudErrors, DeadlineExceeded
from .errors import (
    CorruptArtifactError,
    CorruptRecordError,
    IntegrityError,
    InvalidNameError,
    KeyNotFoundError,
    ModelStoreError,
    StorageError,
    UnsupportedModelError,
    UntrustedArtifactError,
    UsageError,
)
from .flavor import Flavor, qualified_name
from .hashing import CHUNK_SIZE, HashingWriter, VerifyingReader
from .hookspecs import hookimpl
from .materialize import VersionFiles
from .plugin_bases import FlavorPlugin, StoragePlugin
from .progress import Advance
from .protocol.keys import TOP_LEVEL
from .signature import columns_signature, tensors_signature
from .storage import CountingReader, ObjectInfo, StagedFile, Storage, Token

if TYPE_CHECKING:
    from .cli.app import common_options
    from .cli.context import CLIError, CommandLine, human_size, pass_cmdline

#: Command-line helpers for ``modelstore_cli_commands``, by the module that defines them (PEP 562: loaded on first use).
_CLI_HELPERS = {
    "CLIError": "modelstore_core.cli.context",
    "CommandLine": "modelstore_core.cli.context",
    "common_options": "modelstore_core.cli.app",
    "human_size": "modelstore_core.cli.context",
    "pass_cmdline": "modelstore_core.cli.context",
}


def __getattr__(name: str) -> Any:
    if name in _CLI_HELPERS:
        import importlib

        return getattr(importlib.import_module(_CLI_HELPERS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHUNK_SIZE",
    "CLIError",
    "CommandLine",
    "TOP_LEVEL",
    "Advance",
    "BucketURL",
    "CloudErrors",
    "CorruptArtifactError",
    "CorruptRecordError",
    "CountingReader",
    "DeadlineExceeded",
    "Endpoint",
    "Flavor",
    "FlavorPlugin",
    "HashingWriter",
    "IntegrityError",
    "InvalidNameError",
    "KeyNotFoundError",
    "ModelStoreError",
    "ObjectInfo",
    "StagedFile",
    "Storage",
    "StoragePlugin",
    "StorageError",
    "Token",
    "UnsupportedModelError",
    "UntrustedArtifactError",
    "UsageError",
    "VerifyingReader",
    "VersionFiles",
    "backend_options",
    "columns_signature",
    "comes_from",
    "common_options",
    "hookimpl",
    "human_size",
    "json_value",
    "restored_params",
    "restored_value",
    "stored_params",
    "model_file",
    "pass_cmdline",
    "qualified_name",
    "scrub",
    "split_userinfo",
    "tensors_signature",
    "top_level_modules",
]


def model_file(directory: Path, files: list[str], name: Any, *, option: str = "file") -> Path:
    """The verified model file ``name`` (a flavor option, read from a record that anyone with write
    access to the store could have edited) inside ``directory``.

    Only the files the core verified and handed to ``modelstore_deserialize`` may be read: any
    other name (another path, ``../x``, an absolute path, a non-string) is a
    :class:`CorruptRecordError` naming the option.
    """
    if not isinstance(name, str) or name not in files:
        problem = f"names {str(name)[:80]!r}, which is not one of the version's model files {files}"
        raise CorruptRecordError("the version record", f"flavor.options.{option}", problem)
    return directory / name


def top_level_modules(model: Any) -> list[str]:
    """The top-level package of the module that defines each class of ``type(model).__mro__``,
    most-derived first (``["xgboost", "xgboost", "sklearn", "builtins"]`` for an ``XGBClassifier``).

    Decided from names only: nothing is imported.
    """
    return [(getattr(cls, "__module__", None) or "").split(".")[0] for cls in type(model).__mro__]


def comes_from(model: Any, *packages: str) -> bool:
    """Whether ``type(model)`` or one of its base classes is defined in one of ``packages``
    (top-level package names, such as ``"catboost"``), decided without importing anything."""
    return not set(packages).isdisjoint(top_level_modules(model))


# --- estimator parameters -------------------------------------------------------------------------
# ``get_params()`` of a scikit-learn-API estimator (xgboost, LightGBM...) kept in a flavor's options
# and given back to the class when it is rebuilt. Unlike ``jsonable``, non-finite floats survive
# (``{"float": "nan"}``: ``missing=nan`` changes predictions), and what JSON cannot hold (callables:
# custom objectives, callbacks) is left out, so it keeps its default.

_SKIP = object()


def stored_params(params: dict[str, Any]) -> dict[str, Any]:
    """The JSON-representable ``params``, sorted by name; the others are left out."""
    stored = {key: encoded for key, value in params.items() if (encoded := _encode_param(value)) is not _SKIP}
    return dict(sorted(stored.items()))


def _encode_param(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}  # nan, inf: not JSON
    if (type(value).__module__ or "").split(".")[0] == "numpy" and hasattr(value, "tolist"):
        return _encode_param(value.tolist())
    if isinstance(value, (list, tuple)):
        items = [_encode_param(v) for v in value]
        return _SKIP if any(v is _SKIP for v in items) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: _encode_param(v) for k, v in value.items()}
        return _SKIP if any(v is _SKIP for v in items.values()) else items
    return _SKIP


def restored_params(params: Any, field: str = "flavor.options.params") -> dict[str, Any]:
    """Keyword arguments for the estimator's class from ``stored_params`` read back from a record
    (untrusted): an object whose names are identifiers; :class:`CorruptRecordError` otherwise."""
    if not isinstance(params, dict):
        raise CorruptRecordError("the version record", field, f"is a {type(params).__name__}, not an object of parameters")
    for key in params:
        if not key.isidentifier():
            raise CorruptRecordError("the version record", field, f"has a parameter named {key[:40]!r}")
    return {key: restored_value(value) for key, value in params.items()}


def restored_value(value: Any) -> Any:
    """A value of :func:`stored_params` as it was (``{"float": "nan"}`` -> ``nan``)."""
    if isinstance(value, dict):
        if set(value) == {"float"} and value["float"] in ("nan", "inf", "-inf"):
            return float(value["float"])
        return {k: restored_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restored_value(v) for v in value]
    return value


def json_value(value: Any) -> Any:
    """``value`` as plain JSON, for hyperparameters and similar settings.

    Unlike the core's ``jsonable`` (which turns NaN into ``null``), non-finite floats keep their
    meaning as strings (``"nan"``, ``"inf"``: ``missing=nan`` is a setting, not an absent value).
    numpy scalars and arrays become numbers and lists (through ``tolist``, without importing numpy),
    classes and functions their qualified name, anything else its ``repr``.
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if (type(value).__module__ or "").split(".")[0] == "numpy" and hasattr(value, "tolist"):
        return json_value(value.tolist())
    if isinstance(value, type) or callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}"
    return repr(value)

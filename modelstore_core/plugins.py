"""The plugin manager (builtin plugins and the ``modelstore`` entry-point group, loaded on first
use) and the helpers that call its hooks: :func:`open_storage`, :func:`open_transport`, :func:`serialize`,
:func:`collect_metadata` and :func:`deserializers`."""

from __future__ import annotations

import importlib
import os
import re
import sys
import threading
import types
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import MissingPluginError, PluginLoadError, UnknownSchemeError, UnknownTransportError, UnsupportedModelError, UsageError
from .flavor import RAW_FILES, Flavor, qualified_name, top_level_modules
from .importtime import collection_paused
from .jsonvalues import json_value, merge

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from .storage import Storage
    from .transport import Transport

#: Builtin plugins, registered through the same hooks as third-party ones (like pytest's).
DEFAULT_PLUGINS = (
    "modelstore_core.default_plugins.local_storage",
    "modelstore_core.default_plugins.runtime",
    "modelstore_core.default_plugins.dependencies",
    "modelstore_core.default_plugins.git",
)

#: Where a flavor, a model's top-level module, a URL scheme, a transport's scheme or a command is known to come from, so errors can
#: say what to install before the plugin exists on this machine. Used for error hints only: which
#: plugin handles a model is decided by the plugins themselves (and ``tryfirst``/``trylast``). Each
#: plugin declares these facts itself (``flavor``, ``modules``, ``schemes``, its commands);
#: tests/test_known_plugins.py fails when this copy disagrees with them.
KNOWN_PLUGINS = {
    "flavor": {
        "sklearn": "modelstore-sklearn",
        "xgboost": "modelstore-xgboost",
        "torch": "modelstore-torch",
        "keras": "modelstore-keras",
        "catboost": "modelstore-catboost",
        "transformers": "modelstore-transformers",
        "lightning": "modelstore-lightning",
        "lightgbm": "modelstore-lightgbm",
        "onnx": "modelstore-onnx",
        "statsmodels": "modelstore-statsmodels",
        "prophet": "modelstore-prophet",
    },
    "module": {
        "sklearn": "modelstore-sklearn",
        "xgboost": "modelstore-xgboost",
        "torch": "modelstore-torch",
        "keras": "modelstore-keras",
        "tf_keras": "modelstore-keras",
        "catboost": "modelstore-catboost",
        "_catboost": "modelstore-catboost",
        "transformers": "modelstore-transformers",
        "pytorch_lightning": "modelstore-lightning",
        "lightning": "modelstore-lightning",
        "lightgbm": "modelstore-lightgbm",
        "onnx": "modelstore-onnx",
        "statsmodels": "modelstore-statsmodels",
        "prophet": "modelstore-prophet",
    },
    "scheme": {
        "s3": "modelstore-s3",
        "gs": "modelstore-gcs",
        "gcs": "modelstore-gcs",
        **dict.fromkeys(("azure", "az", "abfs", "abfss", "wasb", "wasbs"), "modelstore-azure"),
    },
    "transport": {"oci": "modelstore-oci"},
    "command": {"serve": "modelstore-web", "import-mlflow": "modelstore-mlflow"},
}


@dataclass
class Plugins:
    """The loaded plugin manager plus what failed to load."""

    manager: pluggy.PluginManager
    failures: dict[str, PluginLoadError] = field(default_factory=dict)
    #: plugin name -> the entry point it was loaded from, for entry-point plugins
    entry_points: dict[str, EntryPoint] = field(default_factory=dict)

    @property
    def hook(self):
        return self.manager.hook

    @cached_property
    def distributions(self) -> dict[str, tuple[str, str]]:
        """plugin name -> (distribution name, version), for entry-point plugins. Read on first use:
        each distribution's whole metadata file is parsed, which a store's upload or load never needs."""
        return {name: (ep.dist.metadata["Name"], ep.dist.version) for name, ep in self.entry_points.items() if ep.dist is not None}


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, quicker to register a plugin: pluggy looks up every name a plugin holds
    (a module's imports, an object's inherited methods) with ``inspect.getattr_static``, slow on
    Python 3.11. A name whose value, read from the namespaces that lookup would search, is not a
    function or method carrying this project's hookimpl marker cannot be a hook and is passed
    over; pluggy itself still decides for every other name."""

    def parse_hookimpl_opts(self, plugin: Any, name: str):
        value = _own_attribute(plugin, name)
        if value is not _UNKNOWN and not _marked(value, self.project_name + "_impl"):
            return None
        return super().parse_hookimpl_opts(plugin, name)


#: What pluggy accepts as a hook implementation (see ``pluggy._manager._static_hook_attr``).
_HOOKABLE = (types.FunctionType, types.MethodType, staticmethod, classmethod)
_UNKNOWN = object()


def _own_attribute(plugin: Any, name: str) -> Any:
    """``name``'s value as stored in ``plugin``'s namespaces (a module's, an instance's, then its
    classes' in MRO order), without running descriptors; ``_UNKNOWN`` where that reading could
    differ from pluggy's (slots, a class plugin's metaclass)."""
    if isinstance(plugin, types.ModuleType):
        return plugin.__dict__.get(name)
    if isinstance(plugin, type):
        return _UNKNOWN
    own = getattr(plugin, "__dict__", None)
    if own is None:
        return _UNKNOWN
    if name in own:
        return own[name]
    for owner in type(plugin).__mro__:
        if name in owner.__dict__:
            value = owner.__dict__[name]
            return _UNKNOWN if isinstance(value, types.MemberDescriptorType) else value
    return None


def _marked(value: Any, marker: str) -> bool:
    if not isinstance(value, _HOOKABLE):
        return False
    return hasattr(value, marker) or hasattr(getattr(value, "__func__", None), marker)


_lock = threading.Lock()
_plugins: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugins, discovered on first call (not at import time)."""
    global _plugins
    if _plugins is None:
        with _lock:
            if _plugins is None:
                with collection_paused():  # their modules: see importtime
                    _plugins = load_plugins()
    return _plugins


def reset_plugins() -> None:
    """Forget the loaded plugins; the next :func:`get_plugins` discovers them again."""
    global _plugins
    with _lock:
        _plugins = None


def load_plugins() -> Plugins:
    """Build a plugin manager.

    ``MODELSTORE_DISABLE_PLUGINS`` (comma-separated names) skips entry points and builtins by name;
    ``MODELSTORE_TRACE=1`` prints every hook call to stderr.
    """
    from importlib.metadata import entry_points

    pm = _PluginManager("modelstore")
    pm.add_hookspecs(hookspecs)
    disabled = {n.strip() for n in os.environ.get("MODELSTORE_DISABLE_PLUGINS", "").split(",") if n.strip()}
    plugins = Plugins(pm)

    for module_name in DEFAULT_PLUGINS:
        short = module_name.rsplit(".", 1)[1]
        if short not in disabled:
            pm.register(importlib.import_module(module_name), name=short)

    for ep in entry_points(group="modelstore"):
        if ep.name in disabled or pm.has_plugin(ep.name):
            continue
        # Isolate each plugin: one broken install must not take the others down.
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            plugins.entry_points[ep.name] = ep
        except Exception as exc:  # noqa: BLE001 - reported, never raised here
            error = PluginLoadError(ep.name, exc)
            error.__cause__ = exc
            plugins.failures[ep.name] = error
            warnings.warn(str(error), RuntimeWarning, stacklevel=2)

    pm.check_pending()
    if os.environ.get("MODELSTORE_TRACE"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return plugins


def distribution_version(name: str) -> str | None:
    """Installed version of a distribution, or ``None`` (read once: what is imported does not change)."""
    from .distributions import installed

    found = installed(name)
    return found.version if found is not None else None


# --- calling the hooks --------------------------------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")


def open_storage(plugins: Plugins, url: str | os.PathLike, options: dict[str, Any] | None = None) -> Storage:
    """Ask the ``modelstore_store`` hooks for the backend that handles ``url``'s scheme."""
    url = os.fspath(url)
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else "file"
    storage = plugins.hook.modelstore_store(url=url, scheme=scheme, options=dict(options or {}))
    if storage is None:
        schemes = sorted({s for found in plugins.hook.modelstore_schemes() for s in found or ()})
        raise UnknownSchemeError(url, scheme, schemes, KNOWN_PLUGINS["scheme"].get(scheme))
    return storage


def open_transport(plugins: Plugins, ref: str, options: dict[str, Any] | None = None) -> Transport:
    """Ask the ``modelstore_transport`` hooks for the transport that handles ``ref``'s scheme."""
    match = _SCHEME.match(str(ref))
    if match is None:
        raise UsageError(f"{str(ref)[:200]!r} is not a reference to push to or pull from: SCHEME://..., e.g. oci://registry/repository:tag")
    scheme = match.group(1).lower()
    transport = plugins.hook.modelstore_transport(ref=str(ref), scheme=scheme, options=dict(options or {}))
    if transport is None:
        raise UnknownTransportError(str(ref), scheme, KNOWN_PLUGINS["transport"].get(scheme))
    return transport


def serialize(plugins: Plugins, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
    """Ask the flavor plugins to write ``model`` into ``directory``; :class:`UnsupportedModelError` if none does."""
    flavor = plugins.hook.modelstore_serialize(model=model, directory=directory, options=options)
    if flavor is None:
        flavors = [RAW_FILES, *(f for names in plugins.hook.modelstore_flavors() for f in names or ())]
        # Most-derived class first: a Keras model on the torch backend is also an nn.Module.
        hint = next((KNOWN_PLUGINS["module"][m] for m in top_level_modules(model) if m in KNOWN_PLUGINS["module"]), None)
        raise UnsupportedModelError(qualified_name(model), flavors, hint)
    if not isinstance(flavor, Flavor):
        raise TypeError(f"a modelstore_serialize hook returned {type(flavor).__name__}, not Flavor")
    flavor.plugin_version = distribution_version(flavor.plugin)
    return flavor


def collect_metadata(plugins: Plugins, model: Any, flavor: Flavor, domain: str) -> dict[str, Any]:
    """Every plugin's contribution, as JSON, merged (builtins first, so third-party plugins can refine them)."""
    merged: dict[str, Any] = {}
    for extra in reversed(plugins.hook.modelstore_collect_metadata(model=model, flavor=flavor, domain=domain)):
        if extra:
            merge(merged, json_value(extra))
    return merged


def deserializers(plugins: Plugins) -> tuple[Any, Any]:
    """The ``modelstore_deserialize`` callers of the plugins that read through ``verified`` (called
    before the files are hashed) and of the others (called only once every file is), each ``None``
    when there is no such plugin."""
    impls = plugins.hook.modelstore_deserialize.get_hookimpls()
    streaming = [impl.plugin for impl in impls if "verified" in impl.argnames]
    others = [impl.plugin for impl in impls if "verified" not in impl.argnames]

    def caller(chosen: list) -> Any:
        return plugins.manager.subset_hook_caller("modelstore_deserialize", [i.plugin for i in impls if i.plugin not in chosen])

    return (caller(streaming) if streaming else None), (caller(others) if others else None)


def missing_plugin(flavor: Flavor) -> MissingPluginError:
    """The error for a flavor no installed plugin loads, naming the plugin to install."""
    return MissingPluginError(flavor.name, flavor.plugin or KNOWN_PLUGINS["flavor"].get(flavor.name))

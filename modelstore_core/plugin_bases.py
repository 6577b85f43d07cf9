"""Bases for plugins that state their flavor, their URL schemes or their transports' schemes once.

The hookspecs (:mod:`modelstore_core.hookspecs`) stay the contract: a subclass of these bases is
an ordinary pluggy plugin object whose ``modelstore_*`` methods are hook implementations; the
bases write them, with the "is this mine?" guard, once. A plugin written as a module of
``@hookimpl`` functions keeps working as it is.

::

    class XGBoostPlugin(FlavorPlugin):
        flavor = "xgboost"
        modules = ("xgboost",)  # what `comes_from` checks: nothing is imported to decide

        def serialize(self, model, directory, options): ...
        def deserialize(self, flavor, files, options, verified): ...
        def metadata(self, model, flavor): ...


    plugin = XGBoostPlugin()  # the entry point names it: xgboost = "modelstore_xgboost:plugin"
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import MissingFrameworkError
from .flavor import comes_from
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .cache import VersionFiles
    from .flavor import Flavor
    from .storage import Storage
    from .transport import Transport

#: The two forms of :meth:`FlavorPlugin.deserialize`: reading through ``verified`` (called first,
#: before the files are hashed), or reading the files under ``directory`` (called once every file is).
READS_THROUGH_VERIFIED = ("flavor", "files", "options", "verified")
READS_HASHED_FILES = ("flavor", "directory", "files", "options")


class FlavorPlugin:
    """A framework's flavor: subclass it, set :attr:`flavor` and :attr:`modules`, write
    :meth:`serialize`, :meth:`deserialize` and, if the flavor records anything, :meth:`metadata`.

    The base implements ``modelstore_serialize`` (for models :meth:`handles`),
    ``modelstore_deserialize`` and ``modelstore_collect_metadata`` (for versions of :attr:`flavor`)
    and ``modelstore_flavors``.
    """

    #: The flavor's name, recorded with every version it stores.
    flavor: ClassVar[str]
    #: Top-level packages whose classes (or their base classes) this plugin stores (``("sklearn",)``).
    modules: ClassVar[tuple[str, ...]] = ()
    #: Precedence of ``modelstore_serialize`` between plugins that could both take a model (pluggy's):
    #: ``tryfirst`` for a framework built on another's classes (Keras models are ``nn.Module`` objects),
    #: ``trylast`` for a generic fallback (scikit-learn takes estimators no dedicated plugin claimed).
    tryfirst: ClassVar[bool] = False
    trylast: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(getattr(cls, "flavor", None), str) or not cls.flavor:
            raise TypeError(f"{cls.__qualname__} must name its flavor: flavor = '...'")
        if cls.tryfirst and cls.trylast:
            raise TypeError(f"{cls.__qualname__} cannot be both tryfirst and trylast")
        # pluggy reads a hook implementation's options from its function: one function per class.
        cls.modelstore_serialize = _serialize_hook(tryfirst=cls.tryfirst, trylast=cls.trylast)
        # pluggy passes the arguments an implementation names; the core calls one naming ``verified`` first.
        arguments = tuple(inspect.signature(cls.deserialize).parameters)[1:]
        if arguments == READS_THROUGH_VERIFIED:
            cls.modelstore_deserialize = _deserialize_through_verified
        elif arguments == READS_HASHED_FILES:
            cls.modelstore_deserialize = _deserialize_hashed_files
        else:
            raise TypeError(
                f"{cls.__qualname__}.deserialize takes (self, {', '.join(READS_THROUGH_VERIFIED)}) or,"
                f" to be called only once every file is hashed, (self, {', '.join(READS_HASHED_FILES)}); not {arguments}"
            )
        if cls.metadata is not FlavorPlugin.metadata:
            cls.modelstore_collect_metadata = _collect_metadata

    def handles(self, model: Any) -> bool:
        """Whether ``model`` is this plugin's: its class or a base class comes from one of :attr:`modules`,
        decided from names alone. Override to look closer (after checking names, a framework whose
        object exists is imported: an ``isinstance`` check is then free)."""
        return comes_from(model, *self.modules)

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        """Write ``model`` (one :meth:`handles`) into ``directory``; see ``modelstore_serialize``."""
        raise NotImplementedError

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        """Rebuild a version of :attr:`flavor`; see ``modelstore_deserialize``. Declared as
        ``deserialize(self, flavor, directory, files, options)`` instead, it is called only once every
        file is hashed, and reads them under ``directory``."""
        raise NotImplementedError

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any] | None:
        """What to record about ``model``, a model of :attr:`flavor` (never ``None``); see
        ``modelstore_collect_metadata``."""
        return None

    @hookimpl
    def modelstore_flavors(self) -> list[str]:
        return [self.flavor]


def _framework_needed(storing: bool):
    """Wraps serialize or deserialize: a framework module of the plugin (one of its ``modules``) that
    is not installed is a :class:`MissingFrameworkError` naming the plugin's extra that installs it.
    (A submodule missing from an installed framework is another version's layout: left as it is.)"""

    def wrap(method):
        @functools.wraps(method)
        def calling(self: FlavorPlugin, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except ModuleNotFoundError as exc:
                module = (exc.name or "").partition(".")[0]
                if module not in self.modules or _importable(module):
                    raise
                distribution, extra = _install_spec(self, module)
                raise MissingFrameworkError(self.flavor, module, distribution, extra, storing=storing) from exc

        return calling

    return wrap


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _install_spec(plugin: FlavorPlugin, module: str) -> tuple[str | None, str | None]:
    """The plugin's distribution (as installed, else as the core knows it) and its extra named after
    ``module`` or the flavor (``modelstore-xgboost[xgboost]``), if it has one."""
    from packaging.utils import canonicalize_name

    from .plugins import KNOWN_PLUGINS

    installed = metadata.packages_distributions().get(type(plugin).__module__.partition(".")[0], [])
    distribution = installed[0] if installed else KNOWN_PLUGINS["flavor"].get(plugin.flavor)
    extras: list[str] = []
    if distribution:
        try:
            extras = metadata.metadata(distribution).get_all("Provides-Extra") or []
        except metadata.PackageNotFoundError:
            pass
    wanted = {canonicalize_name(module), canonicalize_name(plugin.flavor)}
    return distribution, next((extra for extra in extras if canonicalize_name(extra) in wanted), None)


def _serialize_hook(*, tryfirst: bool, trylast: bool):
    @hookimpl(tryfirst=tryfirst, trylast=trylast)
    @_framework_needed(storing=True)
    def modelstore_serialize(self: FlavorPlugin, model: Any, directory: Path, options: dict[str, Any]) -> Flavor | None:
        if not self.handles(model):
            return None
        return self.serialize(model, directory, options)

    return modelstore_serialize


@hookimpl
@_framework_needed(storing=False)
def _deserialize_through_verified(self: FlavorPlugin, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles):
    if flavor.name != self.flavor:
        return None
    return self.deserialize(flavor, files, options, verified)


@hookimpl
@_framework_needed(storing=False)
def _deserialize_hashed_files(self: FlavorPlugin, flavor: Flavor, directory: Path, files: list[str], options: dict[str, Any]):
    if flavor.name != self.flavor:
        return None
    return self.deserialize(flavor, directory, files, options)


@hookimpl
def _collect_metadata(self: FlavorPlugin, model: Any, flavor: Flavor) -> dict[str, Any] | None:
    if flavor.name != self.flavor or model is None:
        return None
    return self.metadata(model, flavor)


class StoragePlugin:
    """A storage backend: subclass it, set :attr:`schemes`, write :meth:`open`. The base implements
    ``modelstore_store`` (for URLs of those schemes) and ``modelstore_schemes``."""

    #: The lower-case URL schemes this backend opens (``("s3",)``); the first is its own.
    schemes: ClassVar[tuple[str, ...]] = ()

    def open(self, url: str, scheme: str, options: dict[str, Any]) -> Storage:
        """The storage for ``url`` (whose ``scheme`` is one of :attr:`schemes`); see ``modelstore_store``."""
        raise NotImplementedError

    @hookimpl
    def modelstore_store(self, url: str, scheme: str, options: dict[str, Any]) -> Storage | None:
        if scheme not in self.schemes:
            return None
        return self.open(url, scheme, options)

    @hookimpl
    def modelstore_schemes(self) -> list[str]:
        return list(self.schemes)


class TransportPlugin:
    """A transport (somewhere outside any store that versions are pushed to and pulled from):
    subclass it, set :attr:`transports`, write :meth:`open_transport`. The base implements
    ``modelstore_transport`` (for references of those schemes)."""

    #: The lower-case reference schemes this transport handles (``("oci",)``).
    transports: ClassVar[tuple[str, ...]] = ()

    def open_transport(self, ref: str, scheme: str, options: dict[str, Any]) -> Transport:
        """The transport for ``ref`` (whose ``scheme`` is one of :attr:`transports`); see ``modelstore_transport``."""
        raise NotImplementedError

    @hookimpl
    def modelstore_transport(self, ref: str, scheme: str, options: dict[str, Any]) -> Transport | None:
        if scheme not in self.transports:
            return None
        return self.open_transport(ref, scheme, options)


__all__ = ["FlavorPlugin", "StoragePlugin", "TransportPlugin"]

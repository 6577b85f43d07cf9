"""The hooks a modelstore plugin can implement.

A plugin is a module (or object) with functions named like these specs and decorated
with :data:`hookimpl`, registered through the ``modelstore`` entry-point group::

    [project.entry-points.modelstore]
    sklearn = "modelstore_sklearn"

Implementations may accept fewer arguments than the spec lists. Builtin plugins
(``modelstore_core/default_plugins``) use exactly these hooks; being registered first,
they run after third-party plugins, so a plugin can take over any builtin behaviour.

Plugin authors import everything they need from :mod:`modelstore_core.plugin_api`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .cache import VersionFiles
    from .flavor import Flavor
    from .storage import Storage

hookspec = pluggy.HookspecMarker("modelstore")
hookimpl = pluggy.HookimplMarker("modelstore")


# --- storage -------------------------------------------------------------------


@hookspec(firstresult=True)
def modelstore_store(url: str, scheme: str, options: dict[str, Any]) -> Storage | None:
    """Open the storage backend for ``url``. Stops at first non-None result.

    :param url: what the user passed to ``ModelStore(...)``: ``file:///abs/path``, ``s3://bucket/prefix``,
        ``gs://bucket/prefix`` or a plain local path (whose ``scheme`` is ``"file"``).
    :param scheme: the URL's scheme, lower-cased (``"file"`` for plain paths).
    :param options: backend options the user passed as ``ModelStore(url, **options)``.
    :return: a :class:`~modelstore_core.storage.Storage` if this plugin handles ``scheme``, else ``None``.
    """


@hookspec
def modelstore_schemes() -> list[str]:
    """The URL schemes this plugin's ``modelstore_store`` handles (``["s3"]``).

    Used to list the available schemes when a URL's scheme is unknown, and by ``modelstore plugins``.

    :return: a list of lower-case schemes.
    """


# --- model flavors ---------------------------------------------------------------


@hookspec(firstresult=True)
def modelstore_serialize(model: Any, directory: Path, options: dict[str, Any]) -> Flavor | None:
    """Write ``model`` as files into ``directory``, if this plugin recognises it. Stops at first non-None result.

    Recognise models by checking ``type(model).__module__`` before importing the framework,
    so that handling an unrelated model never imports it. Write deterministic bytes where
    the framework allows (a re-upload of the same model is then deduplicated).

    Precedence between plugins that could both handle a model is pluggy's: a plugin for a
    framework built on another's classes marks its implementation ``tryfirst=True`` (Keras models
    are also ``nn.Module`` objects), a generic fallback marks it ``trylast=True`` (scikit-learn handles
    third-party estimators no other plugin claimed).

    :param model: the object passed to ``ModelStore.upload(domain, model=...)``.
    :param directory: an empty, private, writable directory; every file written there is stored.
    :param options: keyword options the caller passed to ``upload`` (e.g. ``format="json"``).
    :return: a :class:`~modelstore_core.flavor.Flavor` describing what was written, or ``None`` if
        this plugin does not handle ``type(model)``.
    """


@hookspec(firstresult=True)
def modelstore_deserialize(flavor: Flavor, directory: Path, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
    """Rebuild the object stored with ``flavor``. Stops at first non-None result.

    An implementation without a ``verified`` argument is called only after every file's sha256
    was verified. One that takes ``verified`` is called first, possibly before: it must read the
    files only through ``verified.open(name)`` (a reader that hashes as it reads and raises
    :class:`~modelstore_core.errors.IntegrityError` at the end of the file, so the bytes are
    verified in the pass that parses them) or ``verified.path(name)`` (a verified path, for
    libraries that need a file), and return nothing built from a file it has not read to the end.
    The core verifies every file the implementation did not before ``load`` returns.

    :param flavor: the :class:`~modelstore_core.flavor.Flavor` the serializer returned, as recorded
        (``name``, ``format``, ``plugin``, ``plugin_version``, ``model_class``, ``safe``, ``options``;
        ``files`` and ``dependencies`` are empty). Return ``None`` unless ``flavor.name`` is one of yours.
    :param directory: local directory holding the version's files under their stored names.
    :param files: the stored names of the model's files (extras excluded), relative to ``directory``.
    :param options: keyword options the caller passed to ``load``. ``options["trust"]`` is ``True``
        only if the caller explicitly trusts the artifact; never execute code from an artifact
        (pickle) without it: raise :class:`~modelstore_core.errors.UntrustedArtifactError` instead.
    :param verified: the version's files (:class:`~modelstore_core.cache.VersionFiles`):
        ``open(name)``, ``path(name)``; a name read from the record is checked against the version's files.
    :return: the loaded object.
    """


@hookspec
def modelstore_flavors() -> list[str]:
    """The flavor names this plugin serializes and deserializes (``["sklearn"]``).

    :return: a list of flavor names.
    """


# --- metadata --------------------------------------------------------------------


@hookspec
def modelstore_collect_metadata(model: Any, flavor: Flavor, domain: str) -> dict[str, Any] | None:
    """Contribute metadata to a version being uploaded. Every implementation is called.

    The returned dicts are merged (nested dicts key by key) into the version's metadata, so
    use a top-level key that names your plugin or concern. Values are made JSON-safe
    (numpy scalars and arrays converted); never return absolute local paths or credentials.
    A flavor plugin puts its model's settings under ``{"model": {"hyperparameters": {...}}}``:
    they become the version's default ``params`` (flattened to dotted names). The record keys the
    core owns (``metrics``, ``params``, ``signature``, ``data``...) are checked like the rest of
    the record, and an upload whose metadata breaks their rules fails before it commits.

    :param model: the uploaded object, or ``None`` for a raw-files upload.
    :param flavor: the :class:`~modelstore_core.flavor.Flavor` the serializer returned.
    :param domain: the domain the version is uploaded to.
    :return: a dict to merge into the metadata, or ``None``.
    """


# --- command line ----------------------------------------------------------------


@hookspec
def modelstore_cli_commands() -> list[click.Command]:
    """Commands this plugin adds to the ``modelstore`` command line. Every implementation is called.

    Called only when the command line needs a command it does not have itself (and for ``--help``),
    so import click and the command's own dependencies inside the implementation. A name the core
    already uses, or one another plugin registered first, is skipped with a warning.

    :return: a list of :class:`click.Command` (or groups).
    """

"""The hooks a modelstore plugin can implement.

A plugin is a module (or object) with functions named like these specs and decorated
with :data:`hookimpl`, registered through the ``modelstore`` entry-point group::

    [project.entry-points.modelstore]
    sklearn = "modelstore_sklearn"

Plugin authors import everything they need from :mod:`modelstore_core.plugin_api`.
How the core calls the hooks (they are `pluggy <https://pluggy.readthedocs.io/>`_ hooks):

- An implementation may accept **fewer arguments** than its spec lists (any subset, by name):
  take only what you use, so that a spec can gain arguments without breaking plugins.
- A hook marked "Stops at first non-None result" (``modelstore_store``, ``modelstore_serialize``,
  ``modelstore_deserialize``, ``modelstore_transport``) stops at the first implementation that returns something other than
  ``None``: return ``None`` for anything that is not yours. Every implementation of the other hooks
  is called, and their results are collected.
- Implementations run **last registered first**. The builtin plugins (the local-directory
  backend; the runtime, dependency and git collectors) use exactly these hooks and are registered
  before the entry-point plugins, and the builtin fallback (the local backend) is also marked
  ``trylast=True``, so a third-party plugin always gets the first look and can take over any
  builtin behaviour.
- When two plugins could both handle one object, precedence is declared with ``tryfirst`` /
  ``trylast``, never left to registration order (see ``modelstore_serialize``).
- A plugin that fails to import is reported (``modelstore plugins``, and a one-line warning) and
  the others still load.
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
    from .transport import Transport

hookspec = pluggy.HookspecMarker("modelstore")
hookimpl = pluggy.HookimplMarker("modelstore")


# --- storage -------------------------------------------------------------------


@hookspec(firstresult=True)
def modelstore_store(url: str, scheme: str, options: dict[str, Any]) -> Storage | None:
    """Open the storage backend for ``url``. Stops at first non-None result: the first backend that
    returns a ``Storage`` serves the store.

    :param url: what the user passed to ``ModelStore(url)`` (or ``--store``, or ``$MODELSTORE_URL``):
        ``file:///abs/path``, ``s3://bucket/prefix``, ``gs://bucket/prefix`` or a plain local path
        (whose ``scheme`` is ``"file"``).
    :param scheme: the URL's scheme, lower-cased (``"file"`` for plain paths).
    :param options: the keyword arguments of ``ModelStore(url, **options)``, for backend settings
        (``endpoint_url``, ``page_size``...); reject unknown ones with a clear error. Accept ``timeout``
        (seconds, a float): ``ModelStore(url, timeout=...)`` and ``modelstore --timeout`` pass it, when
        the user gives one, as the most one storage operation may take, retries included.
    :return: a :class:`~modelstore_core.storage.Storage` if this plugin handles ``scheme``, else ``None``.
        When no plugin answers, the user gets ``UnknownSchemeError`` listing the schemes from
        ``modelstore_schemes``.
    """


@hookspec
def modelstore_schemes() -> list[str]:
    """The URL schemes this plugin's ``modelstore_store`` handles (``["s3"]``). Every implementation is called.

    Used to list the available schemes when a URL's scheme is unknown, and by ``modelstore plugins``.

    :return: a list of lower-case schemes, without ``://``.
    """


# --- moving versions outside a store ------------------------------------------------


@hookspec(firstresult=True)
def modelstore_transport(ref: str, scheme: str, options: dict[str, Any]) -> Transport | None:
    """Open the transport for ``ref``, a place outside any store that versions are pushed to and
    pulled from (``ModelStore.push``, ``ModelStore.pull``, ``modelstore push``/``pull``).
    Stops at first non-None result: the first plugin that returns a transport moves the version.

    The core resolves the version and checks it before a push, and checks what a pull fetched (its
    record, that its files are exactly those the record lists, its signatures against the trust
    policy) and commits it: a transport only moves bytes, verifying each against what the other
    side claims (see :class:`~modelstore_core.transport.Transport`).

    :param ref: what the user passed, e.g. ``oci://ghcr.io/team/churn:3``.
    :param scheme: the reference's scheme, lower-cased (``"oci"``).
    :param options: the keyword arguments of ``push(..., **options)`` / ``pull(..., **options)``
        (``plain_http=True``...); reject unknown ones with a clear error.
    :return: a :class:`~modelstore_core.transport.Transport` if this plugin handles ``scheme``, else
        ``None``. When no plugin answers, the user gets ``UnknownTransportError`` naming the plugin to
        install when one is known.
    """


# --- model flavors ---------------------------------------------------------------


@hookspec(firstresult=True)
def modelstore_serialize(model: Any, directory: Path, options: dict[str, Any]) -> Flavor | None:
    """Write ``model`` as files into ``directory``, if this plugin recognises it. Stops at first non-None result.

    Recognise models by names before importing the framework (``type(model).__module__``, the
    module names in ``type(model).__mro__``), so that handling an unrelated model never imports it.
    Write deterministic bytes where the framework allows it (sorted keys, fixed timestamps in
    archives): a re-upload of an unchanged model is then deduplicated, and only a small version
    record is written.

    Precedence between plugins that could both handle a model is pluggy's: a plugin for a
    framework built on another's classes marks its implementation ``tryfirst=True`` (modelstore-keras:
    Keras 3 models are also ``nn.Module`` objects), a generic fallback marks it ``trylast=True``
    (modelstore-sklearn takes any estimator built on scikit-learn's base classes, after a dedicated
    plugin such as modelstore-xgboost had its look).

    :param model: the object passed to ``ModelStore.upload(domain, model=...)``.
    :param directory: an empty, private, writable directory; every file written there is stored, under
        its path relative to ``directory``.
    :param options: the extra keyword arguments the caller passed to ``upload`` (e.g. ``format="json"``,
        ``trusted_types``).
    :return: a :class:`~modelstore_core.flavor.Flavor` describing what was written, or ``None`` if
        this plugin does not handle ``type(model)``. The core records the flavor's ``model_class`` and
        ``format`` (and the plugin and its version) for every version: plugin metadata need not repeat them.
    """


@hookspec(firstresult=True)
def modelstore_deserialize(flavor: Flavor, directory: Path, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
    """Rebuild the object stored with ``flavor``. Stops at first non-None result.

    An implementation without a ``verified`` argument is called only after every file's sha256
    was verified against the version record. One that takes ``verified`` is called first, before
    the files are hashed: it must read them only through ``verified.open(name)`` or
    ``verified.path(name)``, and return nothing built from a file before its reader finished. The
    core hashes whatever the implementation did not read before ``load`` returns; if the
    implementation raises, the core first checks the files it had not finished and raises
    :class:`~modelstore_core.errors.IntegrityError` for a damaged one. A file verified before and
    unchanged since (the cache's proof) is read without hashing.

    In a version of several models (``upload(domain, models={"encoder": enc, ...})``), each part is
    loaded by its own plugin exactly as a version of its own: ``directory`` is the part's folder
    (``…/encoder``), ``files`` its files relative to that folder, and ``options`` the load's options
    plus those of ``part_options["encoder"]``.

    :param flavor: the :class:`~modelstore_core.flavor.Flavor` the serializer returned, read back from
        the version record (validated): ``name``, ``format``, ``plugin``, ``plugin_version``,
        ``model_class``, ``safe``, ``options``; ``files`` and ``dependencies`` are empty. Return ``None``
        unless ``flavor.name`` is one of yours.
    :param directory: a local directory holding the version's files under their stored names (in the
        user's cache: do not modify it).
    :param files: the stored names of the model's files, relative to ``directory`` (extras, under
        ``extras/``, are excluded).
    :param options: the extra keyword arguments the caller passed to ``load``, plus ``options["trust"]``,
        ``True`` only when the caller passed ``trust=True``. Never execute code from an artifact
        (unpickle, ``torch.load`` without ``weights_only``...) without it: raise
        :class:`~modelstore_core.errors.UntrustedArtifactError`, saying to pass ``trust=True`` only for
        artifacts from a trusted source.
    :param verified: optional: take it to verify the files in the pass that parses them.
        ``verified.open(name)`` is a ``VerifyingReader`` (``read``,
        ``readinto``, ``skip``, ``finish``, read front to back; hashing runs on a second thread during
        large ``readinto`` calls): the read that reaches the end, or ``finish()``, raises
        ``IntegrityError`` unless the file holds the recorded bytes, and a file of the wrong size is
        refused when opened. ``verified.path(name)`` is a verified path, for libraries that need a
        file. Both refuse a name that is not one of the version's files (``CorruptRecordError``), so
        a name read from the record needs no other check. ``verified.passed_before(name, check)``
        says whether the file's bytes (its sha256) passed the plugin's ``check`` (a name from
        ``plugin_api.check_name``: the plugin's, the check's and the framework's versions) in an earlier load on this machine, and
        is ``False`` until the file has been verified in this load; ``verified.remember_passed(name,
        check)`` keeps that verdict in the per-user cache, so that a costly check of the same bytes
        in another version or store runs once.
    :return: the loaded object. If no plugin claims the flavor, the user gets ``MissingPluginError``
        naming the distribution recorded in ``flavor.plugin``.
    """


@hookspec
def modelstore_flavors() -> list[str]:
    """The flavor names this plugin serializes and deserializes (``["sklearn"]``). Every implementation is called.

    Used in ``UnsupportedModelError`` ("installed flavors: ...") and by ``modelstore plugins``.

    :return: a list of flavor names.
    """


# --- metadata --------------------------------------------------------------------


@hookspec
def modelstore_collect_metadata(model: Any, flavor: Flavor, domain: str) -> dict[str, Any] | None:
    """Contribute metadata to a version being uploaded. Every implementation is called.

    The returned dicts are merged (nested dicts key by key) into the version's metadata, and the
    core's own keys (``files``, ``flavor``, ``tags``, ``version``...) always win, so use a top-level
    key that names your plugin or concern. Values are made JSON-safe (numpy scalars and arrays
    become numbers and lists, NaN becomes ``null``, paths keep only their final name), but keep them
    small and meaningful; never return absolute local paths, credentials or environment variables.
    The builtin collectors record ``runtime``, ``dependencies`` (plus ``environment``: which of them
    are the flavor's own, and the markers of platform-specific ones) and ``git`` this way.

    Two keys feed the core's own fields:

    - A flavor plugin records its model's details under ``"model"``, with its settings in
      ``{"model": {"hyperparameters": {...}}}``: they become the version's default ``params``
      (``Version.params``, ``modelstore compare``, ``ls --where params.…``), flattened to dotted names
      (a nested estimator's ``{"class", "params"}`` under its own name, pipeline steps by step name;
      lists as JSON text). Params the user passes to ``upload(params=...)`` are added over them.
      ``modelstore diff``, ``info`` and the web view show the settings once, as params:
      ``model.hyperparameters`` (and ``flavor.options.params``, where a flavor keeps the estimator's
      settings to rebuild it: ``stored_params``) only with ``--all``, like settings left unset (``null``).
    - A top-level ``"signature"`` is the model's input signature, when the framework knows it: build
      it with ``columns_signature(names, dtypes=None, feature_types={index: "categorical"}, source=...)``
      (a table's columns) or ``tensors_signature({name_or_None: (shape, dtype)}, source=...)`` (arrays
      or tensors; ``None`` in a shape is any size), both from ``modelstore_core.plugin_api``. Names,
      dtypes and shapes only, never data. An ``upload(input_example=X)`` replaces it, keeping the
      flavor's feature types for the columns it names.

    The record keys the core owns (``metrics``, ``params``, ``signature``, ``data``...) are checked like
    the rest of the record: an upload whose metadata breaks their rules fails with ``TypeError``,
    naming the field, before anything is committed.

    :param model: the uploaded object, or ``None`` for a raw-files upload and for the version as a
        whole of a several-models upload (``upload(models=...)``: each part's model comes first, with
        its own flavor).
    :param flavor: the :class:`~modelstore_core.flavor.Flavor` the serializer returned (check
        ``flavor.name`` to act only on your own models). A raw-files upload
        (``upload(domain, files=[...])``) passes ``Flavor(name="files", format="files",
        plugin="modelstore-core")``, a several-models upload ``Flavor(name="parts", ...)`` for the
        whole version.
    :param domain: the domain the version is uploaded to.
    :return: a dict to merge into the metadata, or ``None``.
    """


# --- command line ----------------------------------------------------------------


@hookspec
def modelstore_cli_commands() -> list[click.Command]:
    """Commands this plugin adds to the ``modelstore`` command line. Every implementation is called.

    Called only when the command line meets a command name it does not have itself, and for
    ``--help``: the builtin commands never load plugin code. A name the core already uses, or one
    that a plugin called earlier took (pluggy's order: last registered first), is skipped with a
    one-line warning, and so is an implementation that raises or returns something else than named
    click commands; the other plugins' commands still work. A known plugin's command run without
    its plugin (``modelstore serve`` without modelstore-web) says what to install.

    Import click and the command's own dependencies inside the implementation, so that loading
    plugins stays cheap. A command gets the builtins' shared options and output modes from
    ``modelstore_core.plugin_api``: ``common_options`` (``--store``, ``--timeout``, ``--json``,
    ``--debug``), ``pass_cmdline`` (the run's ``CommandLine``: ``store()``, ``mode``,
    ``emit_json(...)``, ``note(...)``) and ``CLIError`` (one line on stderr, exit status 1); these are
    imported on first use, so importing ``plugin_api`` does not import click.

    :return: a list of :class:`click.Command` (groups too).
    """

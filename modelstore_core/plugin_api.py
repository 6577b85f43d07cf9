"""Everything a plugin author needs, in one namespace: the hook marker, the types hooks receive and
return, the storage and transport base classes, the errors to raise, and small helpers.

::

    from modelstore_core.plugin_api import Flavor, hookimpl, comes_from

It defines nothing of its own: each name lives in the module of its idea and is re-exported here
(as ``pytest`` does over ``_pytest``), so this is the stable place to import from. Importing it
never imports an ML framework or the command line. Commands a plugin adds
(``modelstore_cli_commands``) take their helpers (``common_options``, ``pass_cmdline``,
``CommandLine``, ``CLIError``, ``human_size``) from :mod:`modelstore_core.cli`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .cache import VersionFiles, check_name
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
from .flavor import Flavor, comes_from, model_file, qualified_name, top_level_modules
from .hashing import CHUNK_SIZE, HashingDownload, HashingWriter, VerifyingReader
from .hookspecs import hookimpl
from .input_signature import columns_signature, tensors_signature
from .jsonvalues import json_value, restored_params, restored_value, stored_params
from .plugin_bases import FlavorPlugin, StoragePlugin, TransportPlugin
from .progress import Advance
from .protocol.keys import TOP_LEVEL
from .storage import CountingReader, ObjectInfo, StagedFile, Storage, Token

if TYPE_CHECKING:
    from .bucket import BucketURL, Endpoint, backend_options, scrub, split_userinfo
    from .cloud_errors import CloudErrors, DeadlineExceeded
    from .transport import Incoming, IncomingFile, Outgoing, Transport

#: Names re-exported on first use (PEP 562): what only cloud storage plugins or transport plugins
#: need, so that loading a flavor plugin does not build their classes.
_LAZY = {
    **dict.fromkeys(("BucketURL", "Endpoint", "backend_options", "scrub", "split_userinfo"), "bucket"),
    **dict.fromkeys(("CloudErrors", "DeadlineExceeded"), "cloud_errors"),
    **dict.fromkeys(("Incoming", "IncomingFile", "Outgoing", "Transport"), "transport"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        from .importtime import collection_paused

        with collection_paused():
            value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__.rpartition(".")[0]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHUNK_SIZE",
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
    "HashingDownload",
    "HashingWriter",
    "Incoming",
    "IncomingFile",
    "IntegrityError",
    "InvalidNameError",
    "KeyNotFoundError",
    "ModelStoreError",
    "ObjectInfo",
    "Outgoing",
    "StagedFile",
    "Storage",
    "StoragePlugin",
    "StorageError",
    "Token",
    "Transport",
    "TransportPlugin",
    "UnsupportedModelError",
    "UntrustedArtifactError",
    "UsageError",
    "VerifyingReader",
    "VersionFiles",
    "backend_options",
    "columns_signature",
    "comes_from",
    "hookimpl",
    "json_value",
    "model_file",
    "qualified_name",
    "restored_params",
    "restored_value",
    "scrub",
    "split_userinfo",
    "stored_params",
    "tensors_signature",
    "top_level_modules",
    "check_name",
]

"""modelstore: store, version and load trained models in your own storage.

Importing this package is cheap: no ML framework is imported, and plugins are
discovered on first use.
"""

from __future__ import annotations

from .importtime import collection_paused as _collection_paused

with _collection_paused():  # see importtime
    from .errors import (
        ConflictError,
        CorruptArtifactError,
        CorruptRecordError,
        DanglingStateError,
        DomainNotFoundError,
        EnvironmentMismatchError,
        InputMismatchError,
        IntegrityError,
        InvalidNameError,
        MissingFrameworkError,
        MissingObjectError,
        MissingPluginError,
        ModelStoreError,
        NotFoundError,
        PluginLoadError,
        RollbackError,
        SigningUnavailableError,
        SourceChangedError,
        StateNotFoundError,
        StorageError,
        TargetExistsError,
        UnknownSchemeError,
        UnsafeCacheError,
        UnsafeServerError,
        UnsupportedModelError,
        UntrustedArtifactError,
        UntrustedPointerError,
        UntrustedSignatureError,
        UsageError,
        VersionNotFoundError,
    )
    from .flavor import Flavor
    from .hookspecs import hookimpl
    from .storage import ObjectInfo, Storage
    from .store import ModelStore
    from .version import Version

__version__ = "0.1.0"

__all__ = [
    "ConflictError",
    "CorruptArtifactError",
    "CorruptRecordError",
    "DanglingStateError",
    "DomainNotFoundError",
    "EnvironmentMismatchError",
    "Flavor",
    "InputMismatchError",
    "IntegrityError",
    "InvalidNameError",
    "MissingFrameworkError",
    "MissingObjectError",
    "MissingPluginError",
    "ModelStore",
    "ModelStoreError",
    "NotFoundError",
    "ObjectInfo",
    "PluginLoadError",
    "RollbackError",
    "SigningUnavailableError",
    "SourceChangedError",
    "StateNotFoundError",
    "Storage",
    "StorageError",
    "TargetExistsError",
    "UnknownSchemeError",
    "UnsafeCacheError",
    "UnsafeServerError",
    "UnsupportedModelError",
    "UntrustedArtifactError",
    "UntrustedPointerError",
    "UntrustedSignatureError",
    "UsageError",
    "Version",
    "VersionNotFoundError",
    "hookimpl",
]

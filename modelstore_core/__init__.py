"""modelstore: store, version and load trained models in your own storage.

Importing this package is cheap: no ML framework is imported, and plugins are
discovered on first use.
"""

from __future__ import annotations

import gc as _gc

# Importing the package allocates only objects that live as long as the process (classes, functions,
# dataclass methods), enough of them to trigger a full garbage collection, which walks every object
# numpy and scikit-learn have built: 45 ms of a fresh process's 85 ms import, and nothing to free.
# So automatic collection pauses while the package imports (as it was before, after).
_collecting = _gc.isenabled()
_gc.disable()
try:
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
finally:
    if _collecting:
        _gc.enable()
    del _collecting

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

"""modelstore storage backend for Google Cloud Storage.

``ModelStore("gs://bucket/prefix")``; project and credentials come from the SDK's default chain
(Application Default Credentials), an emulator from ``STORAGE_EMULATOR_HOST``. The storage class
lives in :mod:`modelstore_gcs.storage`, imported (with google-cloud-storage) only when a ``gs://``
store is opened.
"""

from __future__ import annotations

from typing import Any

from modelstore_core.plugin_api import StoragePlugin


class GCSPlugin(StoragePlugin):
    schemes = ("gs", "gcs")

    def open(self, url: str, scheme: str, options: dict[str, Any]):
        from .storage import GCSStorage

        return GCSStorage.from_url(url, **options)


plugin = GCSPlugin()

"""modelstore storage backend for Amazon S3 and S3-compatible object stores (MinIO, R2, Ceph...).

``ModelStore("s3://bucket/prefix")``; credentials, region and profile come from boto3's default
chain, an S3-compatible endpoint from ``AWS_ENDPOINT_URL`` or ``endpoint_url=``. The storage
class lives in :mod:`modelstore_s3.storage`, imported (with boto3) only when an ``s3://`` store
is opened.
"""

from __future__ import annotations

from typing import Any

from modelstore_core.plugin_api import StoragePlugin


class S3Plugin(StoragePlugin):
    schemes = ("s3",)

    def open(self, url: str, scheme: str, options: dict[str, Any]):
        from .storage import S3Storage

        return S3Storage.from_url(url, **options)


plugin = S3Plugin()

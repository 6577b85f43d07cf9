"""modelstore storage backend for Azure Blob Storage.

``ModelStore("azure://container/prefix")``; the account and credentials come from a connection
string (``AZURE_STORAGE_CONNECTION_STRING``), an account key or SAS token (``AZURE_STORAGE_ACCOUNT``
with ``AZURE_STORAGE_KEY`` or ``AZURE_STORAGE_SAS_TOKEN``), or Entra ID through azure-identity's
``DefaultAzureCredential`` (``pip install 'modelstore-azure[identity]'``). The ``abfs[s]://`` and
``wasb[s]://container@account.../prefix`` forms Spark and fsspec users have are accepted too. The
storage class lives in :mod:`modelstore_azure.storage`, imported (with the SDK) only when such a
store is opened.
"""

from __future__ import annotations

from typing import Any

from modelstore_core.plugin_api import hookimpl

#: ``azure://`` and ``az://`` (fsspec's) name container/prefix; the others container@account host/prefix.
SCHEMES = ("azure", "az", "abfs", "abfss", "wasb", "wasbs")


@hookimpl
def modelstore_store(url: str, scheme: str, options: dict[str, Any]):
    if scheme not in SCHEMES:
        return None
    from .storage import AzureStorage

    return AzureStorage.from_url(url, **options)


@hookimpl
def modelstore_schemes():
    return list(SCHEMES)

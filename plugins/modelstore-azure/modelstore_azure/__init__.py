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

from modelstore_core.plugin_api import StoragePlugin

#: ``azure://container/prefix`` and fsspec's ``az://``
CONTAINER_SCHEMES = ("azure", "az")
#: Spark's and fsspec's ``abfs[s]://`` and ``wasb[s]://container@account.dfs.core.windows.net/prefix``
ACCOUNT_SCHEMES = ("abfs", "abfss", "wasb", "wasbs")


class AzurePlugin(StoragePlugin):
    schemes = CONTAINER_SCHEMES + ACCOUNT_SCHEMES

    def open(self, url: str, scheme: str, options: dict[str, Any]):
        from .storage import AzureStorage

        return AzureStorage.from_url(url, **options)


plugin = AzurePlugin()

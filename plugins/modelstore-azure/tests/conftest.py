from __future__ import annotations

import uuid

import pytest
from azure_servers import Azurite, Unavailable

CONTAINER = "modelstore-test"
#: What the environment may hold that would point a store elsewhere.
AZURE_VARIABLES = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """Azurite's blob service on 127.0.0.1 for the whole session, with the test container; the
    process env points the SDK at it through AZURE_STORAGE_CONNECTION_STRING."""
    try:
        server = Azurite(tmp_path_factory.mktemp("azurite") / "azurite.log").start()
    except Unavailable as exc:
        pytest.fail(f"Azurite unavailable: {exc}")  # node and npm are part of this project's machines: never skipped
    env = {"AZURE_STORAGE_CONNECTION_STRING": server.connection_string}
    with pytest.MonkeyPatch.context() as mp:
        for name in AZURE_VARIABLES:
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        from azure.storage.blob import BlobServiceClient

        with BlobServiceClient.from_connection_string(server.connection_string) as client:
            client.create_container(CONTAINER)
        server.env = env
        yield server
    server.stop()


@pytest.fixture
def az_url(azurite) -> str:
    """A fresh, empty store in the test container."""
    return f"azure://{CONTAINER}/{uuid.uuid4().hex}"

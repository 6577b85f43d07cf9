from __future__ import annotations

import uuid

import pytest
from gcs_servers import FakeGCSServer

BUCKET = "modelstore-test"


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    """fake-gcs-server on 127.0.0.1 for the whole session; STORAGE_EMULATOR_HOST points the SDK at it."""
    server = FakeGCSServer(tmp_path_factory.mktemp("gcs") / "fake-gcs-server.log").start()
    env = {"STORAGE_EMULATOR_HOST": server.endpoint, "GOOGLE_CLOUD_PROJECT": "modelstore-test"}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        from google.cloud import storage

        client = storage.Client()
        client.create_bucket(BUCKET)
        client.close()
        server.env = env
        yield server
    server.stop()


@pytest.fixture
def gs_url(gcs_server) -> str:
    """A fresh, empty store in the test bucket."""
    return f"gs://{BUCKET}/{uuid.uuid4().hex}"

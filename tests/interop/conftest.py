"""Fixtures of the tests between backends: moto's S3 server and fake-gcs-server, both for the whole
session (the server classes are the S3 and GCS plugins' own, from their test directories), and the
original modelstore library, installed apart by the `interop` nox session.

These tests need both cloud plugins with their test extras (and modelstore-sklearn): they run in
their own nox session, `interop`, never in a single plugin's.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
for plugin in ("modelstore-s3", "modelstore-gcs"):
    sys.path.insert(0, str(PLUGINS / plugin / "tests"))

from gcs_servers import FakeGCSServer  # noqa: E402
from s3_servers import MotoServer  # noqa: E402

BUCKET = "modelstore-interop"
LEGACY_ENV = "MODELSTORE_LEGACY_PATH"


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    """moto and fake-gcs-server on 127.0.0.1 (``.moto``, ``.gcs``); the process environment points
    boto3 and the GCS SDK at them."""
    moto = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    gcs = FakeGCSServer(tmp_path_factory.mktemp("gcs") / "fake-gcs-server.log").start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_CONFIG_FILE": os.devnull,  # never the developer's own configuration
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "STORAGE_EMULATOR_HOST": gcs.endpoint,
        "GOOGLE_CLOUD_PROJECT": "modelstore-test",
    }
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "GOOGLE_APPLICATION_CREDENTIALS"):
                mp.delenv(name, raising=False)
            for name, value in env.items():
                mp.setenv(name, value)
            import boto3
            from google.cloud import storage

            boto3.client("s3").create_bucket(Bucket=BUCKET)
            client = storage.Client()
            client.create_bucket(BUCKET)
            client.close()
            yield SimpleNamespace(moto=moto, gcs=gcs)
    finally:
        moto.stop()
        gcs.stop()


@pytest.fixture
def urls(servers, tmp_path):
    """A factory of fresh, empty stores of each kind: ``urls("local" | "s3" | "gs")``. An S3 store
    gets a bucket of its own (:meth:`MotoServer.new_bucket`)."""

    def make(kind: str) -> str:
        name = uuid.uuid4().hex
        if kind == "s3":
            return f"s3://{servers.moto.new_bucket()}/{name}"
        return str(tmp_path / name) if kind == "local" else f"{kind}://{BUCKET}/{name}"

    return make


@pytest.fixture(scope="session")
def legacy_modelstore():
    """The original `modelstore` (0.0.82), installed by the interop session into its own directory
    ($MODELSTORE_LEGACY_PATH: its console script is also called `modelstore`)."""
    where = os.environ.get(LEGACY_ENV)
    if where and where not in sys.path:
        sys.path.append(where)  # after the venv: its copies of shared dependencies never win
    try:
        import modelstore
    except ImportError:
        pytest.skip(f"needs modelstore==0.0.82 (the `interop` nox session installs it and sets ${LEGACY_ENV})")
    assert modelstore.__version__ == "0.0.82", modelstore.__version__
    return modelstore

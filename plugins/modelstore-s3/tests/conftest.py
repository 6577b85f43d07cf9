from __future__ import annotations

import os
import uuid

import boto3
import pytest
from s3_servers import MotoServer

BUCKET = "modelstore-test"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 for the whole session; the process env points boto3 at it."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    env = {
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": server.endpoint,
        # Never read the developer's own AWS configuration.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        server.env = env
        yield server
    server.stop()


@pytest.fixture
def s3_url(moto_server) -> str:
    """A fresh, empty store: a prefix in a bucket of its own."""
    return f"s3://{moto_server.new_bucket()}/{uuid.uuid4().hex}"  # see MotoServer.new_bucket

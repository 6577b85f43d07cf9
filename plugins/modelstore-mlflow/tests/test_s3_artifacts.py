"""Artifact locations on S3 (moto's server on 127.0.0.1), read with MLflow's own S3 repository:
every listed name is checked before a byte is fetched."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_store, tree
from modelstore_mlflow.importer import import_mlflow
from test_hostile_store import model_dir, set_location

from modelstore_core import ModelStore
from modelstore_core.testing.faults import ServerProcess

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0], [4.0, 0.0], [5.0, 3.0]], dtype=np.float32)
BUCKET = "mlflow-artifacts"


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """moto's S3 server; boto3 (and MLflow's S3 repository) pointed at it, never at real credentials."""
    pytest.importorskip("moto", reason="the test extra (moto[server]) runs S3 locally")
    import boto3

    server = ServerProcess(lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", port], tmp_path / "moto.log").start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": server.endpoint,
        "MLFLOW_S3_ENDPOINT_URL": server.endpoint,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()


def upload(client, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes())


def test_models_on_s3_and_a_listing_that_climbs(mlflow_stores, tmp_path, s3, expected):
    source = copy_store(mlflow_stores, "sqlite", tmp_path / "mlflow")
    upload(s3, Path(model_dir(source, "xgb", 1)), "xgb")
    set_location(source, "xgb", 1, f"s3://{BUCKET}/xgb")
    upload(s3, Path(model_dir(source, "torchnet", 1)), "climbs")
    s3.put_object(Bucket=BUCKET, Key="climbs/../secret", Body=b"not for the store")
    set_location(source, "torchnet", 1, f"s3://{BUCKET}/climbs")
    before = tree(tmp_path)
    target = ModelStore(tmp_path / "target", cache_dir=tmp_path / "cache")
    report = import_mlflow(f"sqlite:///{source}/mlflow.db", target, models=["xgb", "torchnet"])
    assert sorted(report.copied) == ["torchnet:2", "xgb:1"]
    assert len(report.problems) == 1 and "'torchnet' version 1 not imported" in report.problems[0] and "'..'" in report.problems[0]
    assert target.info("xgb", 1).metadata["mlflow"]["artifact_uri"] == f"s3://{BUCKET}/xgb"
    np.testing.assert_allclose(target.load("xgb", 1).predict_proba(X), expected["xgb"], rtol=1e-6)
    after = {k: v for k, v in tree(tmp_path).items() if not k.startswith(("target/", "cache/", "moto.log"))}
    assert after == {k: v for k, v in before.items() if not k.startswith("moto.log")}

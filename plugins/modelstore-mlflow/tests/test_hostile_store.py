"""A damaged or hostile MLflow store, built from a real one (conftest.py): every bad version is
reported and left out, the others come in, and nothing is read from or written to outside where
it belongs."""

from __future__ import annotations

import os
import sqlite3

import pytest
from conftest import copy_store, tree
from modelstore_mlflow.importer import import_mlflow
from modelstore_mlflow.registry import MlflowImportError

from modelstore_core import ModelStore


def model_dir(source, name: str, version: int):
    """The artifact folder a registered version's logged model names in the database."""
    with sqlite3.connect(source / "mlflow.db") as db:
        (location,) = db.execute(
            "SELECT l.artifact_location FROM model_versions v JOIN logged_models l ON v.source = 'models:/' || l.model_id"
            " WHERE v.name = ? AND v.version = ?",
            (name, version),
        ).fetchone()
    db.close()
    return location


def set_location(source, name: str, version: int, location: str) -> None:
    with sqlite3.connect(source / "mlflow.db") as db:
        db.execute(
            "UPDATE logged_models SET artifact_location = ? WHERE 'models:/' || model_id ="
            " (SELECT source FROM model_versions WHERE name = ? AND version = ?)",
            (location, name, version),
        )
    db.close()


@pytest.fixture
def hostile(mlflow_stores, tmp_path):
    """A copy of the sqlite store with one kind of damage per version; a secret beside it."""
    source = copy_store(mlflow_stores, "sqlite", tmp_path / "mlflow")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_text("not for the store\n")
    # churn 2: its location climbs out of the store with '..'
    set_location(source, "churn", 2, model_dir(source, "churn", 2) + "/../../../../../secret")
    # xgb 1: a link to the secret in place of its model file
    xgb = model_dir(source, "xgb", 1)
    os.remove(f"{xgb}/model.ubj")
    os.symlink(secret / "id_rsa", f"{xgb}/model.ubj")
    # torchnet 1: a huge (sparse) file beside the model
    with open(f"{model_dir(source, 'torchnet', 1)}/huge.bin", "wb") as f:
        f.truncate(100 << 30)
    # onnxm 1: broken YAML; textcls 1: a billion laughs
    with open(f"{model_dir(source, 'onnxm', 1)}/MLmodel", "w") as f:
        f.write("flavors: {onnx: [unclosed\n")
    with open(f"{model_dir(source, 'textcls', 1)}/MLmodel", "w") as f:
        f.write('a: &a ["x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nflavors: {}\n')
    # weights 1: an absolute location elsewhere on this machine
    with sqlite3.connect(source / "mlflow.db") as db:
        db.execute("UPDATE model_versions SET source = ? WHERE name = 'weights'", (str(secret),))
    db.close()
    return source, tmp_path


def test_each_bad_version_is_reported_and_the_others_come_in(hostile):
    source, root = hostile
    before = tree(root)
    target = ModelStore(root / "target", cache_dir=root / "cache")
    report = import_mlflow(f"sqlite:///{source}/mlflow.db", target)
    problems = "\n".join(report.problems)
    assert "'churn' version 2 not imported" in problems and "outside the directories allowed" in problems
    assert "'xgb' version 1 not imported" in problems and "symbolic link" in problems
    assert "'torchnet' version 1 not imported" in problems and "more than" in problems
    assert "'onnxm' version 1 not imported" in problems and "not valid YAML" in problems
    assert "'textcls' version 1 not imported" in problems and "aliases" in problems
    assert "'weights' version 1 not imported" in problems
    assert len(report.problems) == 6
    assert sorted(report.copied) == ["churn:1", "torchnet:2"]
    assert target.states("churn") == {"champion": 1}  # challenger named the version left out
    stored = b"".join(p.read_bytes() for p in (root / "target" / "objects").rglob("*") if p.is_file())
    assert b"not for the store" not in stored
    after = {k: v for k, v in tree(root).items() if not k.startswith(("target/", "cache/"))}
    assert after == before  # nothing written outside the target and the cache; the MLflow store untouched


def test_a_rerun_after_the_store_is_mended_imports_what_was_left_out(hostile):
    source, root = hostile
    target = ModelStore(root / "target", cache_dir=root / "cache")
    import_mlflow(f"sqlite:///{source}/mlflow.db", target, models=["torchnet"])
    os.remove(f"{model_dir(source, 'torchnet', 1)}/huge.bin")
    report = import_mlflow(f"sqlite:///{source}/mlflow.db", target, models=["torchnet"])
    assert report.ok and report.copied == ["torchnet:1"] and report.skipped == ["torchnet:2"]


def test_small_limits(mlflow_stores, tmp_path):
    source = copy_store(mlflow_stores, "sqlite", tmp_path / "mlflow")
    target = ModelStore(tmp_path / "target", cache_dir=tmp_path / "cache")
    report = import_mlflow(f"sqlite:///{source}/mlflow.db", target, models=["churn"], max_files=3)
    assert report.copied == [] and all("more than 3 files" in p for p in report.problems) and len(report.problems) == 2


def test_not_an_mlflow_store(tmp_path):
    target = ModelStore(tmp_path / "target", cache_dir=tmp_path / "cache")
    garbage = tmp_path / "mlflow.db"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(MlflowImportError):
        import_mlflow(f"sqlite:///{garbage}", target)
    with pytest.raises(MlflowImportError, match="no such database file"):
        import_mlflow(f"sqlite:///{tmp_path}/absent.db", target)
    with pytest.raises(MlflowImportError, match="no such MLflow store directory"):
        import_mlflow(str(tmp_path / "absent"), target)
    assert not (tmp_path / "absent").exists() and not (tmp_path / "absent.db").exists()


def test_a_tracking_servers_database_read_directly(mlflow_stores, tmp_path):
    """Locations a tracking server serves (``mlflow-artifacts:/...``) map to its artifacts
    destination; without one they cannot be read, and with one nothing outside it is."""
    source = copy_store(mlflow_stores, "sqlite", tmp_path / "mlflow")
    served = model_dir(source, "xgb", 1)[len(str(source / "mlruns")) + 1 :]
    set_location(source, "xgb", 1, f"mlflow-artifacts:/{served}")
    target = ModelStore(tmp_path / "target", cache_dir=tmp_path / "cache")
    uri = f"sqlite:///{source}/mlflow.db"
    report = import_mlflow(uri, target, models=["xgb"])
    assert report.copied == [] and "served by a tracking server" in report.problems[0]
    report = import_mlflow(uri, target, models=["xgb"], artifacts_destination=source / "mlruns")
    assert report.ok and report.copied == ["xgb:1"]
    set_location(source, "xgb", 1, "mlflow-artifacts:/../../secret")
    fresh = ModelStore(tmp_path / "fresh", cache_dir=tmp_path / "cache2")
    report = import_mlflow(uri, fresh, models=["xgb"], artifacts_destination=source / "mlruns")
    assert report.copied == [] and "not a plain path below the artifacts destination" in report.problems[0]

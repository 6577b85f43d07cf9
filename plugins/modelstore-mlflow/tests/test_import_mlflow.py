"""Importing stores written by the real MLflow 3 (conftest.py), and loading what came in."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import copy_store, tree
from modelstore_mlflow.importer import import_mlflow

from modelstore_core import ModelStore, UntrustedArtifactError
from modelstore_core.testing.flavors import run_python

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0], [4.0, 0.0], [5.0, 3.0]], dtype=np.float32)
TEXTS = ["the cat sat on the mat", "a dog ran far"]
REGISTERED = ["churn", "onnxm", "textcls", "torchnet", "weights", "xgb"]


@pytest.fixture(scope="module")
def imported(mlflow_stores, tmp_path_factory):
    """The sqlite store imported once, run from a working directory that is watched too."""
    root = tmp_path_factory.mktemp("imported")
    source = copy_store(mlflow_stores, "sqlite", root / "mlflow")
    work = root / "cwd"
    work.mkdir()
    before = tree(root)
    here = os.getcwd()
    os.chdir(work)
    try:
        target = ModelStore(root / "target", cache_dir=root / "cache")
        report = import_mlflow(f"sqlite:///{source}/mlflow.db", target)
    finally:
        os.chdir(here)
    after = {k: v for k, v in tree(root).items() if not k.startswith(("target/", "cache/"))}
    return {"root": root, "source": source, "report": report, "before": before, "after": after}


def fresh(imported) -> ModelStore:
    """The target as another process would see it: a cold cache."""
    return ModelStore(imported["root"] / "target", cache_dir=imported["root"] / f"cache-{len(list(imported['root'].iterdir()))}")


def test_every_registered_version_becomes_a_version_with_its_number(imported):
    report = imported["report"]
    assert report.ok, report.problems
    store = fresh(imported)
    assert sorted(store.list_domains()) == REGISTERED  # the unregistered logged model only with logged_models=True
    assert sorted(v.version for v in store.list_versions("churn")) == [1, 2]
    assert sorted(v.version for v in store.list_versions("torchnet")) == [1, 2]
    v1 = store.info("churn", 1)
    assert v1.tags["mlflow.registered_model"] == "churn" and v1.tags["mlflow.version"] == 1
    assert v1.tags["mlflow.source"].startswith("models:/m-") and v1.tags["mlflow.model_id"] == v1.tags["mlflow.source"][len("models:/") :]
    assert len(v1.tags["mlflow.run_id"]) == 32 and v1.tags["team"] == "risk"


def test_metrics_params_aliases_and_stages(imported):
    store = fresh(imported)
    churn = store.info("churn", 2)
    assert churn.metrics == {"acc": 0.75}  # the latest of steps 0 and 1
    assert churn.params == {"C": 0.5, "solver": "lbfgs"}
    mlflow = churn.metadata["mlflow"]
    assert mlflow["run"]["metrics"]["train/loss"] == 0.25  # not a metric name here: kept in the metadata
    assert store.states("churn") == {"champion": 1, "challenger": 2}
    assert store.states("xgb") == {"production": 1}
    assert store.info("xgb", 1).metrics == {"auc": 0.9}
    assert any("train/loss" in note for note in imported["report"].notes)


def test_signature_and_environment(imported):
    store = fresh(imported)
    v1 = store.info("churn", 1)
    assert v1.signature["format"] == "tensors"
    assert v1.signature["inputs"] == [{"name": None, "dtype": "float32", "shape": [None, 2]}]
    env = store.environment("churn", 1)
    names = {r.name: r for r in env.requirements}
    assert names["scikit-learn"].key and names["skops"].key and "mlflow" in {n.lower() for n in names}
    assert env.python and env.python.count(".") == 2
    text = store.info("textcls", 1).signature
    assert text["format"] == "columns" and text["inputs"][0]["dtype"] == "str"


def test_what_each_version_became(imported):
    store = fresh(imported)
    became = {f"{d}:{v.version}": (v.flavor.name, v.flavor.format, v.flavor.safe) for d in REGISTERED for v in store.list_versions(d)}
    assert became == {
        "churn:1": ("sklearn", "skops", True),
        "churn:2": ("sklearn", "pickle", False),
        "xgb:1": ("xgboost", "ubjson", True),
        "torchnet:1": ("torch", "torch-pickle", False),
        "torchnet:2": ("files", "files", False),  # torch.export's archive: raw files, it holds pickles
        "weights:1": ("torch", "safetensors", True),
        "onnxm:1": ("onnx", "onnx", True),
        "textcls:1": ("transformers", "safetensors", True),
    }
    notes = "\n".join(imported["report"].notes)
    for line in ("churn:1", "churn:2", "xgb:1", "torchnet:1", "torchnet:2", "weights:1", "onnxm:1", "textcls:1"):
        assert line + " " in notes
    assert "trust=True" in notes and "raw files" in notes


def test_pickles_come_byte_for_byte_and_load_only_with_trust(imported):
    store = fresh(imported)
    source = imported["source"]
    version = store.info("churn", 2)
    stored = {f.path: f.sha256 for f in version.files}
    location = version.metadata["mlflow"]["artifact_uri"]
    original = hashlib.sha256((source / location[len(str(source)) + 1 :] / "model.pkl").read_bytes()).hexdigest()
    assert stored["model.pkl"] == original
    assert "extras/MLmodel" in stored and "extras/requirements.txt" in stored
    with pytest.raises(UntrustedArtifactError, match="imported from MLflow"):
        store.load("churn", 2)
    with pytest.raises(UntrustedArtifactError, match="only as a pickle"):
        store.load("torchnet", 1)
    with pytest.raises(UntrustedArtifactError):
        store.load("torchnet", 2)


def test_predictions_after_the_import(imported, expected):
    import torch

    store = fresh(imported)
    skops = store.load("churn", 1)
    pickled = store.load("churn", 2, trust=True)
    assert type(skops).__name__ == type(pickled).__name__ == "LogisticRegression"
    assert skops.predict_proba(X).tolist() == expected["churn"]
    assert pickled.predict_proba(X).tolist() == expected["churn"]
    np.testing.assert_allclose(store.load("xgb", 1).predict_proba(X), expected["xgb"], rtol=1e-6)
    module = store.load("torchnet", 1, trust=True)
    assert isinstance(module, torch.nn.Module)
    np.testing.assert_allclose(module(torch.from_numpy(X)).detach().numpy(), expected["torchnet"], rtol=1e-6)
    skeleton = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    net = store.load("weights", 1, model=skeleton).eval()
    np.testing.assert_allclose(net(torch.from_numpy(X)).detach().numpy(), expected["torchnet"], rtol=1e-6)
    session = store.load("onnxm", 1, session=True)
    np.testing.assert_allclose(session.run(None, {"x": X})[0], expected["onnxm"], rtol=1e-6)
    pipe = store.load("textcls", 1)
    got = pipe(TEXTS)
    assert [g["label"] for g in got] == [e["label"] for e in expected["textcls"]]
    np.testing.assert_allclose([g["score"] for g in got], [e["score"] for e in expected["textcls"]], rtol=1e-5)
    exported = store.load("torchnet", 2, trust=True)  # raw files: their paths
    assert any(str(p).endswith("model.pt2") for p in (exported if isinstance(exported, list) else [exported]))


def test_the_mlflow_store_and_everything_else_is_left_as_it_was(imported):
    """Only the target and the cache are written: not the MLflow store (its database included),
    not the working directory (MLflow's default tracking URI would create mlflow.db there)."""
    assert imported["after"] == imported["before"]


def test_a_rerun_imports_nothing_twice(imported):
    root = imported["root"]
    target = ModelStore(root / "target", cache_dir=root / "cache-rerun")
    objects = sorted(p.name for p in (root / "target" / "objects").rglob("*") if p.is_file())
    artifacts = imported["source"] / "mlruns"
    artifacts.rename(artifacts.with_name("mlruns.away"))  # a re-run reads no model file: only MLflow's metadata and the records
    try:
        again = import_mlflow(f"sqlite:///{imported['source']}/mlflow.db", target)
    finally:
        artifacts.with_name("mlruns.away").rename(artifacts)
    assert again.copied == [] and again.states == [] and again.ok
    assert sorted(again.skipped) == sorted(imported["report"].copied)
    assert again.objects == 0 and again.bytes_moved == 0
    assert sorted(p.name for p in (root / "target" / "objects").rglob("*") if p.is_file()) == objects


def test_a_file_store(mlflow_stores, tmp_path, expected):
    source = copy_store(mlflow_stores, "file", tmp_path / "mlflow")
    before = tree(source)
    target = ModelStore(tmp_path / "target", cache_dir=tmp_path / "cache")
    report = import_mlflow(str(source / "mlruns"), target)
    assert report.ok and report.copied == ["churn:1"] and report.states == ["churn@champion=1"]
    version = target.info("churn", 1)
    assert version.flavor.name == "sklearn" and version.metrics == {"acc": 0.8}
    assert target.load("churn", 1).predict_proba(X).tolist() == expected["churn"]
    assert tree(source) == before


def test_logged_models_that_no_version_registers(mlflow_stores, tmp_path):
    source = copy_store(mlflow_stores, "sqlite", tmp_path / "mlflow")
    target = ModelStore(tmp_path / "target", cache_dir=tmp_path / "cache")
    report = import_mlflow(f"sqlite:///{source}/mlflow.db", target, models=["churn"], logged_models=True)
    assert report.ok
    assert sorted(report.copied) == ["churn:1", "churn:2", "unregistered:1"]
    logged = target.info("unregistered", 1)
    assert logged.tags["mlflow.model_id"].startswith("m-") and "mlflow.version" not in logged.tags
    assert target.load("unregistered", 1).predict_proba(X).shape == (6, 2)
    assert import_mlflow(f"sqlite:///{source}/mlflow.db", target, models=["churn"], logged_models=True).copied == []


def test_the_command_line(mlflow_stores, tmp_path):
    source = copy_store(mlflow_stores, "sqlite", tmp_path / "mlflow")
    command = [sys.executable, "-m", "modelstore_core", "import-mlflow", f"sqlite:///{source}/mlflow.db", str(tmp_path / "target")]
    proc = subprocess.run([*command, "--model", "xgb", "--json"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["copied"] == ["xgb:1"] and report["states"] == ["xgb@production=1"] and report["ok"]
    assert any("xgb:1 (MLflow model 'xgb' version 1): xgboost (ubjson)" in note for note in report["notes"])
    from click.testing import CliRunner

    from modelstore_core.cli import cli

    missing = CliRunner().invoke(cli, command[3:] + ["--model", "nope"])
    assert missing.exit_code != 0 and "no registered model 'nope'" in missing.output


def test_a_killed_import_finishes_on_the_next_run(mlflow_stores, tmp_path):
    """Killed (SIGKILL) right after claiming churn's version 2, between its claim and its record:
    the next run takes the claim up again, so the number is kept, and imports the rest."""
    source = copy_store(mlflow_stores, "sqlite", tmp_path / "mlflow")
    uri = f"sqlite:///{source}/mlflow.db"
    code = """
        import os, signal, sys
        from modelstore_core import ModelStore
        from modelstore_core.protocol import commit
        from modelstore_mlflow.importer import import_mlflow

        claims = []
        def crash(step):
            if step == "claimed":
                claims.append(step)
                if len(claims) == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
        commit.checkpoint = crash
        import_mlflow(sys.argv[1], ModelStore(sys.argv[2], cache_dir=sys.argv[3]), models=["churn", "xgb"])
    """
    (tmp_path / "child-tmp").mkdir()
    with pytest.raises(AssertionError, match="subprocess failed"):
        run_python(code, tmp_path, env={"TMPDIR": str(tmp_path / "child-tmp")}, args=[uri, tmp_path / "target", tmp_path / "cache"])
    # Its copy of the database and its fetched files were in the cache's scratch, not the system's.
    assert os.listdir(tmp_path / "child-tmp") == [] and list((tmp_path / "cache").glob("scratch/*"))
    target = ModelStore(tmp_path / "target", cache_dir=tmp_path / "cache")
    assert [v.version for v in target.list_versions("churn")] == [1]
    report = import_mlflow(uri, target, models=["churn", "xgb"])
    assert report.ok and sorted(report.copied) == ["churn:2", "xgb:1"] and report.skipped == ["churn:1"]
    assert sorted(v.version for v in target.list_versions("churn")) == [1, 2]
    assert target.states("churn") == {"champion": 1, "challenger": 2}
    assert not list((tmp_path / "cache").glob("scratch/*"))  # the killed run's, swept by the next


def test_a_number_taken_in_the_target_goes_to_the_next_free_one(mlflow_stores, tmp_path):
    source = copy_store(mlflow_stores, "sqlite", tmp_path / "mlflow")
    target = ModelStore(tmp_path / "target", cache_dir=tmp_path / "cache")
    (tmp_path / "notes.txt").write_text("uploaded here before the import\n")
    assert target.upload("xgb", files=[tmp_path / "notes.txt"]).version == 1
    report = import_mlflow(f"sqlite:///{source}/mlflow.db", target, models=["xgb"])
    assert report.copied == ["xgb:2"] and report.states == ["xgb@production=2"]
    assert "xgb:2 (number 1 was taken here)" in report.notes[0]
    assert target.info("xgb", 2).tags["mlflow.version"] == 1

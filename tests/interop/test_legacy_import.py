"""Importing stores written by the real original modelstore (0.0.82): on the local file system and
on S3 (moto); hostile archives built from a real one."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import shutil
import tarfile
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import BUCKET
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelstore_core import ModelStore, UntrustedArtifactError
from modelstore_core.legacy import LegacyStoreError, import_legacy

X, Y = load_iris(return_X_y=True)


def fit(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=300).fit(X, Y)


@pytest.fixture(scope="module")
def written_by_legacy(legacy_modelstore, tmp_path_factory):
    """A legacy store on the local file system, written by the legacy library itself:
    churn: three sklearn models (one with an extra file, one deleted), states production (one
    model) and archived (two); fraud: a pickled file and a text file, uploaded as model files."""
    tmp_path = tmp_path_factory.mktemp("legacy")
    root = tmp_path / "legacy"
    legacy = legacy_modelstore.ModelStore.from_file_system(root_directory=str(root), create_directory=True)
    notes = tmp_path / "notes.txt"
    notes.write_text("trained on march data")
    models = {"first": fit(1.0), "second": fit(0.3)}
    ids = {
        "first": legacy.upload("churn", model=models["first"], extra_files=[str(notes)])["model"]["model_id"],
        "second": legacy.upload("churn", model=models["second"])["model"]["model_id"],
        "deleted": legacy.upload("churn", model=fit(2.0))["model"]["model_id"],
    }
    legacy.delete_model("churn", ids["deleted"], skip_prompt=True)
    legacy.create_model_state("production")
    legacy.create_model_state("archived")
    legacy.set_model_state("churn", ids["first"], "production")
    for name in ("first", "second"):
        legacy.set_model_state("churn", ids[name], "archived")
    weights = tmp_path / "weights.pkl"
    weights.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    rules = tmp_path / "rules.txt"
    rules.write_text("amount > 1000")
    ids["pickle"] = legacy.upload("fraud", model=str(weights))["model"]["model_id"]
    ids["text"] = legacy.upload("fraud", model=str(rules))["model"]["model_id"]
    return root, ids, models


@pytest.fixture
def legacy_local(written_by_legacy, tmp_path):
    """A copy of that store of the test's own (tests rewrite its archives)."""
    root, ids, models = written_by_legacy
    shutil.copytree(root, tmp_path / "legacy")
    return tmp_path / "legacy", ids, models


def by_legacy_id(store: ModelStore, domain: str) -> dict:
    return {v.metadata["legacy"]["model_id"]: v for v in store.fetch_metadata(store.list_versions(domain))}


def test_every_legacy_model_becomes_a_version(legacy_local, tmp_path):
    root, ids, models = legacy_local
    target = ModelStore(tmp_path / "new")
    report = import_legacy(ModelStore(root), target)
    assert report.ok and len(report.copied) == 4
    churn = by_legacy_id(target, "churn")
    assert set(churn) == {ids["first"], ids["second"]}  # the deleted model is not imported
    first = churn[ids["first"]]
    legacy = first.metadata["legacy"]
    assert legacy["library"] == "sklearn" and legacy["type"] == "LogisticRegression" and legacy["modelstore"] == "0.0.82"
    assert legacy["created"][:4].isdigit() and legacy["code"]["dependencies"]
    assert first.flavor.name == "sklearn" and first.flavor.safe is False
    assert sorted(f.path for f in first.files) == ["extras/notes.txt", "model-info.json", "model.joblib"]
    with pytest.raises(UntrustedArtifactError, match="imported from modelstore 0.0.x"):
        target.load("churn", first.version)
    for name in ("first", "second"):
        loaded = target.load("churn", churn[ids[name]].version, trust=True)
        np.testing.assert_array_equal(loaded.predict_proba(X), models[name].predict_proba(X))
    assert target.states("churn") == {"production": first.version}
    assert any("'archived'" in note and "names 2 models" in note for note in report.notes)
    assert any("trust=True" in note for note in report.notes)

    fraud = by_legacy_id(target, "fraud")
    pickled, text = fraud[ids["pickle"]], fraud[ids["text"]]
    assert pickled.flavor.name == text.flavor.name == "files"
    assert pickled.flavor.safe is False and text.flavor.safe is True
    with pytest.raises(UntrustedArtifactError, match="marked unsafe"):
        target.load("fraud", pickled.version)
    assert [p.name for p in target.load("fraud", pickled.version, trust=True) if p.suffix == ".pkl"] == ["weights.pkl"]
    assert any(p.read_text() == "amount > 1000" for p in target.load("fraud", text.version) if p.suffix == ".txt")


def test_a_rerun_imports_nothing_twice(legacy_local, tmp_path):
    root, _, _ = legacy_local
    source, target = ModelStore(root), ModelStore(tmp_path / "new")
    import_legacy(source, target)
    again = import_legacy(source, target)
    assert again.copied == [] and len(again.skipped) == 4 and again.states == []
    assert [v.version for v in target.list_versions("churn")] == [2, 1]


def test_cli_import_legacy(legacy_local, tmp_path):
    from modelstore_core.cli import main

    root, _, _ = legacy_local
    with pytest.raises(SystemExit) as done:
        main(["import-legacy", str(root), str(tmp_path / "new"), "--domain", "churn", "--json"])
    assert done.value.code in (0, None)
    assert ModelStore(tmp_path / "new").list_domains() == ["churn"]


def test_the_legacy_root_is_required(legacy_local, tmp_path):
    root, _, _ = legacy_local
    with pytest.raises(LegacyStoreError, match="give the legacy root"):
        import_legacy(ModelStore(root / "operatorai-model-store"), ModelStore(tmp_path / "new"))


def test_pickles_are_marked_by_content_whatever_their_names(legacy_modelstore, tmp_path):
    """Files uploaded to the legacy library as models, named so that no suffix gives them away: the
    pickles among them (protocols 0 and 1, joblib's zlib-compressed dump, a .npy of objects) make
    their versions unsafe; the others stay safe."""
    import joblib

    made = tmp_path / "made"
    made.mkdir()
    files = {
        "protocol0": ("weights.bin", lambda path: path.write_bytes(pickle.dumps(fit(1.0), protocol=0))),
        "protocol1": ("weights.dat", lambda path: path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=1))),
        "joblib": ("model.z3", lambda path: joblib.dump(fit(0.5), path, compress=3)),
        "objects": ("arrays.npy", lambda path: np.save(path, np.array([{"w": 1.0}, None], dtype=object), allow_pickle=True)),
        "floats": ("floats.npy", lambda path: np.save(path, np.arange(5.0))),
        "compressed text": ("rules.gz", lambda path: path.write_bytes(gzip.compress(b"amount > 1000"))),
    }
    root = tmp_path / "legacy"
    legacy = legacy_modelstore.ModelStore.from_file_system(root_directory=str(root), create_directory=True)
    ids = {}
    for kind, (name, make) in files.items():
        make(made / name)
        ids[kind] = legacy.upload("hidden", model=str(made / name))["model"]["model_id"]
    assert (made / "model.z3").read_bytes()[:1] == b"\x78"  # joblib's zlib stream
    target = ModelStore(tmp_path / "new")
    assert import_legacy(ModelStore(root), target).ok
    imported = by_legacy_id(target, "hidden")
    safe = {kind: imported[ids[kind]].flavor.safe for kind in files}
    assert safe == {"protocol0": False, "protocol1": False, "joblib": False, "objects": False, "floats": True, "compressed text": True}
    with pytest.raises(UntrustedArtifactError, match="marked unsafe"):
        target.load("hidden", imported[ids["joblib"]].version)


# --- hostile archives, made from a real one ---------------------------------------------------------


def members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(archive, "r:gz") as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else None) for m in tar.getmembers()]


def rewrite(archive: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    archive.write_bytes(out.getvalue())


def entry(name: str, data: bytes | None = b"x", **fields) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data) if data is not None else 0
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


HOSTILE = {
    "a link out": [entry("model.joblib", None, type=tarfile.SYMTYPE, linkname="/etc/passwd")],
    "a hard link": [entry("model.joblib", None, type=tarfile.LNKTYPE, linkname="../../outside")],
    "a parent path": [entry("../escape.txt")],
    "an absolute path": [entry("/tmp/escape-abs.txt")],
    "a hidden file": [entry(".bashrc")],
    "a device": [entry("dev", None, type=tarfile.CHRTYPE)],
    "a name twice": [entry("model.joblib")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused(legacy_local, tmp_path, case):
    root, ids, _ = legacy_local
    [archive] = root.glob(f"operatorai-model-store/churn/*/{ids['second']}/artifacts.tar.gz")
    rewrite(archive, members(archive) + HOSTILE[case])
    target = ModelStore(tmp_path / "new")
    report = import_legacy(ModelStore(root), target, domains=["churn"])
    assert [p for p in report.problems if ids["second"] in p], report.problems
    assert set(by_legacy_id(target, "churn")) == {ids["first"]}  # the others still come in
    assert not (tmp_path / "escape.txt").exists() and not Path("/tmp/escape-abs.txt").exists()


def test_size_count_and_format_limits(legacy_local, tmp_path):
    root, ids, _ = legacy_local
    [archive] = root.glob(f"operatorai-model-store/churn/*/{ids['second']}/artifacts.tar.gz")
    source = ModelStore(root)
    report = import_legacy(source, ModelStore(tmp_path / "a"), domains=["churn"], max_bytes=1000)
    assert any("more than 1000 bytes" in p for p in report.problems)
    report = import_legacy(source, ModelStore(tmp_path / "b"), domains=["churn"], max_files=2)
    assert any("more than 2 members" in p for p in report.problems)
    # A gzip bomb's declared sizes are checked before anything is written: one member claiming 2 GB.
    huge = tarfile.TarInfo("big.bin")
    huge.size = 2 << 30
    header = huge.tobuf(format=tarfile.GNU_FORMAT)
    archive.write_bytes(gzip.compress(header + b"\0" * 1024))
    report = import_legacy(source, ModelStore(tmp_path / "c"), domains=["churn"], max_bytes=1 << 30)
    assert any(ids["second"] in p and "bytes" in p for p in report.problems), report.problems
    archive.write_bytes(b"not a tar.gz at all")
    report = import_legacy(source, ModelStore(tmp_path / "d"), domains=["churn"])
    assert any("not a readable tar.gz" in p for p in report.problems)


def test_hostile_metadata_is_refused(legacy_local, tmp_path):
    root, ids, _ = legacy_local
    meta = root / "operatorai-model-store" / "churn" / "versions" / f"{ids['second']}.json"
    doc = json.loads(meta.read_text())
    doc["model"]["domain"] = "../elsewhere"
    meta.write_text(json.dumps(doc))
    report = import_legacy(ModelStore(root), ModelStore(tmp_path / "new"), domains=["churn"])
    assert any("not its own key" in p for p in report.problems)


# --- a legacy store on S3 ------------------------------------------------------------------------------


def test_import_from_s3(legacy_modelstore, servers, tmp_path):
    prefix = uuid.uuid4().hex
    legacy = legacy_modelstore.ModelStore.from_aws_s3(bucket_name=BUCKET, root_prefix=prefix)
    model = fit(0.5)
    model_id = legacy.upload("churn", model=model)["model"]["model_id"]
    legacy.create_model_state("production")
    legacy.set_model_state("churn", model_id, "production")
    target = ModelStore(tmp_path / "new")
    report = import_legacy(ModelStore(f"s3://{BUCKET}/{prefix}"), target)
    assert report.copied == ["churn:1"] and target.states("churn") == {"production": 1}
    assert target.info("churn", 1).metadata["legacy"]["model_id"] == model_id
    np.testing.assert_array_equal(target.load("churn", trust=True).predict(X), model.predict(X))


def test_a_legacy_xgboost_model_loads_through_the_xgboost_plugin(legacy_modelstore, tmp_path):
    import xgboost

    root = tmp_path / "legacy"
    legacy = legacy_modelstore.ModelStore.from_file_system(root_directory=str(root), create_directory=True)
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # xgboost: an extension it does not know, so UBJSON
        legacy.upload("boosted", model=model)
    target = ModelStore(tmp_path / "new")
    report = import_legacy(ModelStore(root), target)
    assert report.ok and any("stored as model.ubj" in note for note in report.notes)
    v = target.info("boosted", 1)
    assert v.flavor.name == "xgboost" and v.flavor.safe and "model.ubj" in [f.path for f in v.files]
    loaded = target.load("boosted")  # no trust needed: UBJSON runs no code
    assert type(loaded) is xgboost.XGBClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))

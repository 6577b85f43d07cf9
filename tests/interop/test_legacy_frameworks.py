"""Legacy models of the frameworks with a plugin here (LightGBM, ONNX, Prophet, statsmodels),
written by the real original modelstore (0.0.82), imported and loaded by the plugins; tampered
legacy artifacts of each kind, built from the real ones, fail at load with the plugin's error."""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from test_legacy_import import members, rewrite

from modelstore_core import CorruptArtifactError, ModelStore, ModelStoreError, UntrustedArtifactError
from modelstore_core.legacy import import_legacy

lightgbm = pytest.importorskip("lightgbm", reason="needs modelstore-lightgbm[lightgbm] (the interop session installs it)")
onnx = pytest.importorskip("onnx", reason="needs modelstore-onnx[onnx] (the interop session installs it)")
sm = pytest.importorskip("statsmodels.api", reason="needs modelstore-statsmodels[statsmodels] (the interop session installs it)")
prophet = pytest.importorskip("prophet", reason="needs modelstore-prophet[prophet] (the interop session installs it)")
import pandas as pd  # noqa: E402 - prophet's dependency

X, Y = load_iris(return_X_y=True)
HISTORY = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=60), "y": np.sin(np.arange(60) / 5) + np.arange(60) / 30})
FUTURE = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=75)})
#: the legacy domain of each kind, and the model file in its legacy archive
KINDS = {"lightgbm": "model.txt", "onnx": "model.onnx", "prophet": "prophet_model.json", "statsmodels": "model.pkl"}


def onnx_softmax_regression(clf: LogisticRegression):
    """The fitted logistic regression as an ONNX graph: softmax(X W + b)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["XW"]),
        helper.make_node("Add", ["XW", "b"], ["Z"]),
        helper.make_node("Softmax", ["Z"], ["P"]),
    ]
    weights = [
        numpy_helper.from_array(clf.coef_.T.astype(np.float32), "W"),
        numpy_helper.from_array(clf.intercept_.astype(np.float32), "b"),
    ]
    graph = helper.make_graph(
        nodes,
        "iris",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("P", TensorProto.FLOAT, [None, 3])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run_onnx(model) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, {"X": X.astype(np.float32)})[0]


def predict(kind: str, model) -> np.ndarray:
    if kind == "onnx":
        return run_onnx(model)
    if kind == "prophet":
        return model.predict(FUTURE)["yhat"].to_numpy()
    if kind == "statsmodels":
        return model.predict(sm.add_constant(X))
    return model.predict(X)


@pytest.fixture(scope="module")
def written_by_legacy(legacy_modelstore, tmp_path_factory):
    """A legacy store written by the legacy library: one model of each kind, in a domain named after it."""
    root = tmp_path_factory.mktemp("legacy-frameworks") / "legacy"
    legacy = legacy_modelstore.ModelStore.from_file_system(root_directory=str(root), create_directory=True)
    clf = LogisticRegression(max_iter=300).fit(X, Y)
    models = {
        "lightgbm": lightgbm.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lightgbm.Dataset(X, Y), 5),
        "onnx": onnx_softmax_regression(clf),
        "prophet": prophet.Prophet(uncertainty_samples=0).fit(HISTORY),
        "statsmodels": sm.OLS(Y, sm.add_constant(X)).fit(),
    }
    np.testing.assert_allclose(run_onnx(models["onnx"]), clf.predict_proba(X), rtol=1e-4, atol=1e-5)  # a real model
    ids = {kind: legacy.upload(kind, model=model)["model"]["model_id"] for kind, model in models.items()}
    return root, ids, models


@pytest.fixture
def legacy_root(written_by_legacy, tmp_path):
    """A copy of that store of the test's own (tests rewrite its archives)."""
    root, ids, models = written_by_legacy
    shutil.copytree(root, tmp_path / "legacy")
    return tmp_path / "legacy", ids, models


def plugin_flavor(kind: str, model, tmp_path: Path):
    """The flavor the plugin records for ``model`` uploaded here."""
    store = ModelStore(tmp_path / "by-plugin")
    return store.info(kind, store.upload(kind, model=model).version).flavor


def test_each_kind_loads_through_its_plugin(legacy_root, tmp_path):
    root, ids, models = legacy_root
    target = ModelStore(tmp_path / "new")
    report = import_legacy(ModelStore(root), target)
    assert report.ok and sorted(report.copied) == [f"{kind}:1" for kind in sorted(KINDS)], report.problems
    for kind, model in models.items():
        v = target.info(kind, 1)
        assert v.metadata["legacy"]["model_id"] == ids[kind] and v.metadata["legacy"]["library"] == kind
        # the recorded flavor is the one the plugin records for that model (the legacy file's
        # Booster is the booster read back from its text: all its trees, best_iteration -1)
        original = lightgbm.Booster(model_str=model.model_to_string()) if kind == "lightgbm" else model
        expected = plugin_flavor(kind, original, tmp_path / kind)
        assert (v.flavor.name, v.flavor.format, v.flavor.plugin, v.flavor.safe) == (
            expected.name,
            expected.format,
            expected.plugin,
            expected.safe,
        )
        assert {k: o for k, o in v.flavor.options.items() if k != "imported_from"} == expected.options
        assert v.flavor.options["imported_from"] == "modelstore 0.0.x"
        assert v.flavor.options["file"] in [f.path for f in v.files]
        if kind != "statsmodels":  # its class is recorded by name only: the legacy library gave no module
            assert v.flavor.model_class == expected.model_class
        if kind == "statsmodels":
            with pytest.raises(UntrustedArtifactError, match="pass trust=True"):
                target.load(kind, 1)
            loaded = target.load(kind, 1, trust=True)
        else:
            loaded = target.load(kind, 1)  # text, protobuf, JSON: no trust needed
        assert type(loaded) is type(model)
        np.testing.assert_array_equal(predict(kind, loaded), predict(kind, model))
    assert sorted(f.path for f in target.info("lightgbm", 1).files) == ["model-info.json", "model.json", "model.txt"]
    assert sorted(f.path for f in target.info("prophet", 1).files) == ["model-info.json", "model.json"]
    assert sorted(f.path for f in target.info("statsmodels", 1).files) == ["model-info.json", "model.pickle"]
    assert any("statsmodels" in n and "trust=True" in n for n in report.notes)


def test_a_rerun_imports_nothing_twice(legacy_root, tmp_path):
    root, _, _ = legacy_root
    source, target = ModelStore(root), ModelStore(tmp_path / "new")
    import_legacy(source, target)
    again = import_legacy(source, target)
    assert again.copied == [] and sorted(again.skipped) == [f"{kind}:1" for kind in sorted(KINDS)]
    assert all(len(target.list_versions(kind)) == 1 for kind in KINDS)


def tamper_lightgbm(data: bytes) -> bytes:
    """A split on feature 9 of a 4-feature model (an out-of-bounds read in LightGBM), the tree's
    length unchanged (so that ``tree_sizes`` still holds and the split is what is refused)."""
    text = data.decode()
    line = next(li for li in text.split("\n") if li.startswith("split_feature="))
    values = line.split("=")[1].split(" ")
    assert len(values[0]) == 1  # a feature index of a 4-feature model
    return text.replace(line, "split_feature=" + " ".join(["9", *values[1:]]), 1).encode()


def tamper_onnx(data: bytes) -> bytes:
    """The softmax node reads a tensor no node makes (onnx.checker refuses the graph)."""
    model = onnx.ModelProto()
    model.ParseFromString(data)
    model.graph.node[2].input[0] = "nowhere"
    return model.SerializeToString()


def tamper_prophet(data: bytes) -> bytes:
    """A million uncertainty samples per predicted row, JSON-encoded as the legacy library does."""
    doc = json.loads(json.loads(data))
    doc["uncertainty_samples"] = 1_000_000
    return json.dumps(json.dumps(doc)).encode()


def tamper_statsmodels(data: bytes) -> bytes:
    return data[: len(data) // 2]  # cut short


TAMPER = {"lightgbm": tamper_lightgbm, "onnx": tamper_onnx, "prophet": tamper_prophet, "statsmodels": tamper_statsmodels}
#: what each plugin's error names
REFUSED = {"lightgbm": "split_feature", "onnx": "onnx.checker", "prophet": "uncertainty_samples", "statsmodels": "does not unpickle"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_tampered_legacy_artifact_fails_at_load_with_the_plugins_error(legacy_root, tmp_path, kind):
    root, ids, _ = legacy_root
    [archive] = root.glob(f"operatorai-model-store/{kind}/*/{ids[kind]}/artifacts.tar.gz")
    entries = []
    for info, data in members(archive):
        if info.name.lstrip("./") == KINDS[kind]:
            data = TAMPER[kind](data)
            info.size = len(data)
        entries.append((info, data))
    rewrite(archive, entries)
    target = ModelStore(tmp_path / "new")
    report = import_legacy(ModelStore(root), target, domains=[kind])
    assert report.copied == [f"{kind}:1"], report.problems
    assert target.info(kind, 1).flavor.name == kind  # mapped by its file names; checked by the plugin at load
    with pytest.raises(CorruptArtifactError, match=REFUSED[kind]):
        target.load(kind, 1, trust=kind == "statsmodels")


@pytest.mark.parametrize("data", [b"{not json", b'"\\ud800"'], ids=["not JSON", "a lone surrogate"])
def test_a_legacy_prophet_file_that_does_not_decode_stays_raw_files(legacy_root, tmp_path, data):
    root, ids, _ = legacy_root
    [archive] = root.glob(f"operatorai-model-store/prophet/*/{ids['prophet']}/artifacts.tar.gz")
    entries = []
    for info, content in members(archive):
        if info.name.lstrip("./") == "prophet_model.json":
            content, info.size = data, len(data)
        entries.append((info, content))
    rewrite(archive, entries)
    target = ModelStore(tmp_path / "new")
    report = import_legacy(ModelStore(root), target, domains=["prophet"])
    assert report.copied == ["prophet:1"] and target.info("prophet", 1).flavor.name == "files"
    assert any("raw files" in note for note in report.notes)


def test_torch_zip_pickles_stay_raw_files_marked_unsafe(legacy_modelstore, tmp_path):
    """``pytorch_model.bin`` as torch.save has written it since torch 1.6 (a zip whose first
    member is the pickle ``<archive>/data.pkl``) is a pickle, whatever its suffix."""
    weights = tmp_path / "pytorch_model.bin"
    with zipfile.ZipFile(weights, "w") as z:
        z.writestr("pytorch_model/data.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
        z.writestr("pytorch_model/byteorder", "little")
        z.writestr("pytorch_model/data/0", b"\0" * 8)
    root = tmp_path / "legacy"
    legacy = legacy_modelstore.ModelStore.from_file_system(root_directory=str(root), create_directory=True)
    legacy.upload("bert", model=str(weights))
    target = ModelStore(tmp_path / "new")
    report = import_legacy(ModelStore(root), target)
    v = target.info("bert", 1)
    assert v.flavor.name == "files" and v.flavor.safe is False
    assert any("pytorch_model.bin hold pickles" in note for note in report.notes), report.notes
    with pytest.raises(UntrustedArtifactError):
        target.load("bert", 1)


# --- transformers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transformers_by_legacy(legacy_modelstore, tmp_path_factory):
    """A legacy store with a tiny BERT classifier alone (domain bert) and one with its tokenizer
    (domain bert-tokenized), written by the legacy library (transformers 5: safetensors)."""
    transformers = pytest.importorskip("transformers", reason="needs modelstore-transformers[transformers] and torch")
    import torch

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, num_labels=3
    )
    model = transformers.BertForSequenceClassification(config).eval()
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghij"]))
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(vocab))
    root = tmp_path_factory.mktemp("legacy-transformers") / "legacy"
    legacy = legacy_modelstore.ModelStore.from_file_system(root_directory=str(root), create_directory=True)
    ids = {
        "bert": legacy.upload("bert", model=model)["model"]["model_id"],
        "bert-tokenized": legacy.upload("bert-tokenized", model=model, tokenizer=tokenizer)["model"]["model_id"],
    }
    return root, ids, model, transformers


def test_a_legacy_transformers_model_loads_through_its_plugin(transformers_by_legacy, tmp_path):
    root, ids, model, transformers = transformers_by_legacy
    import torch

    target = ModelStore(tmp_path / "new")
    report = import_legacy(ModelStore(root), target)
    assert report.ok and sorted(report.copied) == ["bert-tokenized:1", "bert:1"], report.problems
    v = target.info("bert", 1)
    assert (v.flavor.name, v.flavor.format, v.flavor.plugin, v.flavor.safe) == (
        "transformers",
        "safetensors",
        "modelstore-transformers",
        True,
    )
    assert v.flavor.options == {"kind": "model", "auto_class": None, "imported_from": "modelstore 0.0.x"}
    assert sorted(f.path for f in v.files) == ["config.json", "model-info.json", "model.safetensors"]
    with pytest.raises(ModelStoreError, match="model=BertForSequenceClassification"):
        target.load("bert", 1)  # the legacy record names no module: no auto class was recorded
    loaded = target.load("bert", 1, model=transformers.BertForSequenceClassification)  # no trust needed
    expected = model.state_dict()
    assert sorted(loaded.state_dict()) == sorted(expected)
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0)  # the very weights
    inputs = torch.tensor([[2, 5, 6, 7, 3]])
    with torch.no_grad():
        # The loaded weights are mapped from the file, not 64-byte aligned: the same weights take
        # another kernel path, and the logits agree to float32 rounding, not bit for bit.
        torch.testing.assert_close(loaded(inputs).logits, model(inputs).logits)
    # a tokenizer beside the model: no kind of modelstore-transformers holds both as the legacy folder does
    both = target.info("bert-tokenized", 1)
    assert both.flavor.name == "files" and both.flavor.safe is True
    assert any(n.startswith("bert-tokenized:1") and "holds more, or other, files" in n for n in report.notes)
    assert import_legacy(ModelStore(root), target).copied == []


def test_a_tampered_legacy_transformers_model_fails_at_load(transformers_by_legacy, tmp_path):
    root, ids, _, transformers = transformers_by_legacy
    legacy = tmp_path / "legacy"
    shutil.copytree(root, legacy)
    [archive] = legacy.glob(f"operatorai-model-store/bert/*/{ids['bert']}/artifacts.tar.gz")
    entries = []
    for info, data in members(archive):
        if info.name.endswith("model.safetensors"):
            data = data[:-64]  # the header's offsets run past the end of the file
            info.size = len(data)
        entries.append((info, data))
    rewrite(archive, entries)
    target = ModelStore(tmp_path / "new")
    report = import_legacy(ModelStore(legacy), target, domains=["bert"])
    assert report.copied == ["bert:1"] and target.info("bert", 1).flavor.name == "transformers"
    with pytest.raises(CorruptArtifactError, match="model.safetensors"):
        target.load("bert", 1, model=transformers.BertForSequenceClassification)


def test_a_legacy_transformers_config_with_custom_code_stays_raw_files(transformers_by_legacy, tmp_path):
    root, ids, _, _ = transformers_by_legacy
    legacy = tmp_path / "legacy"
    shutil.copytree(root, legacy)
    [archive] = legacy.glob(f"operatorai-model-store/bert/*/{ids['bert']}/artifacts.tar.gz")
    entries = []
    for info, data in members(archive):
        if info.name.endswith("config.json"):
            doc = json.loads(data)
            doc["auto_map"] = {"AutoModel": "evil.EvilModel"}
            data = json.dumps(doc).encode()
            info.size = len(data)
        entries.append((info, data))
    rewrite(archive, entries)
    target = ModelStore(tmp_path / "new")
    import_legacy(ModelStore(legacy), target, domains=["bert"])
    assert target.info("bert", 1).flavor.name == "files"

"""ONNX models go through a real local store and come back as the same ModelProto, or as an
onnxruntime session predicting the same."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx_models import linear_model, run
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelstore_core import ModelStoreError
from modelstore_core.testing.flavors import assert_round_trip, open_store, run_python

RNG = np.random.default_rng(0)
X = RNG.normal(size=(120, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


def sklearn_pipeline():
    pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0)).fit(X, Y)
    return pipe, to_onnx(pipe, X[:1], target_opset=17, options={"zipmap": False})


def test_skl2onnx_pipeline_round_trip(tmp_path):
    pipe, model = sklearn_pipeline()
    v, loaded = assert_round_trip(open_store(tmp_path), open_store(tmp_path, cache="cold"), model, lambda m: run(m, {"X": X}))
    # The same model; its opsets sorted by domain (skl2onnx lists them in hash-seed order).
    assert loaded.graph == model.graph and loaded.opset_import[:] == sorted(model.opset_import, key=lambda op: op.domain)
    assert v.flavor.format == "onnx" and v.flavor.safe is True
    assert [f.path for f in v.files] == ["model.onnx"]
    labels, probabilities = run(loaded, {"X": X})
    np.testing.assert_array_equal(labels, pipe.predict(X))  # the converted model agrees with sklearn
    np.testing.assert_allclose(probabilities, pipe.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_session_on_request(tmp_path):
    import onnxruntime

    _, model = sklearn_pipeline()
    open_store(tmp_path).upload("m", model=model)
    session = open_store(tmp_path, cache="c2").load("m", session=True)
    assert isinstance(session, onnxruntime.InferenceSession)
    assert [i.name for i in session.get_inputs()] == ["X"]
    for got, want in zip(session.run(None, {"X": X}), run(model, {"X": X}), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("constant", [False, True], ids=["initializers", "constant-attribute"])
def test_external_data_round_trip(tmp_path, constant):
    model = linear_model(64, 32, constant=constant)  # 8 KiB of weights: over the 1 KiB threshold
    v = open_store(tmp_path).upload("m", model=model, external_data=True)
    assert [f.path for f in v.files] == ["model.onnx", "model.onnx.data"]
    assert v.flavor.options["data_files"] == ["model.onnx.data"]
    assert v.files[0].size < 1024 < v.files[1].size  # the weights are in the data file
    assert model.graph.initializer[0].data_location == onnx.TensorProto.DEFAULT  # the caller's model is untouched
    reader = open_store(tmp_path, cache="c2")
    loaded = reader.load("m")
    assert loaded == model  # data read back into the tensors
    feeds = {"X": RNG.normal(size=(3, 64)).astype(np.float32)}
    np.testing.assert_array_equal(reader.load("m", session=True).run(None, feeds)[0], run(model, feeds)[0])


def test_session_without_onnxruntime_says_what_to_install(tmp_path):
    open_store(tmp_path).upload("m", model=linear_model())
    run_python(
        """
        import sys
        sys.modules["onnxruntime"] = None  # as if it were not installed
        from modelstore_core import ModelStore, ModelStoreError
        store = ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/c")
        assert type(store.load("m")).__name__ == "ModelProto"
        try:
            store.load("m", session=True)
        except ModelStoreError as exc:
            assert "modelstore-onnx[onnxruntime]" in str(exc), exc
        else:
            raise AssertionError("no error")
        """,
        cwd=tmp_path,
        args=[tmp_path],
    )


def test_refusals_say_what_to_do(tmp_path):
    store = open_store(tmp_path)
    with pytest.raises(ModelStoreError, match="make_model"):
        store.upload("m", model=linear_model().graph)
    path = tmp_path / "saved" / "model.onnx"
    path.parent.mkdir()
    onnx.save_model(linear_model(64, 32), str(path), save_as_external_data=True, location="w.bin", size_threshold=0)
    unloaded = onnx.load(str(path), load_external_data=False)
    with pytest.raises(ModelStoreError, match="onnx.load"):
        store.upload("m", model=unloaded)
    assert store.list_domains() == []

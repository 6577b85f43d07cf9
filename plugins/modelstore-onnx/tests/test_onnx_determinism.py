"""The same model always gives the same bytes, so a re-upload stores no new object."""

from __future__ import annotations

from modelstore_core.testing.flavors import assert_deterministic_across_processes, assert_reupload_deduplicated, build, open_store

# Built the same way in this process and in a fresh interpreter: a converted scikit-learn model,
# and a model with external data.
MAKE_MODELS = """
import numpy as np
from sklearn.linear_model import LogisticRegression
from skl2onnx import to_onnx
from onnx_models import linear_model
X = np.random.default_rng(3).normal(size=(50, 3)).astype(np.float32)
converted = to_onnx(LogisticRegression().fit(X, X[:, 0] > 0), X[:1], target_opset=17)
big = linear_model(64, 32, seed=5)
"""


def test_reupload_is_deduplicated(tmp_path):
    scope = build(MAKE_MODELS)
    store = open_store(tmp_path)
    assert_reupload_deduplicated(store, tmp_path, {"converted": scope["converted"], "big": scope["big"]})
    v1 = store.upload("ext", model=scope["big"], external_data=True)
    v2 = store.upload("ext", model=scope["big"], external_data=True)
    assert v1.files == v2.files and len(v1.files) == 2


def test_same_model_in_another_process_gives_the_same_bytes(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # onnx_models, for the other interpreter
    assert_deterministic_across_processes(tmp_path, MAKE_MODELS, {"converted": "converted", "big": "big"})

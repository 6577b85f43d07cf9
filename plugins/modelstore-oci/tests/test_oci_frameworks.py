"""Every framework plugin's model makes the trip: uploaded, pushed to the registry, pulled into
another store, loaded there by its plugin, and it predicts exactly as before (tiny models)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import warnings  # noqa: E402

import pytest  # noqa: E402
from conftest import open_store  # noqa: E402

from modelstore_core.testing.flavors import assert_same, build  # noqa: E402

TABLE = (
    "import numpy as np\n"
    "X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0], [4.0, 3.0], [5.0, 1.0]])\n"
    "y = np.array([1.0, 2.0, 5.0, 6.5, 9.0, 9.5])\n"
)

#: flavor: (code building ``model``, what to compare, load options from the built namespace)
CASES = {
    "sklearn": (
        TABLE + "from sklearn.linear_model import Ridge\nmodel = Ridge(alpha=0.5).fit(X, y)",
        lambda m, ns: m.predict(ns["X"]),
        lambda ns: {},
    ),
    "xgboost": (
        TABLE + "import xgboost\nmodel = xgboost.XGBRegressor(n_estimators=3, max_depth=2, n_jobs=1).fit(X, y)",
        lambda m, ns: m.predict(ns["X"]),
        lambda ns: {},
    ),
    "torch": (
        "import torch\ntorch.manual_seed(0)\nmodel = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))\n"
        "factory = lambda: torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))\n"
        "X = torch.tensor([[0.0, 1.0], [2.0, 3.0]])",
        lambda m, ns: m(ns["X"]).detach(),
        lambda ns: {"model": ns["factory"]},
    ),
    "keras": (
        TABLE + "import keras\nkeras.utils.set_random_seed(0)\n"
        "model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2), keras.layers.Dense(1)])",
        lambda m, ns: m.predict(ns["X"], verbose=0),
        lambda ns: {},
    ),
    "catboost": (
        TABLE + "import catboost\n"
        "model = catboost.CatBoostRegressor(iterations=5, depth=2, verbose=False, allow_writing_files=False, thread_count=1).fit(X, y)",
        lambda m, ns: m.predict(ns["X"]),
        lambda ns: {},
    ),
    "transformers": (
        "import torch, transformers\ntorch.manual_seed(0)\n"
        "config = transformers.BertConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,"
        " max_position_embeddings=16, num_labels=2)\n"
        "model = transformers.BertForSequenceClassification(config).eval()",
        # the weights, exactly (logits can differ in the last bits with the attention kernel a load picks)
        lambda m, ns: [t for _, t in sorted(m.state_dict().items())],
        lambda ns: {},
    ),
    "lightning": (
        "import torch, pytorch_lightning as pl\n"
        "class Tiny(pl.LightningModule):\n"
        "    def __init__(self, width: int = 3):\n"
        "        super().__init__()\n"
        "        self.save_hyperparameters()\n"
        "        self.lin = torch.nn.Linear(2, width)\n"
        "    def forward(self, x):\n"
        "        return self.lin(x)\n"
        "torch.manual_seed(0)\nmodel = Tiny(width=4)\nX = torch.tensor([[0.0, 1.0], [2.0, 3.0]])",
        lambda m, ns: m(ns["X"]).detach(),
        lambda ns: {"model": ns["Tiny"]},
    ),
    "lightgbm": (
        TABLE + "import lightgbm\nmodel = lightgbm.LGBMRegressor(n_estimators=3, min_child_samples=1, num_threads=1, verbose=-1).fit(X, y)",
        lambda m, ns: m.predict(ns["X"]),
        lambda ns: {},
    ),
    "onnx": (
        "import onnx\nfrom onnx import TensorProto, helper\n"
        "graph = helper.make_graph([helper.make_node('Add', ['a', 'b'], ['c'])], 'add',"
        " [helper.make_tensor_value_info('a', TensorProto.FLOAT, [2]), helper.make_tensor_value_info('b', TensorProto.FLOAT, [2])],"
        " [helper.make_tensor_value_info('c', TensorProto.FLOAT, [2])])\n"
        "model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])",
        lambda m, ns: m.SerializeToString(),
        lambda ns: {},
    ),
    "statsmodels": (
        TABLE + "import statsmodels.api as sm\nXc = sm.add_constant(X)\nmodel = sm.OLS(y, Xc).fit()",
        lambda m, ns: m.predict(ns["Xc"]),
        lambda ns: {"trust": True},  # statsmodels stores a pickle
    ),
    "prophet": (
        "import logging, pandas as pd\nlogging.getLogger('cmdstanpy').disabled = True\nfrom prophet import Prophet\n"
        "history = pd.DataFrame({'ds': pd.date_range('2024-01-01', periods=12), 'y': [float(i % 4) for i in range(12)]})\n"
        "model = Prophet(yearly_seasonality=False, weekly_seasonality=False, daily_seasonality=False, uncertainty_samples=0).fit(history)\n"
        "future = pd.DataFrame({'ds': pd.date_range('2024-01-13', periods=3)})",
        lambda m, ns: m.predict(ns["future"])["yhat"].to_numpy(),
        lambda ns: {},
    ),
}


@pytest.mark.parametrize("flavor", sorted(CASES))
def test_a_model_of_every_framework_comes_back_through_the_registry(tmp_path, repo, flavor):
    code, predict, load_options = CASES[flavor]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        namespace = build(code)
    model = namespace["model"]
    source = open_store(tmp_path, "a")
    v = source.upload(flavor, model=model)
    assert v.flavor.name == flavor
    digest = source.push(flavor, repo, plain_http=True)
    target = open_store(tmp_path, "b")
    pulled = target.pull(f"{repo}@{digest}", plain_http=True)
    assert (pulled.domain, pulled.version, pulled.flavor) == (flavor, 1, v.flavor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = target.load(flavor, **load_options(namespace))
        assert_same(predict(loaded, namespace), predict(model, namespace))

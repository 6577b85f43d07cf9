"""Writes real MLflow 3 stores, run by the tests in a virtual environment of its own (the real
MLflow and the frameworks): ``python mlflow_writer.py DIRECTORY``.

``DIRECTORY/sqlite``: ``sqlite:///mlflow.db`` with local artifacts (``mlruns/``), holding

* ``churn``: version 1 a LogisticRegression in MLflow's default format (skops, with an input
  example), version 2 the same in ``cloudpickle``; aliases ``champion`` -> 1, ``challenger`` -> 2;
  the run's metric ``acc`` logged at steps 0 and 1, a metric ``train/loss``, params, a tag;
* ``xgb``: an XGBClassifier (``model.ubj``), in the legacy stage ``Production``;
* ``torchnet``: version 1 a module pickled by ``torch.save`` (``serialization_format="pickle"``),
  version 2 MLflow 3's default (a ``torch.export`` program, ``model.pt2``);
* ``weights``: a folder of run artifacts registered as it is: the net's state dict as safetensors;
* ``onnxm``: an ONNX graph (``model.onnx``);
* ``textcls``: a transformers text-classification pipeline (safetensors weights and a tokenizer);
* a logged model that no version registers (``unregistered``).

``DIRECTORY/file``: a file store (``mlruns/``) with ``churn`` version 1 (skops) and its alias.

``DIRECTORY/expected.json``: what each model predicts on the inputs the tests use.
"""

import json
import os
import sys
import warnings
from importlib.metadata import version as installed

warnings.filterwarnings("ignore")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402

ROOT = os.path.abspath(sys.argv[1])
X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0], [4.0, 0.0], [5.0, 3.0]], dtype=np.float32)
Y = np.array([0, 1, 0, 1, 1, 0])
TEXTS = ["the cat sat on the mat", "a dog ran far"]
expected = {"mlflow": installed("mlflow-skinny")}


def requirements(*names):
    """Pinned requirements given to log_model: MLflow's inference of them runs each model again in a subprocess."""
    return [f"mlflow=={installed('mlflow-skinny')}", *(f"{n}=={installed(n)}" for n in names)]


def use(uri):
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def tiny_pipeline():
    import torch
    import transformers
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
    )
    config = transformers.BertConfig(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=32
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    return transformers.pipeline("text-classification", model=model, tokenizer=tokenizer)


def write_sqlite():
    from sklearn.linear_model import LogisticRegression

    directory = os.path.join(ROOT, "sqlite")
    os.makedirs(directory)
    os.chdir(directory)  # the default artifact root, ./mlruns, is here
    use("sqlite:///" + os.path.join(directory, "mlflow.db"))
    mlflow.set_experiment("interop")
    client = MlflowClient()

    clf = LogisticRegression(C=0.5).fit(X, Y)
    with mlflow.start_run():
        mlflow.log_params({"C": 0.5, "solver": "lbfgs"})
        mlflow.log_metric("acc", 0.5, step=0)
        mlflow.log_metric("acc", 0.75, step=1)
        mlflow.log_metric("train/loss", 0.25)
        mlflow.set_tag("team", "risk")
        mlflow.sklearn.log_model(
            clf, name="model", registered_model_name="churn", input_example=X[:2], pip_requirements=requirements("scikit-learn", "skops")
        )
        mlflow.sklearn.log_model(
            clf,
            name="pickled",
            registered_model_name="churn",
            serialization_format="cloudpickle",
            signature=infer_signature(X, Y),
            pip_requirements=requirements("scikit-learn", "cloudpickle"),
        )
    client.set_registered_model_alias("churn", "champion", 1)
    client.set_registered_model_alias("churn", "challenger", 2)
    expected["churn"] = clf.predict_proba(X).tolist()

    import xgboost

    xgb = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(X, Y)
    with mlflow.start_run():
        mlflow.log_metric("auc", 0.9)
        mlflow.xgboost.log_model(
            xgb, name="model", registered_model_name="xgb", signature=infer_signature(X, Y), pip_requirements=requirements()
        )
    client.transition_model_version_stage("xgb", 1, "Production")
    expected["xgb"] = xgb.predict_proba(X).tolist()

    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)).eval()
    signature = infer_signature(X, net(torch.from_numpy(X)).detach().numpy())
    with mlflow.start_run() as run:
        mlflow.pytorch.log_model(
            net,
            name="model",
            registered_model_name="torchnet",
            serialization_format="pickle",
            signature=signature,
            pip_requirements=requirements(),
        )
        mlflow.pytorch.log_model(
            net, name="exported", registered_model_name="torchnet", input_example=X[:2], pip_requirements=requirements()
        )
        weights = os.path.join(directory, "weights")
        os.makedirs(weights)
        save_file(net.state_dict(), os.path.join(weights, "model.safetensors"))
        mlflow.log_artifacts(weights, artifact_path="weights")
        client.create_registered_model("weights")
        client.create_model_version("weights", f"runs:/{run.info.run_id}/weights", run_id=run.info.run_id)
    expected["torchnet"] = net(torch.from_numpy(X)).detach().numpy().tolist()

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.array([[1.0], [-2.0]], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(w, "W")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    with mlflow.start_run():
        mlflow.onnx.log_model(
            proto, name="model", registered_model_name="onnxm", signature=infer_signature(X, X @ w), pip_requirements=requirements("onnx")
        )
    expected["onnxm"] = (X @ w).tolist()

    pipe = tiny_pipeline()
    with mlflow.start_run():
        mlflow.transformers.log_model(
            pipe,
            name="model",
            registered_model_name="textcls",
            signature=infer_signature(TEXTS, [{"label": "LABEL_0", "score": 0.5}]),
            pip_requirements=requirements("transformers", "torch"),
        )
    expected["textcls"] = pipe(TEXTS)

    with mlflow.start_run():
        mlflow.sklearn.log_model(LogisticRegression(C=2.0).fit(X, Y), name="unregistered", pip_requirements=requirements("scikit-learn"))


def write_file_store():
    from sklearn.linear_model import LogisticRegression

    directory = os.path.join(ROOT, "file")
    os.makedirs(directory)
    os.chdir(directory)
    use("file://" + os.path.join(directory, "mlruns"))
    mlflow.set_experiment("interop")
    clf = LogisticRegression(C=0.5).fit(X, Y)
    with mlflow.start_run():
        mlflow.log_metric("acc", 0.8)
        mlflow.sklearn.log_model(clf, name="model", registered_model_name="churn", pip_requirements=requirements("scikit-learn", "skops"))
    MlflowClient().set_registered_model_alias("churn", "champion", 1)


write_sqlite()
write_file_store()
with open(os.path.join(ROOT, "expected.json"), "w") as f:
    json.dump(expected, f)

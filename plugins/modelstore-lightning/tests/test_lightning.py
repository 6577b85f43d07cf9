"""modelstore-lightning: real LightningModules (trained by a Trainer) through a real local store,
loaded back by a fresh ModelStore into modules built from the stored hyperparameters."""

from __future__ import annotations

import importlib.metadata
import json

import pytest
import pytorch_lightning as pl
import torch
from lightning_models import REGRESSOR

from modelstore_core import ModelStoreError
from modelstore_core.testing.flavors import assert_deterministic_across_processes

X = torch.linspace(-2, 2, 15).reshape(5, 3)


class WithObjects(pl.LightningModule):
    """Hyperparameters JSON cannot hold (a module, a tuple-keyed dict) beside ones it can."""

    def __init__(self, width: int = 4, loss: torch.nn.Module | None = None, table=None):
        super().__init__()
        self.save_hyperparameters()
        self.lin = torch.nn.Linear(3, width)
        self.loss = loss

    def forward(self, x):
        return self.lin(x)


class NoHparams(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x)


def outputs(module):
    with torch.no_grad():
        return module.eval()(X)


def test_files_hyperparameters_and_metadata(store, fresh, regressor_code, tmp_path):
    model = regressor_code["regressor"]
    v = store.upload("reg", model=model)
    assert v.flavor.name == "lightning" and v.flavor.safe is True
    assert {f.path for f in v.files} == {"model.safetensors", "hparams.json"}
    stored = json.loads((fresh().download("reg", to=tmp_path / "dl") / "hparams.json").read_text())
    assert stored == {"activation": "relu", "layers": [3, 1], "lr": 0.05, "width": 6}
    info = v.metadata["model"]
    assert info["framework"] == "lightning" and info["framework_version"] == pl.__version__
    assert info["torch_version"] == torch.__version__ and info["class"].endswith("Regressor")
    assert info["hyperparameters"] == {"activation": "relu", "layers": [3, 1], "lr": 0.05, "width": 6}
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert v.metadata["dependencies"]["pytorch-lightning"] == importlib.metadata.version("pytorch-lightning")


def test_loads_into_an_instance_a_factory_a_meta_skeleton_or_as_a_state_dict(store, fresh, regressor_code):
    Regressor, model = regressor_code["Regressor"], regressor_code["regressor"]
    store.upload("reg", model=model)
    instance = Regressor(width=6, activation="relu")
    assert fresh().load("reg", model=instance) is instance
    torch.testing.assert_close(outputs(instance), outputs(model), rtol=0, atol=0)
    torch.testing.assert_close(
        outputs(fresh().load("reg", model=lambda: Regressor(width=6, activation="relu"))), outputs(model), rtol=0, atol=0
    )
    with torch.device("meta"):
        skeleton = Regressor(width=6, activation="relu")
    torch.testing.assert_close(outputs(fresh().load("reg", model=skeleton)), outputs(model), rtol=0, atol=0)
    state = fresh().load("reg", as_state_dict=True)
    assert list(state) == list(model.state_dict()) and state["norm.num_batches_tracked"].item() == 4
    built = fresh().load("reg", model=Regressor, hparams={"lr": 0.5})  # hparams= overrides stored values
    assert built.hparams.lr == 0.5 and built.hparams.width == 6


def test_without_model_the_error_says_how_to_load(store, fresh, regressor_code):
    store.upload("reg", model=regressor_code["regressor"])
    with pytest.raises(ModelStoreError, match=r"model=Regressor\b"):
        fresh().load("reg")
    with pytest.raises(RuntimeError, match="size mismatch"):  # torch's own check, as with modelstore-torch
        fresh().load("reg", model=regressor_code["Regressor"](width=5, activation="relu"))


@pytest.mark.filterwarnings("ignore:Attribute 'loss' is an instance of `nn.Module`")
def test_hyperparameters_json_cannot_hold_are_listed_and_must_be_given(store, fresh):
    torch.manual_seed(0)
    model = WithObjects(width=4, loss=torch.nn.MSELoss(), table={1: "one"})
    v = store.upload("obj", model=model)
    assert v.flavor.options["skipped_hparams"] == ["loss", "table"]
    with pytest.raises(ModelStoreError, match=r"\['loss', 'table'\].*hparams=\{'loss': \.\.\., 'table': \.\.\.\}"):
        fresh().load("obj", model=WithObjects)
    loaded = fresh().load("obj", model=WithObjects, hparams={"loss": torch.nn.L1Loss(), "table": None})
    assert loaded.hparams.width == 4 and isinstance(loaded.loss, torch.nn.L1Loss)
    torch.testing.assert_close(outputs(loaded), outputs(model), rtol=0, atol=0)


def test_a_module_without_hyperparameters_is_built_with_no_arguments(store, fresh):
    torch.manual_seed(0)
    model = NoHparams()
    store.upload("plain", model=model)
    torch.testing.assert_close(outputs(fresh().load("plain", model=NoHparams)), outputs(model), rtol=0, atol=0)


def test_same_module_gives_the_same_bytes_in_another_process(tmp_path):
    assert_deterministic_across_processes(tmp_path, REGRESSOR, {"reg": "regressor"})


def test_a_torch_module_and_a_lightning_module_in_one_version(store, fresh, regressor_code):
    """Several models in one version, each stored by its own plugin (modelstore-torch and this one)."""
    Regressor, head = regressor_code["Regressor"], regressor_code["regressor"]
    torch.manual_seed(3)
    encoder = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh()).eval()
    v = store.upload("pair", models={"encoder": encoder, "head": head})
    assert {name: f.name for name, f in v.parts.items()} == {"encoder": "torch", "head": "lightning"}
    assert sorted(f.path for f in v.files) == ["encoder/model.safetensors", "head/hparams.json", "head/model.safetensors"]
    assert v.metadata["parts"]["head"]["model"]["hyperparameters"]["width"] == 6
    assert v.metadata["parts"]["encoder"]["model"]["framework"] == "torch"
    assert v.metadata["dependencies"]["pytorch-lightning"] == pl.__version__

    loaded = fresh().load(
        "pair",
        part_options={
            "encoder": {"model": lambda: torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh())},
            "head": {"model": Regressor},
        },
    )
    assert list(loaded) == ["encoder", "head"]
    with torch.no_grad():
        torch.testing.assert_close(loaded["head"].eval()(loaded["encoder"](X)), head.eval()(encoder(X)), rtol=0, atol=0)
    only = fresh().load("pair", part="head", model=Regressor)
    torch.testing.assert_close(outputs(only), outputs(head), rtol=0, atol=0)

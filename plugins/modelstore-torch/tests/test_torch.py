"""modelstore-torch: real torch models through a real local store, loaded back by a fresh ModelStore."""

from __future__ import annotations

import importlib.metadata
import json
import struct
from collections import OrderedDict

import pytest
import torch
from torch import nn

from modelstore_core import ModelStoreError, UntrustedArtifactError
from modelstore_core.testing.flavors import assert_reupload_deduplicated

# --- models -------------------------------------------------------------------------------


class ConvNet(nn.Module):
    """Conv + BatchNorm (its own _load_from_state_dict, int64 buffer) + dropout + linear head."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(channels * 8 * 8, 3)

    def forward(self, x):
        x = self.drop(torch.relu(self.bn(self.conv(x))))
        return self.head(x.flatten(1))


class TinyLM(nn.Module):
    """Embedding tied to the output projection, plus a GRU."""

    def __init__(self, vocab: int = 50, dim: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.out = nn.Linear(dim, vocab, bias=False)
        self.out.weight = self.embed.weight  # tied

    def forward(self, tokens):
        h, _ = self.rnn(self.embed(tokens))
        return self.out(h)


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))


def trained(model: nn.Module, make_input, steps: int = 5) -> nn.Module:
    """A few real optimisation steps, so weights and BatchNorm statistics are not their init values."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(make_input()).float().pow(2).mean().backward()
        opt.step()
    return model.eval()


# --- modules ------------------------------------------------------------------------------


def test_sequential_loads_into_an_instance_and_from_factories(store, fresh):
    torch.manual_seed(0)
    model = trained(mlp(), lambda: torch.randn(8, 6))
    x = torch.randn(5, 6)
    v = store.upload("mlp", model=model)
    assert v.flavor.name == "torch" and v.flavor.format == "safetensors" and v.flavor.safe is True
    assert [f.path for f in v.files] == ["model.safetensors"]

    for target in (mlp(), mlp, lambda: mlp()):
        torch.manual_seed(123)  # a different init: only loading makes the outputs agree
        loaded = fresh().load("mlp", model=target)
        assert isinstance(loaded, nn.Sequential) and loaded is not model
        torch.testing.assert_close(loaded.eval()(x), model(x), rtol=0, atol=0)
    instance = mlp()
    assert fresh().load("mlp", model=instance) is instance  # loaded in place


def test_convnet_with_batchnorm_buffers(store, fresh):
    torch.manual_seed(1)
    model = trained(ConvNet(), lambda: torch.randn(4, 1, 8, 8))
    assert model.bn.num_batches_tracked.item() == 5
    store.upload("conv", model=model)
    loaded = fresh().load("conv", model=ConvNet).eval()
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    torch.testing.assert_close(loaded.bn.running_mean, model.bn.running_mean, rtol=0, atol=0)
    assert loaded.bn.num_batches_tracked.dtype == torch.int64 and loaded.bn.num_batches_tracked.item() == 5


def test_tied_weights_are_stored_once_and_stay_tied(store, fresh, tmp_path):
    torch.manual_seed(2)
    model = trained(TinyLM(), lambda: torch.randint(0, 50, (2, 7)))
    v = store.upload("lm", model=model)
    path = fresh().download("lm", to=tmp_path / "dl") / "model.safetensors"
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    stored = set(header) - {"__metadata__"}
    assert ("embed.weight" in stored) != ("out.weight" in stored)  # one copy of the tied matrix
    assert v.metadata["model"]["shared_tensors"] == 1

    loaded = fresh().load("lm", model=TinyLM()).eval()
    assert loaded.out.weight is loaded.embed.weight
    tokens = torch.randint(0, 50, (3, 9))
    torch.testing.assert_close(loaded(tokens), model(tokens), rtol=0, atol=0)

    # The same tie survives as a state dict: both names share one tensor's memory.
    store.upload("lm-sd", model=model.state_dict())
    sd = fresh().load("lm-sd")
    assert sd["embed.weight"].data_ptr() == sd["out.weight"].data_ptr()
    torch.testing.assert_close(sd["out.weight"], model.out.weight.detach(), rtol=0, atol=0)


def test_state_dict_version_loads_into_a_module(store, fresh):
    torch.manual_seed(3)
    model = trained(mlp(), lambda: torch.randn(8, 6))
    store.upload("from-sd", model=model.state_dict())
    loaded = fresh().load("from-sd", model=mlp)
    x = torch.randn(4, 6)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_module_without_pickle_needs_model_or_gives_its_state_dict(store, fresh):
    torch.manual_seed(4)
    model = mlp()
    store.upload("bare", model=model)
    with pytest.raises(ModelStoreError, match=r"model=Sequential\(") as err:
        fresh().load("bare", trust=True)
    assert not isinstance(err.value, UntrustedArtifactError)  # trust would not help: no pickle exists
    sd = fresh().load("bare", as_state_dict=True)
    assert isinstance(sd, OrderedDict) and list(sd) == list(model.state_dict())
    for k, t in model.state_dict().items():
        torch.testing.assert_close(sd[k], t, rtol=0, atol=0)


def test_mismatched_module_is_refused_unless_not_strict(store, fresh):
    torch.manual_seed(5)
    model = mlp()
    store.upload("mlp", model=model)
    bigger = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2), nn.Linear(2, 2))
    with pytest.raises(ModelStoreError, match=r"missing keys \['3.bias', '3.weight'\]"):
        fresh().load("mlp", model=bigger)
    loaded = fresh().load("mlp", model=bigger, strict=False)
    torch.testing.assert_close(loaded[0].weight, model[0].weight, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="size mismatch"):  # torch's own check, as load_state_dict
        fresh().load("mlp", model=nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2)))


def test_dtype_is_cast_like_load_state_dict(store, fresh):
    torch.manual_seed(6)
    model = mlp()
    store.upload("mlp", model=model)
    wide = fresh().load("mlp", model=mlp().to(torch.float64))
    assert wide[0].weight.dtype == torch.float64
    torch.testing.assert_close(wide[0].weight, model[0].weight.double(), rtol=0, atol=0)


# --- state dicts and tensors --------------------------------------------------------------


def test_state_dict_of_mixed_dtypes_round_trips(store, fresh):
    torch.manual_seed(7)
    base = torch.randn(6, 4)
    sd = OrderedDict(
        [
            ("z.weight", torch.randn(3, 5)),
            ("a.half", torch.randn(4).half()),
            ("m.bf16", torch.randn(2, 2).bfloat16()),
            ("steps", torch.tensor(17, dtype=torch.int64)),
            ("mask", torch.tensor([True, False, True])),
            ("transposed", base.t()),  # not contiguous
            ("slice", base[1:3]),  # shares storage with `transposed`, but is another view
            ("empty", torch.empty(0, 3)),
            ("u8", torch.arange(10, dtype=torch.uint8)),
        ]
    )
    assert not sd["transposed"].is_contiguous()
    store.upload("sd", model=sd)
    loaded = fresh().load("sd")
    assert type(loaded) is OrderedDict and list(loaded) == list(sd)
    for k, t in sd.items():
        assert loaded[k].dtype == t.dtype and loaded[k].device.type == "cpu", k
        torch.testing.assert_close(loaded[k], t, rtol=0, atol=0)

    plain = {"w": torch.randn(2, 3), "b": torch.zeros(3)}
    store.upload("plain", model=plain)
    back = fresh().load("plain")
    assert type(back) is dict and list(back) == ["w", "b"]
    torch.testing.assert_close(back["w"], plain["w"], rtol=0, atol=0)


def test_single_tensor_and_device_option(store, fresh):
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    store.upload("t", model=t)
    back = fresh().load("t")
    assert isinstance(back, torch.Tensor)
    torch.testing.assert_close(back, t, rtol=0, atol=0)
    on_meta = fresh().load("t", device="meta")  # honoured without a GPU: no data, right shape
    assert on_meta.device.type == "meta" and on_meta.shape == t.shape and on_meta.dtype == t.dtype
    with pytest.raises(TypeError, match="single tensor"):
        fresh().load("t", model=mlp())


def test_non_tensor_state_entries_and_bad_factories_are_refused(store, fresh):
    with pytest.raises(TypeError, match="pickle_module=True applies to nn.Module"):
        store.upload("sd", model={"w": torch.zeros(2)}, pickle_module=True)
    store.upload("m", model=mlp())
    with pytest.raises(TypeError, match="model= must be an nn.Module"):
        fresh().load("m", model=lambda: "not a module")


# --- metadata -----------------------------------------------------------------------------


def test_metadata(store):
    model = ConvNet()
    v = store.upload("conv", model=model)
    meta = v.metadata["model"]
    assert meta["framework"] == "torch" and meta["framework_version"] == torch.__version__
    assert v.flavor.model_class.endswith("ConvNet") and "class" not in meta  # the core records the class
    assert meta["parameters"] == sum(p.numel() for p in model.parameters())
    assert meta["state_dict_keys"] == len(model.state_dict())
    assert meta["dtypes"] == {"float32": len(model.state_dict()) - 1, "int64": 1}
    assert meta["tensor_bytes"] == sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert v.metadata["dependencies"]["torch"] == importlib.metadata.version("torch")
    assert "modelstore-torch" in v.metadata["dependencies"]


# --- determinism ----------------------------------------------------------------------------


def test_same_model_twice_gives_identical_bytes(store, tmp_path):
    torch.manual_seed(8)
    model = trained(TinyLM(), lambda: torch.randint(0, 50, (2, 5)))
    [(v1, _)] = assert_reupload_deduplicated(store, tmp_path, {"lm": model})

    # An equal model built separately (same seed) is the same bytes too.
    torch.manual_seed(8)
    twin = trained(TinyLM(), lambda: torch.randint(0, 50, (2, 5)))
    assert store.upload("lm", model=twin).files == v1.files

    # The optional pickle is deterministic as well (torch.save writes fixed zip dates and a
    # content-derived serialization id).
    p1 = store.upload("lm-pickled", model=model, pickle_module=True)
    p2 = store.upload("lm-pickled", model=model, pickle_module=True)
    assert p2.files == p1.files and {f.path for f in p1.files} == {"model.safetensors", "module.pt"}


# --- trust ----------------------------------------------------------------------------------


class Booby(nn.Module):
    """An ordinary module whose pickle, when unpickled, creates a file (stands in for any payload)."""

    marker = None

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x)

    def __reduce_ex__(self, protocol):
        return (open, (str(self.marker), "w"))


def test_pickled_module_is_never_unpickled_without_trust(store, fresh, tmp_path):
    marker = tmp_path / "pwned"
    model = Booby()
    model.marker = marker
    v = store.upload("boom", model=model, pickle_module=True)
    assert v.flavor.options["files"]["module.pt"] == {"format": "torch-pickle", "safe": False}
    assert v.flavor.options["files"]["model.safetensors"] == {"format": "safetensors", "safe": True}
    assert not marker.exists()

    with pytest.raises(UntrustedArtifactError) as err:
        fresh().load("boom")
    message = str(err.value)
    assert "trust=True" in message and "model=Booby(" in message and "lambda" in message
    assert not marker.exists()

    # The weights load without trust into a module the caller builds; the pickle is not read.
    safe = fresh().load("boom", model=Booby())
    torch.testing.assert_close(safe.lin.weight, model.lin.weight, rtol=0, atol=0)
    assert not marker.exists()

    # The payload is live: trust=True really unpickles it (which is why it must be asked for).
    handle = fresh().load("boom", trust=True)
    handle.close()
    assert marker.exists()


def test_trusted_pickle_round_trips_a_module(store, fresh):
    torch.manual_seed(9)
    model = trained(ConvNet(), lambda: torch.randn(4, 1, 8, 8))
    store.upload("conv", model=model, pickle_module=True)
    loaded = fresh().load("conv", trust=True)
    assert isinstance(loaded, ConvNet) and not loaded.training
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_a_meta_skeleton_gets_the_stored_tensors_assigned(store, fresh):
    """`with torch.device("meta")` builds a large model without allocating it; loading assigns
    the stored tensors (load_state_dict(assign=True)) instead of silently copying into nothing."""
    torch.manual_seed(4)
    model = trained(ConvNet(), lambda: torch.randn(2, 1, 8, 8))
    store.upload("conv", model=model)
    with torch.device("meta"):
        skeleton = ConvNet()
    loaded = fresh().load("conv", model=skeleton).eval()
    assert loaded is skeleton
    state = loaded.state_dict()
    assert not any(t.is_meta for t in state.values()) and {t.device.type for t in state.values()} == {"cpu"}
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(state[name], tensor, rtol=0, atol=0)
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=0)


def test_a_meta_skeleton_keeps_tied_weights_tied(store, fresh):
    torch.manual_seed(5)
    model = trained(TinyLM(), lambda: torch.randint(0, 50, (2, 7)))
    store.upload("lm", model=model)
    with torch.device("meta"):
        skeleton = TinyLM()
    loaded = fresh().load("lm", model=skeleton).eval()
    assert loaded.out.weight.data_ptr() == loaded.embed.weight.data_ptr()
    tokens = torch.randint(0, 50, (3, 9))
    torch.testing.assert_close(loaded(tokens), model.eval()(tokens), rtol=0, atol=0)


def test_a_module_partly_on_meta_is_a_clear_error(store, fresh):
    store.upload("mlp", model=mlp())
    half = mlp()
    with torch.device("meta"):
        half[0] = nn.Linear(half[0].in_features, half[0].out_features)
    with pytest.raises(ModelStoreError, match="partly on the meta device"):
        fresh().load("mlp", model=half)
    with torch.device("meta"):
        other = nn.Sequential(nn.Linear(3, 3))
    with pytest.raises(ModelStoreError, match="do not match"):
        fresh().load("mlp", model=other)

"""A torch model's input example, data fingerprints and metrics (tensors, never their values)."""

from __future__ import annotations

import json

import torch
from torch import nn

from modelstore_core.testing.flavors import open_store


def test_tensor_example_data_and_metrics(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(16, 4)
    loss = nn.functional.cross_entropy(model(x), torch.zeros(16, dtype=torch.long))
    store = open_store(tmp_path)
    v = store.upload(
        "net", model=model, input_example=x[:2], data={"train": x, "half": x.to(torch.bfloat16)}, metrics={"loss": loss.detach()}
    )
    assert v.signature == {
        "format": "tensors",
        "source": "input_example",
        "inputs": [{"name": None, "dtype": "float32", "shape": [None, 4]}],
    }
    assert list(v.metrics) == ["loss"] and abs(v.metrics["loss"] - loss.item()) < 1e-6
    assert v.data["train"]["kind"] == "tensor" and v.data["train"]["shape"] == [16, 4] and v.data["train"]["bytes"] == 16 * 4 * 4
    assert v.data["half"]["dtypes"] == ["bfloat16"] and v.data["half"]["sha256"] != v.data["train"]["sha256"]
    assert store.upload("net", model=model, data={"train": x.clone()}).data["train"] == v.data["train"]
    changed = x.clone()
    changed[3, 1] += 1
    assert store.upload("net", model=model, data={"train": changed}).data["train"]["sha256"] != v.data["train"]["sha256"]
    assert str(x[0, 0].item())[:6] not in json.dumps(v.signature)

    assert store.check_input("net", torch.randn(5, 4), version=1).ok
    problems = store.check_input("net", torch.randn(5, 3, dtype=torch.float64), version=1).problems
    assert [(p.kind, p.expected, p.found) for p in problems] == [("shape", [None, 4], [5, 3]), ("dtype", "float32", "float64")]

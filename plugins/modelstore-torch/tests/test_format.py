"""The files are real safetensors: byte-identical to the reference writer, readable by the reference reader."""

from __future__ import annotations

import json

import pytest
import safetensors.torch
import torch
from modelstore_torch import weights


def mixed() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "b.weight": torch.randn(7, 3),
        "a.weight": torch.randn(5),
        "counts": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "flags": torch.tensor([True, False]),
        "h": torch.randn(3, 3).half(),
        "bf": torch.randn(4).bfloat16(),
        "i8": torch.tensor([-3, 4], dtype=torch.int8),
        "d": torch.randn(2, dtype=torch.float64),
        "scalar": torch.tensor(2.5),
        "none": torch.empty(0),
    }


def test_writer_matches_safetensors_save_file_byte_for_byte(tmp_path):
    tensors = mixed()
    ours, reference = tmp_path / "ours.safetensors", tmp_path / "ref.safetensors"
    weights.write(ours, tensors.items(), {"format": "pt"})
    safetensors.torch.save_file(tensors, reference, metadata={"format": "pt"})
    assert ours.read_bytes() == reference.read_bytes()

    weights.write(ours, tensors.items())  # and without metadata
    safetensors.torch.save_file(tensors, reference)
    assert ours.read_bytes() == reference.read_bytes()


def test_reader_reads_safetensors_files(tmp_path):
    tensors = mixed()
    path = tmp_path / "ref.safetensors"
    safetensors.torch.save_file(tensors, path, metadata={"format": "pt", "note": "x"})
    with weights.Reader(path) as reader:
        assert reader.metadata == {"format": "pt", "note": "x"}
        assert set(reader.keys()) == set(tensors)
        for name, t in tensors.items():
            back = reader.read(name)
            assert back.dtype == t.dtype and back.shape == t.shape
            torch.testing.assert_close(back, t, rtol=0, atol=0)


def test_stored_module_loads_with_the_reference_reader(store, tmp_path):
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1))
    store.upload("m", model=model)
    path = store.download("m", to=tmp_path / "dl") / "model.safetensors"
    loaded = safetensors.torch.load_file(path)
    expected = model.state_dict()
    assert set(loaded) == set(expected)
    for k, t in expected.items():
        torch.testing.assert_close(loaded[k], t, rtol=0, atol=0)
    with safetensors.safe_open(path, framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "pt"  # what transformers and others check
    assert json.loads(meta["modelstore_torch"])["order"] == list(expected)


def test_metadata_keys_are_written_in_a_stable_order(tmp_path):
    # safetensors.torch.save_file writes __metadata__ in hash-map order, which changes between
    # processes once there is more than one key; our writer sorts the keys.
    t = {"x": torch.ones(2)}
    meta = {"zz": "1", "format": "pt", "aa": "2", "m": "3"}
    a, b = tmp_path / "a", tmp_path / "b"
    weights.write(a, t.items(), meta)
    weights.write(b, t.items(), dict(reversed(list(meta.items()))))
    assert a.read_bytes() == b.read_bytes()
    assert b'{"__metadata__":{"aa":"2","format":"pt","m":"3","zz":"1"}' in a.read_bytes()


def test_corrupt_headers_are_rejected(tmp_path):
    path = tmp_path / "bad.safetensors"
    weights.write(path, mixed().items())
    data = path.read_bytes()
    path.write_bytes(data[:-3])  # truncated data
    with pytest.raises(weights.FormatError, match="outside the 199 byte data section"):
        weights.Reader(path)
    path.write_bytes(b"\xff" * 8 + data[8:])
    with pytest.raises(weights.FormatError, match="header length"):
        weights.Reader(path)


def test_unsupported_dtypes_and_names_are_refused(tmp_path):
    with pytest.raises(TypeError, match="dtype"):
        weights.write(tmp_path / "x", [("q", torch.zeros(2, dtype=torch.complex128))])
    with pytest.raises(ValueError, match="__metadata__"):
        weights.write(tmp_path / "x", [("__metadata__", torch.zeros(2))])

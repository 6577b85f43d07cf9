"""A store is untrusted input: hparams.json, weights and records crafted from a real upload by
someone with write access to the bucket (object bytes and record sha256 kept consistent) are
refused with a typed error naming the file or the field, before any module is built."""

from __future__ import annotations

import hashlib
import struct

import pytest
import torch
from lightning_models import REGRESSOR

from modelstore_core import CorruptArtifactError, CorruptRecordError, ModelStore
from modelstore_core.protocol import keys
from modelstore_core.testing.flavors import run_python_json
from modelstore_core.testing.tamper_contract import edit_record, put

X = torch.linspace(-2, 2, 15).reshape(5, 3)


def set_file(store: ModelStore, domain: str, version: int, path: str, data: bytes) -> None:
    """Make ``data`` the version's file ``path``: the object and the record's sha256 and size agree."""
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)
    edit_record(store, domain, version, lambda doc: [f.update(sha256=sha, size=len(data)) for f in doc["files"] if f["path"] == path])


@pytest.fixture
def uploaded(store, regressor_code):
    """The trained regressor as versions 1 (to be damaged) and 2 (kept)."""
    store.upload("reg", model=regressor_code["regressor"])
    store.upload("reg", model=regressor_code["regressor"])
    return regressor_code["Regressor"], regressor_code["regressor"]


@pytest.mark.parametrize(
    "data,check",
    [
        pytest.param(b"{not json", "not valid UTF-8 JSON", id="not-json"),
        pytest.param(b'["width", 6]', "not a JSON object", id="not-an-object"),
        pytest.param(b'{"width": 6, "width": 600000000}', "repeats a key", id="duplicate-key"),
        pytest.param(b'{"lr": NaN}', "NaN", id="nan"),
        pytest.param(b'{"width": 6}' + b" " * (4 * 2**20), "over the 4194304 byte limit", id="too-big"),
        pytest.param(b'{"width": 1000000000, "activation": "relu"}', "a module of 20000000060 bytes", id="huge-module"),
    ],
)
def test_a_damaged_hparams_json_is_refused_before_the_module_is_built(store, fresh, uploaded, data, check):
    Regressor, model = uploaded
    set_file(store, "reg", 1, "hparams.json", data)
    with pytest.raises(CorruptArtifactError, match=check) as err:
        fresh().load("reg", version=1, model=Regressor)
    assert err.value.file == "hparams.json"
    with torch.no_grad():
        torch.testing.assert_close(fresh().load("reg", version=2, model=Regressor).eval()(X), model.eval()(X), rtol=0, atol=0)


@pytest.mark.parametrize("option,value", [("hparams", "../../../../other.json"), ("hparams", "/etc/passwd"), ("hparams", 3)])
def test_the_record_cannot_name_another_file(store, fresh, uploaded, option, value):
    edit_record(store, "reg", 1, lambda doc: doc["flavor"]["options"].update({option: value}))
    with pytest.raises(CorruptRecordError, match=rf"flavor\.options\.{option}"):
        fresh().load("reg", version=1, model=uploaded[0])


def test_the_record_cannot_reach_a_pickle_or_another_weights_file(store, fresh, uploaded, tmp_path):
    """The nested torch options are the torch plugin's, checked by it; a pickle is never read."""
    Regressor = uploaded[0]
    edit_record(store, "reg", 1, lambda doc: doc["flavor"]["options"]["torch"].update(weights="../../../etc/passwd"))
    with pytest.raises(CorruptRecordError, match=r"flavor\.options\.weights"):
        fresh().load("reg", version=1, model=Regressor)
    edit_record(store, "reg", 1, lambda doc: doc["flavor"]["options"].update(torch="module.pt"))
    with pytest.raises(CorruptRecordError, match=r"flavor\.options\.torch"):
        fresh().load("reg", version=1, model=Regressor)


def test_damaged_weights_fail_typed_in_a_child_process(store, uploaded, tmp_path):
    """The crash check: a child process loads each damaged version; it must exit normally with the typed
    error (no segfault in compiled code, no allocation that gets it killed)."""
    Regressor, model = uploaded
    data = (store.download("reg", version=1, to=tmp_path / "dl") / "model.safetensors").read_bytes()
    damaged = [struct.pack("<Q", 2**63) + data[8:], data[:-4], data[:8] + b"[" * (len(data) - 8)]
    for i, bad in enumerate(damaged):
        store.upload("reg", model=model)
        set_file(store, "reg", 3 + i, "model.safetensors", bad)
    store.upload("reg", model=model)  # version 6: hyperparameters that make a 24 GB module
    set_file(store, "reg", 6, "hparams.json", b'{"width": 2000000000, "activation": "relu"}')
    out = run_python_json(
        """
        import json, sys
        from modelstore_core import ModelStore, ModelStoreError
        store = ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/cache-child")
        scope = {}
        exec(sys.argv[2], scope)  # the Regressor class, as the tests define it
        Regressor = scope["Regressor"]
        results = []
        for version in (3, 4, 5, 6):
            try:
                store.load("reg", version=version, **({"model": Regressor} if version == 6 else {"as_state_dict": True}))
                results.append("loaded")
            except ModelStoreError as exc:
                results.append(type(exc).__name__ + ": " + str(exc))
        print(json.dumps(results))
        """,
        tmp_path,
        args=[tmp_path, REGRESSOR.split("\ndef fit")[0]],
    )
    assert all(r.startswith("FormatError: model.safetensors") for r in out[:3]), out
    assert out[3].startswith("CorruptArtifactError: hparams.json") and "a module of" in out[3], out

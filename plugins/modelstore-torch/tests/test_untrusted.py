"""A store is untrusted input: model files and records crafted from a real upload by someone with
write access to the bucket (object bytes and record sha256 kept consistent) are refused with a
ModelStoreError naming the file and the check, before torch allocates a tensor."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap

import pytest
import safetensors.torch
import torch
from torch import nn

from modelstore_core import CorruptArtifactError, CorruptRecordError, ModelStore
from modelstore_core.protocol import keys
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.tamper_contract import edit_record, put

SIDE = 512  # a 512x512 float32 weight: 1 MiB


def linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(SIDE, SIDE)


def replace_model_file(store: ModelStore, domain: str, version: int, data: bytes, index: int = 0) -> None:
    """Make ``data`` the version's model file: the object and the record's sha256 and size agree."""
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)
    edit_record(store, domain, version, lambda doc: doc["files"][index].update(sha256=sha, size=len(data)))


def split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def join(header: dict | bytes, body: bytes) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


@pytest.fixture
def uploaded(store, tmp_path):
    """A real nn.Linear stored as version 1 (to be damaged) and 2 (kept), and the file's bytes."""
    model = linear()
    store.upload("lin", model=model)
    store.upload("lin", model=model)
    data = (store.download("lin", version=1, to=tmp_path / "dl") / "model.safetensors").read_bytes()
    return model, data


def _weight_only(header: dict, body: bytes) -> tuple[dict, bytes]:
    """The header and body of the weight alone (the bias dropped): a 1 MiB data section."""
    begin, end = header["weight"]["data_offsets"]
    entry = {**header["weight"], "data_offsets": [0, end - begin]}
    return {"__metadata__": {"format": "pt"}, "weight": entry}, body[begin:end]


def overlapping(data: bytes) -> bytes:
    """300 header entries over the same 1 MiB of a real weight."""
    header, body = _weight_only(*split(data))
    header.update({f"copy{i}": dict(header["weight"]) for i in range(299)})
    return join(header, body)


def _edit(fn):
    def make(data: bytes) -> bytes:
        header, body = split(data)
        out = fn(header, body)
        return join(*out) if isinstance(out, tuple) else out

    return make


def _dupe(header: dict, body: bytes) -> bytes:
    # The weight's entry written twice: Python's json keeps the last, another reader may keep the first.
    raw = json.dumps(header).encode()
    weight = json.dumps({"weight": header["weight"]}).encode()[1:-1]
    return join(raw[:-1] + b"," + weight + b"}", body)


def _meta(value):
    return _edit(lambda h, b: (h | {"__metadata__": value}, b))


def _entry(**change):
    return _edit(lambda h, b: (h | {"weight": h["weight"] | change}, b))


def _offsets(shift_begin: int, shift_end: int):
    def edit(header: dict, body: bytes) -> tuple[dict, bytes]:
        begin, end = header["weight"]["data_offsets"]
        return header | {"weight": header["weight"] | {"data_offsets": [begin + shift_begin, end + shift_end]}}, body

    return _edit(edit)


def _extra(value: str):
    return _edit(lambda h, b: (h | {"__metadata__": h["__metadata__"] | {"modelstore_torch": value}}, b))


DAMAGES = [
    pytest.param(_offsets(4, 4), "outside the", id="offsets-past-end"),
    pytest.param(lambda d: struct.pack("<Q", 2**63) + d[8:], "over the 104857600 byte limit", id="huge-header-length"),
    pytest.param(lambda d: struct.pack("<Q", len(d)) + d[8:], "past the end", id="header-length-past-end"),
    pytest.param(lambda d: d[:8] + b"{not json" + d[17:], "not valid UTF-8 JSON", id="non-json-header"),
    pytest.param(_edit(lambda h, b: join(b"[]", b)), "not a JSON object", id="header-not-an-object"),
    pytest.param(_edit(_dupe), "repeats a key", id="duplicate-key"),
    pytest.param(_entry(shape=[-SIDE, -SIDE]), "non-negative", id="negative-shape"),  # same product as [512, 512]
    # empty, but its strides overflow int64
    pytest.param(
        _edit(lambda h, b: (h | {"e": h["bias"] | {"shape": [0, 2**62, 2**62], "data_offsets": [0, 0]}}, b)), "overflows", id="overflow"
    ),
    pytest.param(_entry(shape=[SIDE, SIDE - 1]), "bytes of data for", id="size-mismatch"),
    pytest.param(_entry(dtype="F128"), "unknown dtype", id="unknown-dtype"),
    pytest.param(_offsets(-4, -4), "overlaps", id="overlapping-offsets"),
    pytest.param(lambda d: _offsets(4, 4)(d + b"\0" * 4), "gap of 4 bytes", id="gap-before-a-tensor"),
    pytest.param(_edit(lambda h, b: (h, b + b"\0" * 4)), "the tensors end at byte", id="trailing-bytes"),
    pytest.param(_meta(["format", "pt"]), "__metadata__ is not an object of strings", id="metadata-not-a-dict"),
    pytest.param(_meta({"format": "pt", "modelstore_torch": {"order": []}}), "object of strings", id="metadata-value-not-a-string"),
    pytest.param(_extra("{not json"), "'modelstore_torch'] is not JSON", id="plugin-metadata-not-json"),
    pytest.param(_extra('{"order": [], "aliases": {"w2": "nope"}}'), "aliases that do not name", id="plugin-alias-to-nothing"),
    pytest.param(_extra('{"order": "weight", "aliases": {}}'), "order that is not a list", id="plugin-order-not-a-list"),
]


@pytest.mark.parametrize("damage,check", DAMAGES)
def test_a_damaged_header_is_refused_before_any_tensor(store, fresh, uploaded, damage, check):
    model, data = uploaded
    replace_model_file(store, "lin", 1, damage(data))
    for load in (lambda: fresh().load("lin", version=1, as_state_dict=True), lambda: fresh().load("lin", version=1, model=linear())):
        with pytest.raises(CorruptArtifactError, match=check) as err:
            load()
        assert err.value.file == "model.safetensors"
    torch.testing.assert_close(fresh().load("lin", version=2, model=nn.Linear(SIDE, SIDE)).weight, model.weight, rtol=0, atol=0)


def test_the_reference_reader_refuses_overlapping_tensors_too(uploaded):
    with pytest.raises(Exception, match="(?i)offset"):
        safetensors.torch.load(overlapping(uploaded[1]))


CHILD = textwrap.dedent(
    """
    import json, sys
    import torch
    from modelstore_core import CorruptArtifactError, ModelStore

    def peak():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    store = ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/cache-child")
    store.download("lin", version=1, to=sys.argv[1] + "/warm")  # fetched and verified before measuring
    before = peak()
    try:
        out = store.load("lin", version=1, as_state_dict=True)
        result = f"loaded {len(out)} tensors"
    except Exception as exc:
        result = ("refused: " if isinstance(exc, CorruptArtifactError) else type(exc).__name__ + ": ") + str(exc)
    print(json.dumps({"result": result, "growth": peak() - before}))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak RSS from /proc")
def test_overlapping_tensors_do_not_amplify_memory(store, uploaded, tmp_path):
    """300 entries over one 1 MiB weight loaded as 300 tensors (+300 MiB); now refused, in a child process."""
    replace_model_file(store, "lin", 1, overlapping(uploaded[1]))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(out)
    assert out["result"].startswith("refused") and "overlaps" in out["result"], out
    assert out["growth"] < 32 * 2**20, out


@pytest.mark.parametrize(
    "option,name",
    [
        ("weights", "extras/other.safetensors"),  # verified, but an extras file, not the model
        ("weights", "../../../../other.safetensors"),  # out of the cached version, to a real file planted there
        ("weights", "/etc/passwd"),
        ("weights", 7),
        ("pickle", "/etc/passwd"),
        ("pickle", "extras/other.safetensors"),
    ],
)
def test_the_record_cannot_name_another_file(store, fresh, tmp_path, option, name):
    """flavor.options.weights and .pickle name files: only the version's verified model files are read."""
    model = linear()
    other = tmp_path / "other.safetensors"
    safetensors.torch.save_file({"weight": torch.zeros(SIDE, SIDE), "bias": torch.zeros(SIDE)}, other)
    (tmp_path / "cache-1").mkdir()  # the cache of the first fresh() store
    (tmp_path / "cache-1" / "other.safetensors").write_bytes(other.read_bytes())
    store.upload("lin", model=model, extras=[other], pickle_module=True)
    edit_record(store, "lin", 1, lambda doc: doc["flavor"]["options"].update({option: name}))
    with pytest.raises(CorruptRecordError, match=rf"flavor\.options\.{option}"):
        if option == "weights":
            fresh().load("lin", version=1, model=linear())
        else:
            fresh().load("lin", version=1, trust=True)
    edit_record(store, "lin", 1, lambda doc: doc["flavor"]["options"].update(weights="model.safetensors", pickle="module.pt"))
    torch.testing.assert_close(fresh().load("lin", version=1, model=linear()).weight, model.weight, rtol=0, atol=0)


def test_a_record_that_calls_a_state_dict_a_tensor_is_refused(store, fresh):
    store.upload("sd", model={"a": torch.ones(2), "b": torch.zeros(3)})
    edit_record(store, "sd", 1, lambda doc: doc["flavor"]["options"].update(kind="tensor"))
    with pytest.raises(CorruptRecordError, match=r"flavor\.options\.kind"):
        fresh().load("sd", version=1)

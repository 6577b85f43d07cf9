"""A stored ONNX model is untrusted: it is parsed and checked (onnx.checker) before anything is
returned, external tensor data is read only from the version's own model files and only within
them, and a record cannot point the loader at another file.

Hostile files are a real model's protobuf, edited, stored with a record whose sha256 and size
agree (what anyone with write access to the bucket can do)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx_models import linear_model

from modelstore_core import CorruptArtifactError, CorruptRecordError
from modelstore_core.protocol import keys
from modelstore_core.testing.flavors import open_store, run_python_json
from modelstore_core.testing.tamper_contract import edit_record, put


def store_model_bytes(store, domain: str, version: int, data: bytes) -> None:
    """Replace the version's model.onnx with ``data``, object and record consistent."""
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)

    def edit(doc):
        entry = next(f for f in doc["files"] if f["path"] == "model.onnx")
        entry.update(sha256=sha, size=len(data))

    edit_record(store, domain, version, edit)


def stored_model(store, domain: str, version: int) -> onnx.ModelProto:
    record = edit_record(store, domain, version, lambda doc: None)
    sha = next(f["sha256"] for f in record["files"] if f["path"] == "model.onnx")
    return onnx.load_model_from_string(store.storage.read(keys.object_key(sha))[0])


def set_external(key: str, value: str):
    def edit(model: onnx.ModelProto) -> None:
        tensor = next(t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL)
        entry = next((e for e in tensor.external_data if e.key == key), None) or tensor.external_data.add(key=key)
        entry.value = value

    return edit


def widen_first_tensor(model: onnx.ModelProto) -> None:
    model.graph.initializer[0].dims[0] += 1  # its data no longer fits its shape


def negative_dim(model: onnx.ModelProto) -> None:
    model.graph.initializer[0].dims[0] = -64


def repeat_location(model: onnx.ModelProto) -> None:
    model.graph.initializer[0].external_data.add(key="location", value="model.onnx")


EXTERNAL_CRAFTS = {
    "location ../../etc/passwd": set_external("location", "../../etc/passwd"),
    "location /etc/passwd": set_external("location", "/etc/passwd"),
    "location an extra of the version": set_external("location", "extras/notes.txt"),
    "location a file the version does not have": set_external("location", "other.data"),
    "offset past the end": set_external("offset", "100000"),
    "negative offset": set_external("offset", "-8"),
    "length past the end": set_external("length", "9000"),
    "length shorter than the shape needs": set_external("length", "4096"),
    "shape larger than the data": widen_first_tensor,
    "negative dimension": negative_dim,
    "repeated location": repeat_location,
}


def upload_external(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not weights " * 1000)  # large enough to serve as the weights, were it read
    store = open_store(tmp_path)
    v = store.upload("m", model=linear_model(64, 32), external_data=True, extras=[notes])
    return store, v


@pytest.mark.parametrize("craft", list(EXTERNAL_CRAFTS), ids=list(EXTERNAL_CRAFTS))
def test_crafted_external_data_is_refused(tmp_path, craft):
    store, v = upload_external(tmp_path)
    model = stored_model(store, "m", v.version)
    EXTERNAL_CRAFTS[craft](model)
    store_model_bytes(store, "m", v.version, model.SerializeToString())
    reader = open_store(tmp_path, cache="reader")
    for session in (False, True):
        with pytest.raises(CorruptArtifactError) as err:
            reader.load("m", session=session)
        assert err.value.file == "model.onnx"


def test_onnx_itself_reads_an_extra_as_weights_but_modelstore_refuses(tmp_path):
    """onnx's own loader only keeps data inside the model's directory: a downloaded version's
    extras are inside it."""
    store, v = upload_external(tmp_path)
    model = stored_model(store, "m", v.version)
    set_external("location", "extras/notes.txt")(model)
    store_model_bytes(store, "m", v.version, model.SerializeToString())
    out = store.download("m", to=tmp_path / "out")
    loaded = onnx.load(str(out / "model.onnx"))  # onnx reads the notes as the weight tensor
    assert loaded.graph.initializer[0].raw_data.startswith(b"not weights")
    with pytest.raises(CorruptArtifactError, match="extras/notes.txt"):
        open_store(tmp_path, cache="reader").load("m")


def _undefined_input(model: onnx.ModelProto) -> None:
    model.graph.node[0].input[0] = "nowhere"


def _unknown_op(model: onnx.ModelProto) -> None:
    model.graph.node[0].op_type = "NoSuchOp"


def _ir_version_from_the_future(model: onnx.ModelProto) -> None:
    model.ir_version = 10**6


def _duplicate_output(model: onnx.ModelProto) -> None:
    model.graph.node[1].output[0] = "XW"  # two nodes write one name


CHECKER_CRAFTS = {
    "an input nothing defines": _undefined_input,
    "an unknown operator": _unknown_op,
    "an ir_version from the future": _ir_version_from_the_future,
    "two nodes writing one output": _duplicate_output,
}


@pytest.mark.parametrize("craft", list(CHECKER_CRAFTS), ids=list(CHECKER_CRAFTS))
def test_model_the_checker_refuses_is_a_corrupt_artifact(tmp_path, craft):
    store = open_store(tmp_path)
    v = store.upload("m", model=linear_model())
    model = stored_model(store, "m", v.version)
    CHECKER_CRAFTS[craft](model)
    store_model_bytes(store, "m", v.version, model.SerializeToString())
    with pytest.raises(CorruptArtifactError, match="onnx.checker"):
        open_store(tmp_path, cache="reader").load("m")


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    n, varint = len(payload), b""
    while True:
        varint += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return bytes([number << 3 | 2]) + varint + payload


def nested_if(depth: int) -> bytes:
    """A model whose If nodes nest ``depth`` subgraphs deep, deeper than protobuf's parser goes
    (written as bytes: python's protobuf cannot build it either)."""
    out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Constant", [], ["Y"], value_floats=[1.0])], "leaf", [], [out]).SerializeToString()
    for _ in range(depth):
        attr = onnx.AttributeProto(name="then_branch", type=onnx.AttributeProto.GRAPH).SerializeToString() + _field(6, graph)
        node = helper.make_node("If", ["c"], ["Y"]).SerializeToString() + _field(5, attr)  # NodeProto.attribute
        graph = helper.make_graph([], "g", [], [out]).SerializeToString() + _field(1, node)  # GraphProto.node
    model = onnx.ModelProto(ir_version=8, opset_import=[helper.make_opsetid("", 17)])
    return model.SerializeToString() + _field(7, graph)  # ModelProto.graph


GARBAGE = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "random bytes": lambda data: bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    "json": lambda data: json.dumps({"graph": "no"}).encode(),
    "nested 200 subgraphs deep": lambda data: nested_if(200),
}


@pytest.mark.parametrize("damage", list(GARBAGE), ids=list(GARBAGE))
def test_garbage_is_a_corrupt_artifact(tmp_path, damage):
    store = open_store(tmp_path)
    v = store.upload("m", model=linear_model())
    data = GARBAGE[damage](stored_model(store, "m", v.version).SerializeToString())
    store_model_bytes(store, "m", v.version, data)
    with pytest.raises(CorruptArtifactError):
        open_store(tmp_path, cache="reader").load("m")


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "extras/notes.txt", "model.onnx.data", None])
def test_record_naming_another_file_is_refused(tmp_path, name):
    store, v = upload_external(tmp_path)
    edit_record(store, "m", v.version, lambda doc: doc["flavor"]["options"].update(file=name))
    with pytest.raises(CorruptRecordError, match="flavor.options.file"):
        open_store(tmp_path, cache="reader").load("m")


def test_hostile_versions_never_crash_the_loading_process(tmp_path):
    """Every hostile version above, loaded (as a ModelProto and as a session) in one child process:
    it must survive them all and get CorruptArtifactError each time."""
    store = open_store(tmp_path)
    domains = []
    for i, craft in enumerate(EXTERNAL_CRAFTS.values()):
        v = store.upload(f"x{i}", model=linear_model(64, 32), external_data=True)
        model = stored_model(store, f"x{i}", v.version)
        craft(model)
        store_model_bytes(store, f"x{i}", v.version, model.SerializeToString())
        domains.append(f"x{i}")
    for i, craft in enumerate(CHECKER_CRAFTS.values()):
        v = store.upload(f"c{i}", model=linear_model())
        model = stored_model(store, f"c{i}", v.version)
        craft(model)
        store_model_bytes(store, f"c{i}", v.version, model.SerializeToString())
        domains.append(f"c{i}")
    for i, damage in enumerate(GARBAGE.values()):
        v = store.upload(f"g{i}", model=linear_model())
        store_model_bytes(store, f"g{i}", v.version, damage(stored_model(store, f"g{i}", v.version).SerializeToString()))
        domains.append(f"g{i}")
    seen = run_python_json(
        """
        import json, sys
        from modelstore_core import CorruptArtifactError, ModelStore
        store = ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/child-cache")
        seen = {}
        for domain in json.loads(sys.argv[2]):
            for session in (False, True):
                try:
                    store.load(domain, session=session)
                    seen[f"{domain}/{session}"] = "loaded"
                except CorruptArtifactError:
                    seen[f"{domain}/{session}"] = "refused"
        print(json.dumps(seen))
        """,
        cwd=tmp_path,
        args=[tmp_path, json.dumps(domains)],
    )
    assert seen == {f"{d}/{s}": "refused" for d in domains for s in (False, True)}

"""A stored ONNX model is untrusted: it is parsed and checked (onnx.checker) before anything is
returned, external tensor data is read only from the version's own model files and only within
them, and a record cannot point the loader at another file.

Hostile files are a real model's protobuf, edited, stored with a record whose sha256 and size
agree (what anyone with write access to the bucket can do)."""

from __future__ import annotations

import hashlib
import json
import os
import re

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


# --- what onnxruntime computes from constants while it creates a session --------------------------


def with_constants(model: onnx.ModelProto, count: int, elements: int, *, shape_from: str = "initializer") -> None:
    """``count`` ConstantOfShape nodes of ``elements`` floats each added to a real model, each scaled
    by a new input into an extra output: onnxruntime computes them (constant folding) while it
    creates the session. The shape
    comes from an int64 initializer, from ``Shape`` of an input declared with a static shape
    (``"input"``), or from a product of initializers shape inference does not compute (``"product"``)."""
    g = model.graph
    if shape_from == "input":
        g.input.append(helper.make_tensor_value_info("Big", TensorProto.FLOAT, [elements]))
        g.node.append(helper.make_node("Shape", ["Big"], ["S"], name="shape_of_big"))
    elif shape_from == "product":
        g.initializer.append(onnx.numpy_helper.from_array(np.array([elements // 2], dtype=np.int64), "half"))
        g.initializer.append(onnx.numpy_helper.from_array(np.array([2], dtype=np.int64), "two"))
        g.node.append(helper.make_node("Mul", ["half", "two"], ["S"], name="shape_product"))
    else:
        g.initializer.append(onnx.numpy_helper.from_array(np.array([elements], dtype=np.int64), "S"))
    g.input.append(helper.make_tensor_value_info("Scale", TensorProto.FLOAT, [1]))
    for i in range(count):
        value = helper.make_tensor("value", TensorProto.FLOAT, [1], [float(i)])
        g.node.append(helper.make_node("ConstantOfShape", ["S"], [f"C{i}"], name=f"fill{i}", value=value))
        g.node.append(helper.make_node("Mul", [f"C{i}", "Scale"], [f"D{i}"]))  # a graph output itself is not folded
        g.output.append(helper.make_tensor_value_info(f"D{i}", TensorProto.FLOAT, [None]))


def store_crafted(tmp_path, craft) -> None:
    store = open_store(tmp_path)
    v = store.upload("m", model=linear_model())
    model = stored_model(store, "m", v.version)
    craft(model)
    store_model_bytes(store, "m", v.version, model.SerializeToString())


BOUNDED_LOAD = """
import json, resource, sys
from modelstore_core import CorruptArtifactError, ModelStore

def status(field):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(field + ":"))

store = ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/child-cache")
store.load("m", version=1)  # onnx imported; the crafted file fetched and verified
import onnxruntime
# 1 GiB of address space beyond what the process holds now (the four constants take 512 MiB):
# a safety net; the test reads how much memory the load took
limit = status("VmSize") + 2**30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
before = status("VmHWM")
try:
    store.load("m", session=True)
    result = "loaded"
except Exception as exc:
    result = ("refused: " if isinstance(exc, CorruptArtifactError) else type(exc).__name__ + ": ") + str(exc)
print(json.dumps({"result": result, "growth": status("VmHWM") - before}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="address space from /proc")
def test_constants_onnxruntime_would_fold_into_memory_are_refused(tmp_path):
    """Four ConstantOfShape nodes of 2**25 floats (a few hundred bytes of protobuf): onnxruntime
    allocated 512 MiB creating the session (4.3 GB with 2**28). Refused before it sees the model,
    in a child process whose address space is capped 1 GiB above what it holds."""
    store_crafted(tmp_path, lambda m: with_constants(m, 4, 2**25))
    out = run_python_json(BOUNDED_LOAD, cwd=tmp_path, args=[tmp_path])
    assert out["result"].startswith("refused") and "'fill0' (ConstantOfShape)" in out["result"], out
    assert "134217728 bytes" in out["result"] and "max_constant_bytes" in out["result"], out
    assert out["growth"] < 64 * 2**20, out
    assert isinstance(open_store(tmp_path, cache="reader").load("m"), onnx.ModelProto)  # the protobuf itself loads


@pytest.mark.parametrize(
    "shape_from, message",
    [("input", "'fill0' (ConstantOfShape) output 'C0' is computed"), ("product", "'fill0' (ConstantOfShape) output 'C0' is computed")],
)
def test_other_constant_shapes_are_sized_or_refused(tmp_path, shape_from, message):
    """onnxruntime folds Shape of an input declared with a static shape too (a 256 MiB constant from
    a 300-byte model); neither that nor a product of initializers is a shape onnx's shape inference
    computes without its data propagation, so neither can be bounded: both are refused."""
    store_crafted(tmp_path, lambda m: with_constants(m, 1, 2**26, shape_from=shape_from))
    with pytest.raises(CorruptArtifactError, match=re.escape(message)):
        open_store(tmp_path, cache="reader").load("m", session=True)


def test_a_dense_size_sparse_initializer_is_refused(tmp_path):
    def sparse(model: onnx.ModelProto) -> None:
        values = onnx.numpy_helper.from_array(np.array([1.0], dtype=np.float32), "Sp")
        indices = onnx.numpy_helper.from_array(np.array([0], dtype=np.int64), "Sp_indices")
        model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [2**30]))
        model.graph.output.append(helper.make_sparse_tensor_value_info("Sp", TensorProto.FLOAT, [None]))

    store_crafted(tmp_path, sparse)
    with pytest.raises(CorruptArtifactError, match="sparse initializer 'Sp' takes 4294967296 bytes"):
        open_store(tmp_path, cache="reader").load("m", session=True)


def test_the_caller_can_raise_the_limit(tmp_path):
    """A 96 MiB constant from a model of a few KB: over the default, loaded once the caller allows it."""
    store_crafted(tmp_path, lambda m: with_constants(m, 1, 24 * 2**20))
    reader = open_store(tmp_path, cache="reader")
    with pytest.raises(CorruptArtifactError, match="'fill0'"):
        reader.load("m", session=True)
    session = reader.load("m", session=True, max_constant_bytes=128 * 2**20)
    (filled,) = session.run(["D0"], {"X": np.zeros((1, 4), dtype=np.float32), "Scale": np.ones(1, dtype=np.float32)})
    assert filled.shape == (24 * 2**20,) and not filled.any()
    assert reader.load("m", session=True, max_constant_bytes=None) is not None


def with_doubling_functions(model: onnx.ModelProto, depth: int = 30) -> None:
    """Local functions each calling the one below twice, ``depth`` deep, called once: 2 KB of
    protobuf that inline to 2**29 nodes (onnxruntime did not finish creating a session of 2**21
    in 120 s)."""
    local = helper.make_opsetid("local", 1)
    model.opset_import.append(local)
    opsets = [helper.make_opsetid("", 17), local]
    model.functions.append(helper.make_function("local", "F0", ["x"], ["y"], [helper.make_node("Identity", ["x"], ["y"])], opsets))
    for i in range(1, depth):
        calls = [helper.make_node(f"F{i - 1}", ["x"], ["t"], domain="local"), helper.make_node(f"F{i - 1}", ["t"], ["y"], domain="local")]
        model.functions.append(helper.make_function("local", f"F{i}", ["x"], ["y"], calls, opsets))
    model.graph.node.append(helper.make_node(f"F{depth - 1}", ["Y"], ["Z"], domain="local", name="doubling"))
    model.graph.output.append(helper.make_tensor_value_info("Z", TensorProto.FLOAT, [None, 2]))


def test_local_functions_that_inline_to_billions_of_nodes_are_refused(tmp_path):
    store_crafted(tmp_path, with_doubling_functions)
    out = run_python_json(BOUNDED_LOAD, cwd=tmp_path, args=[tmp_path])  # a child: were it let through, onnxruntime would not finish
    assert out["result"].startswith("refused") and "expand to 536870914 nodes once inlined" in out["result"], out

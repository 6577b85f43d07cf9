"""Writing and reading ONNX models: ``model.onnx``, and ``model.onnx.data`` for external tensors.

Imported only when an ONNX model (or an ``onnx`` flavor version) is handled.

On load, in this order: ``model.onnx`` is read once through the core's ``verified.open`` (hashed in
the same pass: ``IntegrityError`` before anything is parsed) and the protobuf is parsed (``DecodeError`` becomes ``CorruptArtifactError``);
every tensor stored outside the protobuf (``data_location: EXTERNAL``, in the graph, its subgraphs
and the model's functions) must name one of the version's model files, by its stored name
(verified before its size is trusted), with an ``offset``/``length`` inside that file and a ``length`` equal to what its type and
shape need; ``onnx.checker`` checks the model; only then is external data read, and only from
those files. onnx's own loader already refuses ``..`` and absolute paths, but would read any other
file in the directory (an extra, say), and trusts ``length``.

With ``session=True``, before onnxruntime sees the model, what it computes from the model's
constants while it creates the session (constant folding) is sized: see :func:`check_constant_sizes`.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import (
    CorruptArtifactError,
    CorruptRecordError,
    Flavor,
    ModelStoreError,
    UsageError,
    VersionFiles,
    model_file,
    qualified_name,
)

from . import FLAVOR, PLUGIN

FILE = "model.onnx"
DATA_FILE = "model.onnx.data"
#: protobuf cannot serialize a message of 2 GiB or more: larger models keep their tensors outside.
PROTOBUF_LIMIT = (1 << 31) - 1
#: Tensors at least this large go to the data file when external data is used (onnx's default).
EXTERNAL_THRESHOLD = 1024
_DIGITS = re.compile(r"[0-9]{1,19}")


def serialize(model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
    import onnx

    if not isinstance(model, onnx.ModelProto):
        raise UsageError(
            f"modelstore-onnx stores onnx.ModelProto models; {qualified_name(model)} is not one: "
            "wrap a graph with onnx.helper.make_model(graph), or store files with upload(domain, files=[...])"
        )
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in all_tensors(model)):
        raise UsageError(
            "this ModelProto refers to tensor data in files it has not loaded (onnx.load(path, load_external_data=False)); "
            "load it with onnx.load(path) so that its weights are stored with it"
        )
    external = options.get("external_data")
    if external is None:
        external = model.ByteSize() > PROTOBUF_LIMIT
    domains = [op.domain for op in model.opset_import]
    if external or domains != sorted(domains):
        # A copy: save_model moves the tensors of the model it is given out to the data file, and
        # the opsets are sorted (converters list them in set order, which changes with the hash
        # seed: skl2onnx). Their order has no meaning; sorted, the same model gives the same bytes.
        model = _copy(model)
        model.opset_import.sort(key=lambda op: op.domain)
    if external:
        onnx.save_model(
            model,
            str(directory / FILE),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=DATA_FILE,
            size_threshold=EXTERNAL_THRESHOLD,
            convert_attribute=True,
        )
    else:
        (directory / FILE).write_bytes(model.SerializeToString(deterministic=True))
    files = [FILE] + ([DATA_FILE] if (directory / DATA_FILE).exists() else [])
    return Flavor(
        name=FLAVOR,
        format="onnx",
        plugin=PLUGIN,
        model_class=qualified_name(model),
        safe=True,
        dependencies=["onnx"],
        options={"file": FILE, "data_files": files[1:]},
    )


def _copy(model: Any) -> Any:
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def deserialize(flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
    """The model of an ``onnx`` version: ``model.onnx`` read once through ``verified`` (hashed in the
    same pass) and parsed; its external tensors checked, then read from verified data files."""
    import onnx
    from google.protobuf.message import DecodeError

    file = flavor.options.get("file")
    model_file(verified.directory, files, file, option="file")  # only the check: the bytes come through ``verified``
    if file != FILE:  # the data file is a model file too, but never the model
        raise CorruptRecordError("the version record", "flavor.options.file", f"is {file!r}, but an onnx version stores {FILE!r}")
    with verified.open(file) as reader:
        data = reader.read(reader.size)  # reaching the end raises IntegrityError unless these are the recorded bytes
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise CorruptArtifactError(file, f"it is not an ONNX protobuf ({str(exc)[:200]})") from None
    stored = len(data)
    del data
    external = check_external_data(model, verified, files, file)
    try:
        check(model, external)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise CorruptArtifactError(file, f"onnx.checker refused it: {str(exc).strip().splitlines()[0][:300]}") from None
    if options.get("session"):  # sized while the external tensors are still outside: a small protobuf
        stored += sum(verified.path(location).stat().st_size for location in {location for _, location, _, _ in external})
        limit = options.get("max_constant_bytes", CONSTANT_FACTOR * stored + CONSTANT_SLACK)
        check_constant_sizes(model, limit, stored)
    for tensor, location, offset, length in external:
        with open(verified.path(location), "rb") as f:  # verified (once) by check_external_data
            f.seek(offset)
            tensor.raw_data = f.read(length)
        tensor.ClearField("data_location")  # DEFAULT, as the model was before it was saved
        del tensor.external_data[:]
    if options.get("session"):
        return inference_session(model, verified, options.get("providers"))
    return model


#: What onnxruntime may compute from a model's constants while it creates a session, by default:
#: twice the stored files (a folded Transpose or Cast of every weight) and 64 MiB (a mask or a
#: position table built from a few numbers). ``load(..., session=True, max_constant_bytes=n)`` sets
#: another limit, ``max_constant_bytes=None`` none.
CONSTANT_FACTOR, CONSTANT_SLACK = 2, 64 * 2**20
#: Nodes onnxruntime never folds: their subgraphs are sized on their own, their outputs are not constants.
NOT_FOLDED = {"If", "Loop", "Scan", "SequenceMap", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Multinomial", "Bernoulli"}  # fmt: skip
#: Nodes onnxruntime folds when their input's shape is static, whatever its values.
SHAPE_OF = {"Shape", "Size"}


def check_constant_sizes(model: Any, limit: int | None, stored: int) -> None:
    """Refuse a model whose constants make onnxruntime compute more than ``limit`` bytes while it
    creates a session.

    onnxruntime folds every node whose inputs are constants (initializers, ``Constant`` nodes,
    folded outputs, the shape of an input declared with a static shape) into a new tensor before
    the session exists: a 0.5 KB graph of ``ConstantOfShape`` nodes over ``[2**28]`` allocates
    4.5 GB, and neither its arena settings nor ``enable_mem_pattern`` bound that. Here onnx's shape
    inference (without its data propagation, which itself materialises such values) gives each
    folded output's shape; their bytes, and the dense size of sparse initializers, must stay
    under ``limit``. A folded output whose shape inference cannot tell (a shape computed from
    other constants) cannot be bounded, and is refused too. Local functions are inlined first
    (onnxruntime folds inside them). ``None`` skips the check.

    :raises CorruptArtifactError: naming the node, its output's size and the limit.
    """
    if limit is None:
        return
    import onnx
    import onnx.inliner

    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ModelStoreError(f"max_constant_bytes must be a byte count or None, not {limit!r}")
    hint = (
        f"the limit is {limit} bytes (by default 2 x the {stored} bytes stored + 64 MiB); for a model from a source you trust,"
        " load(..., session=True, max_constant_bytes=N) sets another (None: no limit)"
    )
    nodes = _inlined_nodes(model)
    if nodes > MAX_INLINED_NODES:  # functions calling functions twice, 30 deep: 2**30 nodes once inlined
        raise CorruptArtifactError(
            FILE, f"its local functions expand to {nodes} nodes once inlined (as onnxruntime inlines them), over {MAX_INLINED_NODES}"
        )
    try:
        inferred = onnx.shape_inference.infer_shapes(onnx.inliner.inline_local_functions(model))
    except (onnx.shape_inference.InferenceError, ValueError, RuntimeError, MemoryError) as exc:
        raise CorruptArtifactError(FILE, f"onnx's shape inference failed on it ({str(exc).strip()[:200]}); {hint}") from None
    total = 0

    def add(size: int | None, what: str) -> None:
        nonlocal total
        if size is None:
            raise CorruptArtifactError(
                FILE, f"{what} is computed while onnxruntime creates the session, and its size cannot be known before; {hint}"
            )
        total += size
        if total > limit:
            raise CorruptArtifactError(
                FILE, f"{what} takes {size} bytes, which brings what onnxruntime computes from the model's constants to {total}: {hint}"
            )

    def graph(g: Any, constants: set[str], types: dict[str, Any]) -> None:
        types = {**types, **{v.name: v.type for v in (*g.input, *g.value_info, *g.output)}}
        inputs = {i.name for i in g.input}  # an initializer that is also an input can be fed: not a constant
        constants = constants | {t.name for t in g.initializer if t.name not in inputs}
        for sparse in g.sparse_initializer:  # made dense when the session is created
            add(_dense_size(sparse.values.data_type, sparse.dims), f"sparse initializer {sparse.values.name[:60]!r}")
            constants.add(sparse.values.name)
        for index, node in enumerate(g.node):
            for attr in node.attribute:
                for sub in [attr.g] if attr.HasField("g") else attr.graphs:
                    graph(sub, constants, types)
            if node.op_type in NOT_FOLDED:
                continue
            static_shape = node.op_type in SHAPE_OF and node.input and _shape(types.get(node.input[0])) is not None
            if not static_shape and not all(name == "" or name in constants for name in node.input):
                continue
            label = f"node {node.name[:60]!r} ({node.op_type})" if node.name else f"node #{index} ({node.op_type})"
            for out in node.output:
                if out:
                    type_ = types.get(out)
                    shape = _shape(type_)
                    add(None if shape is None else _dense_size(type_.tensor_type.elem_type, shape), f"{label} output {out[:60]!r}")
                    constants.add(out)

    graph(inferred.graph, set(), {})


#: Nodes a graph may have once its local functions are inlined (the largest exported models have
#: about a hundred thousand).
MAX_INLINED_NODES = 10_000_000


def _inlined_nodes(model: Any) -> int:
    """How many nodes the model's graph has once every call of a local function is replaced by the
    function's nodes (recursively; subgraphs included), counted without inlining anything."""
    functions = {(f.domain, f.name): f for f in model.functions}
    sizes: dict[tuple[str, str], int] = {}

    def count(node_list) -> int:
        total = 0
        for node in node_list:
            callee = (node.domain, node.op_type)
            if callee in functions:
                if callee not in sizes:
                    sizes[callee] = 0  # a cycle counts once; onnx.checker refuses cycles anyway
                    sizes[callee] = count(functions[callee].node)
                total += sizes[callee]
            else:
                total += 1
            for attr in node.attribute:
                for sub in [attr.g] if attr.HasField("g") else attr.graphs:
                    total += count(sub.node)
        return total

    return count(model.graph.node)


def _shape(type_: Any) -> list[int] | None:
    """The static shape of a tensor type, ``None`` unless every dimension is a known number."""
    if type_ is None or not type_.HasField("tensor_type") or not type_.tensor_type.HasField("shape"):
        return None
    dims = type_.tensor_type.shape.dim
    return [d.dim_value for d in dims] if all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims) else None


def _dense_size(data_type: int, dims: Any) -> int | None:
    """Bytes of a dense tensor of ``data_type`` and ``dims`` (strings as onnxruntime's 32-byte std::string)."""
    if any(d < 0 for d in dims):
        return None
    return math.prod(dims) * (32 if data_type == 8 else ITEMSIZE.get(data_type, 1))


def check(model: Any, external: list) -> None:
    """``onnx.checker`` on the model, its external tensors not yet read.

    The checker wants an external tensor's file beside the model, a regular file with one link;
    the version's files are hard links in the cache (and were checked by
    :func:`check_external_data`). So a model with external tensors is checked as a copy, in a
    private directory, whose external tensors all point at one empty stand-in file.
    """
    import onnx

    if not external:
        onnx.checker.check_model(model)
        return
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)  # small: external data is not loaded yet
    for tensor in all_tensors(skeleton):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            del tensor.external_data[:]
            tensor.external_data.add(key="location", value="stand-in")
    with tempfile.TemporaryDirectory(prefix="modelstore-onnx-") as tmp:
        (Path(tmp) / "stand-in").write_bytes(b"")
        (Path(tmp) / FILE).write_bytes(skeleton.SerializeToString())
        onnx.checker.check_model(str(Path(tmp) / FILE))


def all_tensors(model: Any) -> list[Any]:
    """Every TensorProto of the model: initializers (sparse ones too) and tensor attributes, in
    the graph, every subgraph, and the model's functions."""
    tensors: list[Any] = []

    def nodes(node_list) -> None:
        for node in node_list:
            for attr in node.attribute:
                if attr.HasField("t"):
                    tensors.append(attr.t)
                tensors.extend(attr.tensors)
                if attr.HasField("sparse_tensor"):
                    tensors.extend((attr.sparse_tensor.values, attr.sparse_tensor.indices))
                for sparse in attr.sparse_tensors:
                    tensors.extend((sparse.values, sparse.indices))
                if attr.HasField("g"):
                    graph(attr.g)
                for g in attr.graphs:
                    graph(g)

    def graph(g) -> None:
        tensors.extend(g.initializer)
        for sparse in g.sparse_initializer:
            tensors.extend((sparse.values, sparse.indices))
        nodes(g.node)

    graph(model.graph)
    for function in model.functions:
        nodes(function.node)
    return tensors


def check_external_data(model: Any, verified: VersionFiles, files: list[str], file: str) -> list[tuple[Any, str, int, int]]:
    """Every external tensor reads a byte range of one of ``files`` that fits its type and shape
    (each file named is verified, through ``verified.path``, before its size is trusted).
    Returns ``(tensor, file, offset, length)`` for each."""
    import onnx

    found = []
    for tensor in all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        where = f"tensor {tensor.name[:60]!r}"
        entries: dict[str, str] = {}
        for entry in tensor.external_data:
            if entry.key in entries:
                raise CorruptArtifactError(file, f"{where} repeats its external data key {entry.key[:20]!r}")
            entries[entry.key] = entry.value
        location = entries.get("location")
        if location not in files:
            raise CorruptArtifactError(
                file, f"{where} reads its data from {str(location)[:80]!r}, which is not one of the version's model files {files}"
            )
        size = verified.path(location).stat().st_size  # IntegrityError unless it holds the recorded bytes
        for key in ("offset", "length"):
            if key in entries and not _DIGITS.fullmatch(entries[key]):
                raise CorruptArtifactError(file, f"{where} has external data {key} {entries[key][:30]!r}, not a byte count")
        offset = int(entries.get("offset", "0"))
        length = int(entries.get("length", str(max(size - offset, 0))))
        if offset + length > size:
            raise CorruptArtifactError(file, f"{where} reads bytes {offset} to {offset + length} of {location}, which has {size}")
        expected = _byte_size(tensor)
        if expected is not None and length != expected:
            raise CorruptArtifactError(file, f"{where} has {length} bytes of external data, but its type and shape need {expected}")
        found.append((tensor, location, offset, length))
    return found


#: Bytes per element of the fixed-size tensor types (TensorProto.DataType values); the packed
#: sub-byte types and strings are left out (only their byte range is checked).
ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1}


def _byte_size(tensor: Any) -> int | None:
    """Bytes of a fixed-size tensor's data (``None`` where the type is not one of :data:`ITEMSIZE`)."""
    if any(d < 0 for d in tensor.dims):
        return -1  # matches no length: a negative dimension is never valid
    itemsize = ITEMSIZE.get(tensor.data_type)
    return None if itemsize is None else math.prod(tensor.dims) * itemsize


def inference_session(model: Any, verified: VersionFiles, providers: Any) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelStoreError(
            f"load(..., session=True) needs onnxruntime, which is not installed: `pip install {PLUGIN}[onnxruntime]`"
        ) from exc
    providers = providers or ["CPUExecutionProvider"]
    try:
        if model.ByteSize() > PROTOBUF_LIMIT:
            # Too big to hand over in memory: onnxruntime reads the checked files itself, beside the model.
            return onnxruntime.InferenceSession(str(verified.path(FILE)), providers=providers)
        return onnxruntime.InferenceSession(model.SerializeToString(), providers=providers)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors (Fail, InvalidGraph, NotImplemented...)
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelStoreError(
            f"onnxruntime {onnxruntime.__version__} cannot run this model ({reason}); "
            "load it without session=True to get the ModelProto, or upgrade onnxruntime"
        ) from exc

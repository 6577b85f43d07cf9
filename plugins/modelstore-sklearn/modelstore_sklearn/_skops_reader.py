"""Reading a skops archive without skops, for the objects most models are made of.

``import skops.io`` costs 0.2 to 2 s in a fresh process (it lists every scikit-learn estimator,
numpy and scipy function it trusts, and imports ``sklearn.cluster`` and more). This module reads
the archives that :mod:`._skops_writer` writes, and any other skops file (protocol 2) made only
of the same pieces, building the same objects skops would:

* builtins: ``dict`` (``str`` or integer keys), ``list``, ``tuple``, ``slice``, JSON values;
* numpy: arrays (``.npy`` members, never with pickled objects; object arrays as lists of
  values), number and bool scalars, dtypes, the builtin and numpy scalar types,
  ``RandomState``;
* the public scikit-learn estimators (:func:`._skops.is_sklearn_estimator`, skops's own rule),
  the plain objects of :data:`OBJECT_TYPES` and the losses of :data:`LOSS_TYPES`;
* ``sklearn.tree._tree.Tree``, whose state :func:`._checks.check_tree` checks before it is built.

Like skops, it first walks the whole schema (each node's loader, type and shape; an ``__id__``
seen before stands for the node first seen with it, as in skops), then builds. Every type it
builds is trusted by default on the skops path too (skops's defaults and
:data:`._persist.DEFAULT_TRUSTED_TYPES`), so the options ``trusted_types``/``trust`` change
nothing here. Anything else, or anything malformed, returns :data:`NOT_HANDLED`, and the caller
reads the file with skops, whose audit, checks and errors then apply unchanged.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from typing import Any

from modelstore_core.plugin_api import CorruptArtifactError

from ._checks import TREE, check_tree
from ._skops import is_sklearn_estimator

#: The skops format version read and written here (skops 0.10 and later write it).
PROTOCOL = 2
#: What :func:`read` returns for a file it leaves to skops.
NOT_HANDLED: Any = object()

#: Classes rebuilt from their attributes (skops's ``ObjectNode``) besides the public estimators:
#: plain Python state. MLP's optimizers, Gaussian-process kernels, calibration internals, and the
#: loss and link objects of generalized linear models (which skops itself trusts since 0.12).
OBJECT_TYPES: tuple[str, ...] = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    *(
        f"sklearn.gaussian_process.kernels.{name}"
        for name in (
            "ConstantKernel",
            "DotProduct",
            "ExpSineSquared",
            "Exponentiation",
            "Matern",
            "PairwiseKernel",
            "Product",
            "RBF",
            "RationalQuadratic",
            "Sum",
            "WhiteKernel",
        )
    ),
    *(f"sklearn._loss.link.{name}" for name in ("HalfLogitLink", "IdentityLink", "Interval", "LogitLink", "LogLink", "MultinomialLogit")),
    *(
        f"sklearn._loss.loss.{name}"
        for name in (
            "AbsoluteError",
            "ExponentialLoss",
            "HalfBinomialLoss",
            "HalfGammaLoss",
            "HalfMultinomialLoss",
            "HalfPoissonLoss",
            "HalfSquaredError",
            "HuberLoss",
            "PinballLoss",
        )
    ),
)
#: Loss functions (compiled, holding a few numbers) rebuilt by calling them with their stored
#: arguments (skops's ``LossNode``): those skops trusts, for SGD and the generalized linear models.
LOSS_TYPES: tuple[str, ...] = (
    *(
        f"sklearn.linear_model._sgd_fast.{name}"
        for name in ("EpsilonInsensitive", "Hinge", "ModifiedHuber", "SquaredEpsilonInsensitive", "SquaredHinge")
    ),
    *(
        f"sklearn._loss._loss.{name}"
        for name in (
            "CyAbsoluteError",
            "CyExponentialLoss",
            "CyHalfBinomialLoss",
            "CyHalfGammaLoss",
            "CyHalfMultinomialLoss",
            "CyHalfPoissonLoss",
            "CyHalfSquaredError",
            "CyHalfTweedieLoss",
            "CyHalfTweedieLossIdentity",
            "CyHuberLoss",
            "CyPinballLoss",
        )
    ),
)

#: ``TypeNode`` types built here (skops also trusts ``set`` and ``map``): name -> type.
BUILTIN_TYPES: dict[str, type] = {f"builtins.{t.__name__}": t for t in (str, int, float, bool, list, tuple)}
JSON_TYPES = (str, int, float, bool, type(None))
RANDOM_STATE = "numpy.random.mtrand.RandomState"


class Unhandled(Exception):
    """Something this module does not build: skops reads the file."""


def numpy_scalar_types() -> dict[str, type]:
    """numpy's number and bool scalar types by ``numpy.<name>`` (``numpy.float64``...): the
    ``NdArrayNode`` classes and ``TypeNode`` types built here."""
    global _NUMPY_SCALARS
    if _NUMPY_SCALARS is None:
        import numpy as np

        _NUMPY_SCALARS = {
            f"numpy.{t.__name__}": t
            for t in set(np.sctypeDict.values())
            if t.__module__ == "numpy" and issubclass(t, (np.number, np.bool_)) and getattr(np, t.__name__, None) is t
        }
    return _NUMPY_SCALARS


_NUMPY_SCALARS: dict[str, type] | None = None


def read(data: bytes, file: str) -> Any:
    """The model in skops archive ``data`` (the verified bytes of ``file``), or :data:`NOT_HANDLED`.
    Raises :class:`CorruptArtifactError` when a tree fails its checks."""
    try:
        reader = _Reader(data, file)
        root = reader.audit(reader.schema)
        return reader.build(root)
    except CorruptArtifactError:
        raise
    except Exception:  # noqa: BLE001 - anything unexpected: skops reads the file, with its own audit and errors
        return NOT_HANDLED


class _Reader:
    def __init__(self, data: bytes, file: str):
        self.file = file
        self.buffer = memoryview(data)
        self.archive = zipfile.ZipFile(io.BytesIO(data))  # BytesIO shares ``bytes``: no copy
        schema = json.loads(bytes(self.member("schema.json")))
        protocol = schema.get("protocol") if isinstance(schema, dict) else None
        if type(protocol) is not int or protocol != PROTOCOL:
            raise Unhandled("another protocol")
        self.schema = schema
        self.first: dict[int, dict] = {}  # __id__ -> the state first seen with it (skops's memo)
        self.auditing: set[int] = set()  # ids of the states being audited: a reference back is a cycle
        self.built: dict[int, Any] = {}  # id(state) -> object

    # --- zip members, read in place (the core has verified the archive's sha256) ----------------

    def member(self, name: str) -> memoryview:
        info = self.archive.getinfo(name)
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise Unhandled("compressed or encrypted member")
        start = info.header_offset
        header = self.buffer[start : start + 30]
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise Unhandled("bad local header")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        if bytes(self.buffer[start + 30 : start + 30 + name_length]) != info.orig_filename.encode(encoding):
            raise Unhandled("local header names another member")
        begin = start + 30 + name_length + extra_length
        if begin + info.compress_size > len(self.buffer) or info.compress_size != info.file_size:
            raise Unhandled("member past the end")
        return self.buffer[begin : begin + info.file_size]

    # --- first pass: what skops's node tree holds, and whether this module builds all of it ---

    def audit(self, state: Any) -> dict:
        """The state ``state`` stands for (the first one with its ``__id__``), its children audited."""
        if type(state) is not dict:
            raise Unhandled("a node is not an object")
        node_id = state.get("__id__")
        if node_id is not None:
            if type(node_id) is not int:
                raise Unhandled("an __id__ is not an integer")
            if node_id in self.first:
                if node_id in self.auditing:
                    raise Unhandled("a node contains itself")
                return self.first[node_id]
            if node_id:  # skops memoizes a node under a non-zero id before reading its children
                self.first[node_id] = state
                self.auditing.add(node_id)
        loader = state.get("__loader__")
        audit = _AUDITS.get(loader) if type(loader) is str else None
        if audit is None:
            raise Unhandled(f"loader {loader!r}")
        name = f"{state['__module__']}.{state['__class__']}"
        audit(self, state, name)
        if node_id:
            self.auditing.discard(node_id)
        return state

    def _json(self, state: dict, name: str) -> None:
        if type(state["content"]) is not str:
            raise Unhandled("JSON content is not a string")

    def _dict(self, state: dict, name: str) -> None:
        _require(name == "builtins.dict")
        key_types = self.audit(state["key_types"])
        _require(key_types["__loader__"] == "ListNode")
        for item in key_types["content"]:
            _require(self.audit(item)["__loader__"] == "TypeNode")
        content = state["content"]
        _require(type(content) is dict)
        for value in content.values():
            self.audit(value)

    def _sequence(self, state: dict, name: str) -> None:
        _require(name == ("builtins.list" if state["__loader__"] == "ListNode" else "builtins.tuple"))
        content = state["content"]
        _require(type(content) is list)
        for item in content:
            self.audit(item)

    def _array(self, state: dict, name: str) -> None:
        kind = state["type"]
        if kind == "numpy":
            _require(name == "numpy.ndarray" or name in numpy_scalar_types())
            _require(type(state["file"]) is str)
        elif kind == "json":
            _require(name == "numpy.ndarray")
            _require(type(state["content"]) is list)
            for item in state["content"]:
                self.audit(item)
            self.audit(state["shape"])
        else:
            raise Unhandled(f"array type {kind!r}")

    def _dtype(self, state: dict, name: str) -> None:
        _require(name == "numpy.dtype")
        _require(self.audit(state["content"])["__loader__"] == "NdArrayNode")

    def _type(self, state: dict, name: str) -> None:
        _require(name in BUILTIN_TYPES or name in numpy_scalar_types())

    def _object(self, state: dict, name: str) -> None:
        _require(name in OBJECT_TYPES or is_sklearn_estimator(name))
        if state.get("content") is not None:
            self.audit(state["content"])

    def _loss(self, state: dict, name: str) -> None:
        _require(name in LOSS_TYPES)
        self.audit(state["content"])  # skops's order: the state, then the constructor arguments
        self.audit(state["__reduce__"]["args"])

    def _tree(self, state: dict, name: str) -> None:
        _require(name == TREE)
        self.audit(state["content"])  # skops's order: the state, then the constructor arguments
        self.audit(state["__reduce__"]["args"])

    def _slice(self, state: dict, name: str) -> None:
        _require(name == "builtins.slice")
        content = state["content"]
        _require(all(type(content[k]) in (int, type(None)) for k in ("start", "stop", "step")))

    def _random_state(self, state: dict, name: str) -> None:
        _require(name == RANDOM_STATE)
        self.audit(state["content"])

    # --- second pass: the objects, each built once ------------------------------------------------

    def build(self, state: Any) -> Any:
        state = self.first.get(state.get("__id__"), state) if state.get("__id__") else state
        key = id(state)
        if key not in self.built:
            self.built[key] = _BUILDS[state["__loader__"]](self, state)
        return self.built[key]

    def _build_json(self, state: dict) -> Any:
        return json.loads(state["content"])

    def _build_dict(self, state: dict) -> dict:
        key_types = self.build(state["key_types"])
        _require(all(is_key_type(t) for t in key_types))
        # zip: like skops, entries beyond the key types are dropped
        return {k_type(key): self.build(value) for k_type, (key, value) in zip(key_types, state["content"].items(), strict=False)}

    def _build_list(self, state: dict) -> list:
        return [self.build(item) for item in state["content"]]

    def _build_tuple(self, state: dict) -> tuple:
        return tuple(self.build(item) for item in state["content"])

    def _build_array(self, state: dict) -> Any:
        import numpy as np

        if state["type"] == "numpy":
            array = read_npy(self.member(state["file"]))
            cls = state["__class__"]
            return array if cls == "ndarray" else numpy_scalar_types()[f"numpy.{cls}"](array)
        shape = self.build(state["shape"])
        items = [self.build(item) for item in state["content"]]
        if len(shape) == 1:  # as skops does
            array = np.ndarray(shape=len(items), dtype="O")
            for i, value in enumerate(items):
                array[i] = value
            return array
        return np.array(items, dtype="O")

    def _build_dtype(self, state: dict) -> Any:
        return self.build(state["content"]).dtype

    def _build_type(self, state: dict) -> type:
        name = f"{state['__module__']}.{state['__class__']}"
        return BUILTIN_TYPES.get(name) or numpy_scalar_types()[name]

    def _build_object(self, state: dict) -> Any:
        import importlib

        cls = getattr(importlib.import_module(state["__module__"]), state["__class__"])
        instance = cls.__new__(cls)
        if state.get("content") is not None:
            attrs = self.build(state["content"])
            if attrs is not None:
                if hasattr(instance, "__setstate__"):
                    instance.__setstate__(attrs)
                else:
                    instance.__dict__.update(attrs)
        return instance

    def _build_tree(self, state: dict) -> Any:
        from sklearn.tree._tree import Tree

        attrs = self.build(state["content"])
        args = self.build(state["__reduce__"]["args"])
        check_tree(self.file, args, attrs)  # before Tree(...) and __setstate__ copy anything
        tree = Tree(*args)
        tree.__setstate__(attrs)
        return tree

    def _build_loss(self, state: dict) -> Any:
        import importlib

        cls = getattr(importlib.import_module(state["__module__"]), state["__class__"])
        loss = cls(*self.build(state["__reduce__"]["args"]))
        attrs = self.build(state["content"])
        if attrs:
            _require(hasattr(loss, "__setstate__"))
            loss.__setstate__(attrs)
        return loss

    def _build_slice(self, state: dict) -> slice:
        content = state["content"]
        return slice(content["start"], content["stop"], content["step"])

    def _build_random_state(self, state: dict) -> Any:
        import numpy as np

        random_state = np.random.RandomState()
        random_state.set_state(self.build(state["content"]))
        return random_state


_AUDITS = {
    "JsonNode": _Reader._json,
    "DictNode": _Reader._dict,
    "ListNode": _Reader._sequence,
    "TupleNode": _Reader._sequence,
    "NdArrayNode": _Reader._array,
    "DTypeNode": _Reader._dtype,
    "TypeNode": _Reader._type,
    "ObjectNode": _Reader._object,
    "TreeNode": _Reader._tree,
    "LossNode": _Reader._loss,
    "SliceNode": _Reader._slice,
    "RandomStateNode": _Reader._random_state,
}
_BUILDS = {
    "JsonNode": _Reader._build_json,
    "DictNode": _Reader._build_dict,
    "ListNode": _Reader._build_list,
    "TupleNode": _Reader._build_tuple,
    "NdArrayNode": _Reader._build_array,
    "DTypeNode": _Reader._build_dtype,
    "TypeNode": _Reader._build_type,
    "ObjectNode": _Reader._build_object,
    "TreeNode": _Reader._build_tree,
    "LossNode": _Reader._build_loss,
    "SliceNode": _Reader._build_slice,
    "RandomStateNode": _Reader._build_random_state,
}


def is_key_type(t: Any) -> bool:
    """Whether a dict's keys are rebuilt with ``t``: ``str``, ``int`` and numpy's integer types
    (skops writes a numpy key as its Python value, and its type)."""
    import numpy as np

    return t is str or t is int or (isinstance(t, type) and issubclass(t, np.integer) and f"numpy.{t.__name__}" in numpy_scalar_types())


def _require(ok: Any) -> None:
    if not ok:
        raise Unhandled("outside what this module builds")


# --- .npy members ------------------------------------------------------------------------------

#: The header numpy writes: ``{'descr': ..., 'fortran_order': ..., 'shape': (...), }`` then spaces.
_NPY_HEADER = re.compile(r"\{'descr': (.+), 'fortran_order': (True|False), 'shape': \(((?:\d+, )*\d*,?)\), \} *\n")
_NPY_VERSIONS = {1: ("<H", "latin1"), 2: ("<I", "latin1"), 3: ("<I", "utf8")}
_MAX_NPY_HEADER = 10_000  # numpy.load's own limit
_DTYPES: dict[str, Any] = {}  # descr as written -> dtype, parsed by numpy once per process


def read_npy(member: memoryview) -> Any:
    """An array from ``.npy`` bytes, as ``numpy.load(allow_pickle=False)`` returns it (a fresh,
    writable array), without ``ast.literal_eval`` of each header: the header must be in the
    form numpy writes, and each dtype description is parsed by numpy once. Anything else goes
    to ``numpy.load``. Object arrays are refused, as numpy refuses them without pickle."""
    import numpy as np

    if bytes(member[:6]) != b"\x93NUMPY" or member[6] not in _NPY_VERSIONS or member[7] != 0:
        return _numpy_load(member)
    length_format, encoding = _NPY_VERSIONS[member[6]]
    start = 8 + struct.calcsize(length_format)
    (header_length,) = struct.unpack(length_format, member[8:start])
    if header_length > _MAX_NPY_HEADER:
        return _numpy_load(member)
    match = _NPY_HEADER.fullmatch(bytes(member[start : start + header_length]).decode(encoding))
    if match is None:
        return _numpy_load(member)
    descr, fortran, shape_text = match.groups()
    dtype = _DTYPES.get(descr)
    if dtype is None:
        import ast

        dtype = np.lib.format.descr_to_dtype(ast.literal_eval(descr))
        _DTYPES[descr] = dtype
    if dtype.hasobject:
        raise Unhandled("object arrays are not read without pickle")
    shape = tuple(int(n) for n in shape_text.replace(",", " ").split())
    count = 1
    for n in shape:
        count *= n
    offset = start + header_length
    if len(member) - offset < count * dtype.itemsize:
        raise Unhandled("array data cut short")
    array = np.frombuffer(member, dtype=dtype, count=count, offset=offset).copy() if count else np.ndarray(0, dtype=dtype)
    if fortran == "True":
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def _numpy_load(member: memoryview) -> Any:
    import numpy as np

    return np.load(io.BytesIO(member), allow_pickle=False)

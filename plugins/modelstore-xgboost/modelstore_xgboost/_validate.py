"""Checking a stored xgboost model document before xgboost reads it.

xgboost's loader trusts the indices in the file: a tree whose child, parent or split-feature index
points outside its arrays loads fine and ``predict`` then reads out of bounds (SIGSEGV in xgboost
3.2), and its UBJSON reader copies strings of any declared length. The document is parsed here
(JSON with Python's parser, UBJSON with the strict reader below, which accepts exactly the
encodings xgboost's reader does), every index that xgboost follows is checked, and anything else
is a :class:`CorruptArtifactError` naming the file and the check.

The checks cost little next to xgboost's own load: a typed UBJSON array is kept as its raw bytes
until it is checked, the trees after the first are read along the first one's layout (any other
layout is read by the general reader), and the node checks run on all trees' nodes at once, in
numpy. Only the standard library and numpy (an xgboost dependency) are used.
"""

from __future__ import annotations

import json
import re
import struct
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from modelstore_core.plugin_api import CorruptArtifactError

#: Deeper nesting than any model has; xgboost's readers recurse, so deep junk would overflow its stack.
MAX_DEPTH = 32
#: xgboost's own bound on a category (``common::InvalidCat``): categories travel as float32.
MAX_CATEGORY = 1 << 24
#: Node and feature indices are int32 in xgboost; the root's parent is written as either.
INT32_MAX = (1 << 31) - 1
ROOT_PARENTS = (-1, INT32_MAX)
FEATURE_TYPES = {"int", "float", "i", "q", "c"}
#: How xgboost writes an integer parameter (``"num_feature": "3"``).
INT_STRING = re.compile(r"-?[0-9]{1,11}")


class _Bad(Exception):
    """A failed check, turned into a CorruptArtifactError that names the file."""


def validate(data: bytes, kind: str, file: str) -> None:
    """Refuse ``data`` (the bytes of ``file``, ``kind`` "ubjson" or "json") unless every index in it is sane."""
    try:
        doc = read_ubjson(data) if kind == "ubjson" else read_json(data)
        check_document(doc)
    except _Bad as exc:
        raise CorruptArtifactError(file, str(exc)) from None
    except RecursionError:
        raise CorruptArtifactError(file, "the document is nested too deeply") from None


# --- readers ------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # xgboost keeps the first of two equal keys (UBJSON) while Python keeps the last: the document
    # checked here must be the one xgboost reads.
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Bad("an object repeats a key")
    return out


def read_json(data: bytes) -> Any:
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, _Bad):
            raise
        raise _Bad(f"it is not JSON ({str(exc)[:120]})") from None
    _depth(doc)
    return doc


def _depth(value: Any, level: int = 0) -> None:
    if level > MAX_DEPTH:
        raise _Bad(f"the document is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list) or not {dict, list} & set(map(type, value)):
        return  # a scalar, or an array of numbers (most of a model): nothing nested
    for v in value:
        _depth(v, level + 1)


_I64 = struct.Struct(">q")
#: UBJSON's markers for scalars and typed-array elements, as numpy types (big-endian, as written).
_SCALARS = {"i": ">b", "U": ">B", "I": ">h", "l": ">i", "L": ">q", "d": ">f", "D": ">d", "C": ">b"}  # as struct formats
_SCALAR_READERS = {ord(m): struct.Struct(f) for m, f in _SCALARS.items()}
_TYPED = {ord(m): np.dtype(_SCALARS[m]) for m in "iUIlLdD"}  # typed-array element types xgboost reads
_TYPE_CODE = {dtype: bytes([code]) for code, dtype in _TYPED.items()}
_CONSTANTS = {ord("T"): True, ord("F"): False, ord("Z"): None}


def read_ubjson(data: bytes) -> Any:
    """The document in ``data``, as xgboost writes and reads UBJSON: lengths are int64 ('L'),
    typed arrays are ``[$<type>#L<count>`` followed by big-endian values. Every length is checked
    against the bytes left, and nesting against :data:`MAX_DEPTH`.

    A typed array is returned as the pair ``(numpy dtype, its raw big-endian bytes)`` (untyped
    arrays are lists): :func:`_ints` and :func:`_floats` turn it into numbers when it is checked.
    """
    reader = _UBJ(data)
    try:
        doc, end = reader.value(0, 0)
    except (struct.error, IndexError):
        raise _Bad("the file ends inside a value") from None
    if end != len(data):
        raise _Bad(f"{len(data) - end} bytes follow the model document")
    return doc


class _UBJ:
    """The reader behind :func:`read_ubjson`: ``value(pos, depth)`` returns (value, end position)."""

    def __init__(self, data: bytes):
        self.data, self.size = data, len(data)

    def length(self, pos: int) -> int:
        """The int64 length at ``pos`` (its 'L' marker included), checked against the bytes after it."""
        if self.data[pos] != 0x4C:
            raise _Bad(f"a length at byte {pos} is not an int64 ('L'), the only kind xgboost reads")
        n = _I64.unpack_from(self.data, pos + 1)[0]
        if n < 0 or n > self.size - pos - 9:
            raise _Bad(f"a length at byte {pos} runs past the end of the file")
        return n

    def value(self, pos: int, depth: int) -> tuple[Any, int]:
        data = self.data
        marker = data[pos]
        if marker == 0x7B:  # {
            return self.object(pos + 1, depth + 1)
        if marker == 0x5B:  # [
            return self.array(pos + 1, depth + 1)
        if marker == 0x53:  # S
            n = self.length(pos + 1)
            try:
                return data[pos + 10 : pos + 10 + n].decode("utf-8"), pos + 10 + n
            except UnicodeDecodeError:
                raise _Bad("a string is not UTF-8") from None
        scalar = _SCALAR_READERS.get(marker)
        if scalar is not None:
            return scalar.unpack_from(data, pos + 1)[0], pos + 1 + scalar.size
        if marker in _CONSTANTS:
            return _CONSTANTS[marker], pos + 1
        raise _Bad(f"byte {pos} holds {chr(marker)!r}, which is not a UBJSON value xgboost reads")

    def object(self, pos: int, depth: int) -> tuple[dict[str, Any], int]:
        if depth > MAX_DEPTH:
            raise _Bad(f"the document is nested more than {MAX_DEPTH} levels deep")
        data, pairs = self.data, []
        while data[pos] != 0x7D:  # }
            n = self.length(pos)
            try:
                key = data[pos + 9 : pos + 9 + n].decode("utf-8")
            except UnicodeDecodeError:
                raise _Bad("an object key is not UTF-8") from None
            value, pos = self.value(pos + 9 + n, depth)
            pairs.append((key, value))
        return _no_duplicates(pairs), pos + 1

    def array(self, pos: int, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise _Bad(f"the document is nested more than {MAX_DEPTH} levels deep")
        data = self.data
        head = data[pos]
        if head == 0x24:  # $: a typed array
            dtype = _TYPED.get(data[pos + 1])
            if dtype is None or data[pos + 2] != 0x23:  # #
                raise _Bad(f"a typed array at byte {pos} is not one xgboost reads")
            n = self.length(pos + 3)
            start = pos + 12
            if n > (self.size - start) // dtype.itemsize:
                raise _Bad(f"a typed array at byte {start} declares {n} values, more than the file holds")
            end = start + n * dtype.itemsize
            return (dtype, data[start:end]), end
        items: list[Any] = []
        shape = None  # the layout of the first object in this array: the others are read along it
        if head == 0x23:  # #: a counted array; every value takes at least one byte
            n = self.length(pos + 1)
            pos += 10
            for _ in range(n):
                pos = self._item(items, pos, depth, shape)
                if shape is None and type(items[-1]) is dict:
                    shape = _Shape(items[-1])
            return items, pos
        while data[pos] != 0x5D:  # ]
            pos = self._item(items, pos, depth, shape)
            if shape is None and type(items[-1]) is dict:
                shape = _Shape(items[-1])
        return items, pos + 1

    def _item(self, items: list[Any], pos: int, depth: int, shape: _Shape | None) -> int:
        if shape is not None:
            read = shape.read(self, pos, depth)
            if read is not None:
                items.append(read[0])
                return read[1]
        value, pos = self.value(pos, depth)
        items.append(value)
        return pos


class _Shape:
    """The layout of an object as :class:`_UBJ` read it: each key's bytes and its value's header.

    :meth:`read` reads an object laid out the same way (xgboost writes every tree alike) without
    dispatching on each marker, and gives up (``None``) at the first byte that differs; the
    caller then reads that object with the general reader. What it accepts is exactly what the
    general reader accepts for those bytes, and reads to the same value: the keys are those of
    an object that reader checked, in the same order, each header is compared byte for byte,
    and every length is checked against the bytes left.
    """

    TYPED, STRING, OBJECT, OTHER = range(4)

    def __init__(self, example: dict[str, Any]):
        #: (key, its bytes and its value's header, the header's length, kind, bytes per element, detail)
        self.steps: list[tuple[str, bytes, int, int, int, Any]] = []
        for key, value in example.items():
            raw = key.encode("utf-8")
            head = b"L" + _I64.pack(len(raw)) + raw
            if type(value) is tuple:  # a typed array
                step = (head + b"[$" + _TYPE_CODE[value[0]] + b"#L", self.TYPED, value[0].itemsize, value[0])
            elif type(value) is str:
                step = (head + b"SL", self.STRING, 1, None)
            elif type(value) is dict:
                step = (head + b"{", self.OBJECT, 0, _Shape(value))
            else:
                step = (head, self.OTHER, 0, None)
            self.steps.append((key, step[0], len(step[0]), *step[1:]))

    def read(self, reader: _UBJ, pos: int, depth: int) -> tuple[dict[str, Any], int] | None:
        data, size = reader.data, reader.size
        if data[pos] != 0x7B:
            return None
        pos += 1
        out: dict[str, Any] = {}
        startswith, length_at = data.startswith, _I64.unpack_from
        for key, head, head_size, kind, width, detail in self.steps:
            if not startswith(head, pos):
                return None
            pos += head_size
            if kind <= 1:  # TYPED or STRING: an int64 count, then the elements
                if pos + 8 > size:
                    return None
                n = length_at(data, pos)[0]
                pos += 8
                if n < 0 or n > (size - pos) // width:
                    return None
                end = pos + n * width
                if kind == 0:
                    out[key] = (detail, data[pos:end])
                else:
                    try:
                        out[key] = data[pos:end].decode("utf-8")
                    except UnicodeDecodeError:
                        return None
                pos = end
            elif kind == 2:  # OBJECT, as deep as the example's (a sibling): within MAX_DEPTH
                read = detail.read(reader, pos - 1, depth + 1)
                if read is None:
                    return None
                out[key], pos = read
            else:
                out[key], pos = reader.value(pos, depth + 1)
        if pos >= size or data[pos] != 0x7D:
            return None
        return out, pos + 1


# --- typed access -------------------------------------------------------------------------


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where} is not an object")
    return value


def _get(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise _Bad(f"{where}.{key} is missing")
    return obj[key]


def _int_str(obj: dict[str, Any], key: str, where: str, low: int, high: int, default: str | None = None) -> int:
    """xgboost keeps model parameters as decimal strings (``"num_feature": "3"``)."""
    return int(_int_strs([obj.get(key, default)], f"{where}.{key}", low, high)[0])


def _int_strs(raws: list[Any], where: str, low: int, high: int) -> np.ndarray:
    """:func:`_int_str` of many values at once (one per tree): ``where`` names them all, ``[i]`` the one that failed."""
    plain = all(type(r) is str for r in raws) and (joined := "".join(raws)).isascii() and joined.isdigit()
    if not plain or not 1 <= min(map(len, raws), default=1) <= max(map(len, raws), default=1) <= 11:
        for i, raw in enumerate(raws):  # find the one that is not
            name = where if len(raws) == 1 else f"{where}[{i}]"
            if raw is None:
                raise _Bad(f"{name} is missing")
            if type(raw) is not str or not INT_STRING.fullmatch(raw):
                raise _Bad(f"{name} is {str(raw)[:40]!r}, not an integer string")
    values = np.array([int(r) for r in raws], dtype=np.int64)
    bad = (values < low) | (values > high)
    if bad.any():
        i = int(np.argmax(bad))
        name = where if len(raws) == 1 else f"{where}[{i}]"
        raise _Bad(f"{name} is {int(values[i])}, outside [{low}, {high}]")
    return values


def _ints(value: Any, where: str) -> np.ndarray:
    """An integer array (a typed UBJSON array or a JSON list of integers) as int64."""
    return _column([value], where, integers=True)[0]


def _floats(value: Any, where: str) -> np.ndarray:
    return _column([value], where, integers=False)[0]


def _column(values: list[Any], where: str, integers: bool) -> tuple[np.ndarray, np.ndarray]:
    """Arrays (one per tree: typed UBJSON arrays or JSON lists) as one array of all their values
    (int64 if ``integers``, else floats) and each one's length."""
    kinds = "iu" if integers else "f"
    if values and set(map(type, values)) == {tuple} and len(set(map(itemgetter(0), values))) == 1:
        dtype = values[0][0]  # one typed array per tree, all of one type: converted at once
        if dtype.kind not in kinds:
            raise _Bad(f"{where} holds {dtype} values, not {'integers' if integers else 'numbers'}")
        raws = list(map(itemgetter(1), values))
        out = np.frombuffer(b"".join(raws), dtype)
        lengths = np.fromiter(map(len, raws), np.int64, len(raws)) // dtype.itemsize
    elif all(type(v) is list for v in values):
        lengths = np.fromiter(map(len, values), np.int64, len(values))
        try:
            out = np.array(list(chain.from_iterable(values)))
        except (ValueError, OverflowError):  # nested arrays of different lengths
            out = np.array([None])
        if out.ndim != 1 or out.size and out.dtype.kind not in ("iu" if integers else "fiu"):
            raise _Bad(f"{where} is not an array of {'integers' if integers else 'numbers'}")
    else:  # typed arrays of mixed types, or a tree whose value is not an array
        parts = []
        for i, v in enumerate(values):
            name = where if len(values) == 1 else f"{where}[{i}]"
            if type(v) is not tuple and type(v) is not list:
                raise _Bad(f"{name} is not an array of {'integers' if integers else 'numbers'}")
            parts.append(_column([v], name, integers)[0])
        out = np.concatenate(parts) if parts else np.zeros(0)
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
    if integers:
        if out.dtype == np.uint64 and out.size and out.max() > np.iinfo(np.int64).max:
            raise _Bad(f"{where} holds a value out of range")
        return out.astype(np.int64), lengths
    return out.astype(np.float64, copy=False), lengths


def _in_range(values: np.ndarray, where: str, low: Any, high: Any) -> None:
    """Every value in ``[low, high)`` (bounds may be arrays, one per value)."""
    bad = (values < low) | (values >= high)
    if bad.any():
        i = int(np.argmax(bad))
        low_i, high_i = (int(np.broadcast_to(b, values.shape)[i]) for b in (low, high))
        raise _Bad(f"{where}[{i}] is {int(values[i])}, outside [{low_i}, {high_i})")


def _length(values: np.ndarray, n: int, where: str) -> None:
    if len(values) != n:
        raise _Bad(f"{where} has {len(values)} entries, not {n}")


# --- the model ----------------------------------------------------------------------------


def check_document(doc: Any) -> None:
    top = _obj(doc, "the document")
    learner = _obj(_get(top, "learner", "the document"), "learner")
    param = _obj(_get(learner, "learner_model_param", "learner"), "learner.learner_model_param")
    where = "learner.learner_model_param"
    num_feature = _int_str(param, "num_feature", where, 0, INT32_MAX)
    num_class = _int_str(param, "num_class", where, 0, MAX_CATEGORY, default="0")
    num_target = _int_str(param, "num_target", where, 1, MAX_CATEGORY, default="1")
    if num_class > 1 and num_target > 1:
        raise _Bad(f"{where} has both num_class {num_class} and num_target {num_target}")
    n_out = max(num_class, num_target, 1)
    _check_base_score(param.get("base_score"), n_out)
    _check_objective(learner.get("objective"), num_class)

    for key in ("feature_names", "feature_types"):
        names = learner.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _Bad(f"learner.{key} is not a list of strings")
        if names and len(names) != num_feature:
            raise _Bad(f"learner.{key} has {len(names)} entries but num_feature is {num_feature}")
    for i, t in enumerate(learner.get("feature_types", [])):
        if t not in FEATURE_TYPES:
            raise _Bad(f"learner.feature_types[{i}] is {t[:20]!r}, not one of {sorted(FEATURE_TYPES)}")

    booster = _obj(_get(learner, "gradient_booster", "learner"), "learner.gradient_booster")
    name = booster.get("name")
    where = "learner.gradient_booster"
    if name == "gbtree":
        _check_gbtree(_obj(_get(booster, "model", where), f"{where}.model"), f"{where}.model", num_feature, n_out, num_target > 1)
    elif name == "dart":
        inner = _obj(_get(booster, "gbtree", where), f"{where}.gbtree")
        if inner.get("name") != "gbtree":
            raise _Bad(f"{where}.gbtree.name is not 'gbtree'")
        where = f"{where}.gbtree.model"
        n_trees = _check_gbtree(_obj(_get(inner, "model", where), where), where, num_feature, n_out, num_target > 1)
        drops = _floats(booster.get("weight_drop", []), "learner.gradient_booster.weight_drop")
        if len(drops) > n_trees:
            raise _Bad(f"learner.gradient_booster.weight_drop has {len(drops)} entries for {n_trees} trees")
    elif name == "gblinear":
        model = _obj(_get(booster, "model", where), f"{where}.model")
        weights = _floats(_get(model, "weights", f"{where}.model"), f"{where}.model.weights")
        _length(weights, (num_feature + 1) * n_out, f"{where}.model.weights")
    else:
        raise _Bad(f"{where}.name is {str(name)[:40]!r}, not gbtree, dart or gblinear")


def _check_base_score(raw: Any, n_out: int) -> None:
    if raw is None:
        return
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    values = value if isinstance(value, list) else [value]
    if not all(type(v) in (int, float) for v in values) or len(values) not in (1, n_out):
        raise _Bad(f"learner.learner_model_param.base_score is {str(raw)[:60]!r}, not 1 or {n_out} numbers")


def _check_objective(objective: Any, num_class: int) -> None:
    if objective is None:
        return
    objective = _obj(objective, "learner.objective")
    softmax = objective.get("softmax_multiclass_param")
    if softmax is not None:
        # The objective reshapes predictions by its own num_class: it must be the model's.
        where = "learner.objective.softmax_multiclass_param"
        n = _int_str(_obj(softmax, where), "num_class", where, 1, MAX_CATEGORY)
        if n != num_class:
            raise _Bad(f"{where}.num_class is {n} but the model has {num_class} classes")


def _check_gbtree(model: dict[str, Any], where: str, num_feature: int, n_out: int, multi_target: bool) -> int:
    param = _obj(_get(model, "gbtree_model_param", where), f"{where}.gbtree_model_param")
    n_trees = _int_str(param, "num_trees", f"{where}.gbtree_model_param", 0, INT32_MAX)
    _int_str(param, "num_parallel_tree", f"{where}.gbtree_model_param", 1, INT32_MAX, default="1")
    trees = _get(model, "trees", where)
    if not isinstance(trees, list) or len(trees) != n_trees:
        raise _Bad(f"{where}.trees is not a list of num_trees ({n_trees}) trees")
    info = _ints(_get(model, "tree_info", where), f"{where}.tree_info")
    _length(info, n_trees, f"{where}.tree_info")
    _in_range(info, f"{where}.tree_info", 0, n_out)
    if "iteration_indptr" in model:
        indptr = _ints(model["iteration_indptr"], f"{where}.iteration_indptr")
        if len(indptr) == 0 or indptr[0] != 0 or indptr[-1] != n_trees or (np.diff(indptr) < 0).any():
            raise _Bad(f"{where}.iteration_indptr does not run from 0 up to num_trees ({n_trees})")
    if "cats" in model:
        _check_cats(_obj(model["cats"], f"{where}.cats"), f"{where}.cats")
    if trees:
        check_trees(trees, f"{where}.trees", num_feature, n_out, multi_target)
    return n_trees


def _check_cats(cats: dict[str, Any], where: str) -> None:
    """The category encoder (xgboost >= 3.1): offsets, segments and the sort order index into its arrays."""
    enc = cats.get("enc", [])
    if not isinstance(enc, list):
        raise _Bad(f"{where}.enc is not a list")
    total = 0
    for i, column in enumerate(enc):
        column = _obj(column, f"{where}.enc[{i}]")
        values = _ints(_get(column, "values", f"{where}.enc[{i}]"), f"{where}.enc[{i}].values")
        if "offsets" in column:  # strings: offsets into the characters
            offsets = _ints(column["offsets"], f"{where}.enc[{i}].offsets")
            if len(offsets) and (offsets[0] != 0 or offsets[-1] != len(values) or (np.diff(offsets) < 0).any()):
                raise _Bad(f"{where}.enc[{i}].offsets do not run from 0 up to the {len(values)} characters")
            if not len(offsets) and len(values):
                raise _Bad(f"{where}.enc[{i}] has characters but no offsets")
            total += max(len(offsets) - 1, 0)
        else:
            if type(column.get("type")) is not int or not 0 <= column["type"] <= 7:  # the integer kinds
                raise _Bad(f"{where}.enc[{i}].type is not an integer category type")
            total += len(values)
    segments = _ints(cats.get("feature_segments", []), f"{where}.feature_segments")
    if len(enc) or len(segments):
        if len(segments) != len(enc) + 1 or segments[0] != 0 or (np.diff(segments) < 0).any() or segments[-1] != total:
            raise _Bad(f"{where}.feature_segments do not match the {len(enc)} encoded features")
    sorted_idx = _ints(cats.get("sorted_idx", []), f"{where}.sorted_idx")
    if len(sorted_idx):
        _length(sorted_idx, total, f"{where}.sorted_idx")
        _in_range(sorted_idx, f"{where}.sorted_idx", 0, total)


# --- the trees, all at once ---------------------------------------------------------------


def _tree_column(trees: list[dict[str, Any]], where: str, key: str, integers: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Every tree's ``key`` end to end, and each tree's length of it."""
    try:
        values = list(map(itemgetter(key), trees))
    except KeyError:
        missing = next(t for t, tree in enumerate(trees) if key not in tree)
        raise _Bad(f"{where}[{missing}].{key} is missing") from None
    return _column(values, f"{where}[*].{key}", integers)


class _Nodes:
    """Every tree's node arrays end to end: node ``i`` of the whole is node ``i - start[t]`` of
    tree ``t``. Errors name the tree and the node in it."""

    def __init__(self, trees: list[dict[str, Any]], where: str, sizes: np.ndarray):
        """``sizes``: each tree's number of nodes, already checked against an array the file holds."""
        self.trees, self.where, self.sizes = trees, where, sizes
        self.start = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        self.tree_of = np.repeat(np.arange(len(sizes)), sizes)  # the tree of each node
        self.local = np.arange(int(sizes.sum())) - self.start[self.tree_of]  # each node's index in its tree

    def column(self, key: str, integers: bool = True, per_node: int | np.ndarray = 1) -> np.ndarray:
        """Every tree's ``key`` end to end; each tree's must hold ``per_node`` values per node."""
        values, lengths = _tree_column(self.trees, self.where, key, integers)
        _lengths(lengths, self.sizes * per_node, self.where, key)
        return values

    def fail(self, bad: np.ndarray, message: str) -> None:
        """Raise ``message`` (formatted with ``tree``, ``node`` and ``where``) for the first node in ``bad``."""
        if bad.any():
            i = int(np.argmax(bad))
            t = int(self.tree_of[i])
            raise _Bad(message.format(where=f"{self.where}[{t}]", tree=t, node=int(self.local[i]), i=i))


def _lengths(lengths: np.ndarray, expected: np.ndarray, where: str, key: str) -> None:
    bad = lengths != expected
    if bad.any():
        t = int(np.argmax(bad))
        raise _Bad(f"{where}[{t}].{key} has {int(lengths[t])} entries, not {int(expected[t])}")


def check_trees(trees: list[Any], where: str, num_feature: int, n_out: int, multi_target: bool) -> None:
    """Every tree of a gbtree model, as xgboost reads and follows it: sizes, index ranges, and
    that each tree is a proper binary tree whose parents agree with its children."""
    for t, tree in enumerate(trees):
        _obj(tree, f"{where}[{t}]")
    ids = [tree.get("id") for tree in trees]
    if ids != list(range(len(trees))) or not all(type(i) is int for i in ids):
        t = next(t for t, i in enumerate(ids) if i != t or type(i) is not int)
        raise _Bad(f"{where}[{t}].id is {str(ids[t])[:20]}, not {t}")
    params = [_obj(_get(tree, "tree_param", f"{where}[{t}]"), f"{where}[{t}].tree_param") for t, tree in enumerate(trees)]

    def param(key: str, low: int, high: int, default: str | None = None) -> np.ndarray:
        return _int_strs([p.get(key, default) for p in params], f"{where}[*].tree_param.{key}", low, high)

    n = param("num_nodes", 1, INT32_MAX)
    tree_features = param("num_feature", 0, INT32_MAX)
    k = param("size_leaf_vector", 1, MAX_CATEGORY)
    deleted_count = param("num_deleted", 0, INT32_MAX, default="0")
    if (deleted_count > n - 1).any():
        t = int(np.argmax(deleted_count > n - 1))
        raise _Bad(f"{where}[{t}].tree_param.num_deleted is {int(deleted_count[t])}, outside [0, {int(n[t]) - 1}]")
    wrong_k = (k > 1) & ((k != n_out) | (not multi_target))
    if wrong_k.any():
        t = int(np.argmax(wrong_k))
        raise _Bad(f"{where}[{t}].tree_param.size_leaf_vector is {int(k[t])}, but the model has {n_out} targets")

    left, lengths = _tree_column(trees, where, "left_children")
    _lengths(lengths, n, where, "left_children")  # before anything is sized by num_nodes
    nodes = _Nodes(trees, where, n)
    right, parents = nodes.column("right_children"), nodes.column("parents")
    split, default_left = nodes.column("split_indices"), nodes.column("default_left")
    for key in ("split_conditions", "loss_changes", "sum_hessian"):
        nodes.column(key, integers=False)
    nodes.column("base_weights", integers=False, per_node=k)
    nodes.fail((default_left < 0) | (default_left > 1), "{where}.default_left[{node}] is not 0 or 1")
    nodes.fail((split < 0) | (split > INT32_MAX), "{where}.split_indices[{node}] is outside [0, 2**31)")

    size = n[nodes.tree_of]  # each node's tree's size
    leaf = left == -1
    internal = ~leaf
    # A deleted node (xgboost's pruner leaves them in place) has all split bits set and is unreachable.
    deleted = (split == INT32_MAX) & (default_left == 1)
    for key, child in (("left_children", left), ("right_children", right)):
        nodes.fail(internal & ((child < 1) | (child >= size)), "{where}." + key + "[{node}] (of a split node) is outside the tree")
    single = k[nodes.tree_of] == 1
    nodes.fail(single & leaf & (right != -1), "{where}.right_children[{node}] of a leaf is not -1")
    features = np.minimum(num_feature, tree_features)[nodes.tree_of]
    nodes.fail(internal & ~deleted & (split >= features), "{where}.split_indices[{node}] is outside the model's features")
    root = nodes.local == 0
    nodes.fail(root & (parents != ROOT_PARENTS[0]) & (parents != ROOT_PARENTS[1]), "{where}.parents[0] is not the root's marker")
    nodes.fail(~root & ((parents < 0) | (parents >= size)), "{where}.parents[{node}] (of a non-root node) is outside the tree")

    reached = _reached(nodes, left, right, parents, leaf, root)
    # As a walk from each root would find it: a proper binary tree whose splits name their
    # children's parents, nothing but deleted nodes left out, no deleted split on the way.
    nodes.fail(reached & internal & deleted, "{where} node {node} is deleted but reachable")
    splits = reached & internal
    first = nodes.start[nodes.tree_of]  # where each node's tree starts, end to end
    for key, child in (("left_children", left), ("right_children", right)):
        target = np.where(splits, child, 0) + first
        nodes.fail(splits & (parents[target] != nodes.local), "{where}." + key + "[{node}] names a node whose parent is another")
    nodes.fail(splits & (left == right), "{where} node {node} has the same node as both children")
    nodes.fail(~reached & ~deleted, "{where} node {node} is not reachable from the root")

    if multi_target:
        for t in np.flatnonzero(k > 1):
            at = slice(nodes.start[t], nodes.start[t] + n[t])
            _check_leaf_weights(trees[t], f"{where}[{t}]", int(k[t]), right[at], (leaf & reached)[at])
    _check_categorical(trees, nodes, leaf)


def _reached(nodes: _Nodes, left: np.ndarray, right: np.ndarray, parents: np.ndarray, leaf: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Which nodes a walk down the children from each tree's root reaches, for trees whose
    parents agree with their children: a node is reached when its parent is a split that names
    it as a child, and that parent is reached. Found by following parents with pointer doubling:
    log2(depth) passes over all nodes, however the trees are laid out."""
    first = nodes.start[nodes.tree_of]
    parent = np.where(root, 0, parents) + first  # end-to-end index of each node's parent (in range: checked)
    linked = ~root & ~leaf[parent] & ((left[parent] == nodes.local) | (right[parent] == nodes.local))
    up = np.where(linked, parent, np.arange(len(parent)))  # unlinked nodes and roots point at themselves
    for _ in range(int(nodes.sizes.max()).bit_length() + 1):  # 2**passes >= the deepest possible chain
        higher = up[up]
        if np.array_equal(higher, up):
            break
        up = higher
    return up == first


def _check_leaf_weights(tree: dict[str, Any], where: str, k: int, right: np.ndarray, leaves: np.ndarray) -> None:
    # Multi-target trees keep leaf values apart: a leaf's right child is its row in leaf_weights.
    n_leaves = int(leaves.sum())
    _length(_floats(_get(tree, "leaf_weights", where), f"{where}.leaf_weights"), n_leaves * k, f"{where}.leaf_weights")
    if not np.array_equal(np.sort(right[leaves]), np.arange(n_leaves)):
        raise _Bad(f"{where}.right_children of the leaves are not their rows 0..{n_leaves - 1} in leaf_weights")


def _check_categorical(trees: list[dict[str, Any]], nodes: _Nodes, leaf: np.ndarray) -> None:
    """Categorical splits: ``split_type`` marks them, ``categories_nodes`` lists exactly them, and
    each one's ``categories_segments``/``categories_sizes`` slice of ``categories`` tiles it."""
    typed = ["split_type" in tree for tree in trees]
    if not any(typed):
        return
    if not all(typed):
        raise _Bad(f"{nodes.where}[{typed.index(False)}] has no split_type, but other trees do: xgboost writes it in all or none")
    where, count = nodes.where, len(trees)
    split_type = nodes.column("split_type")
    nodes.fail((split_type < 0) | (split_type > 1), "{where}.split_type[{node}] is not 0 or 1")
    nodes.fail(leaf & (split_type != 0), "{where}.split_type[{node}] marks a leaf as a categorical split")

    listed, per_tree = _tree_column(trees, where, "categories_nodes")
    segments, segment_counts = _tree_column(trees, where, "categories_segments")
    sizes, size_counts = _tree_column(trees, where, "categories_sizes")
    categories, category_counts = _tree_column(trees, where, "categories")
    split_nodes = (split_type == 1) & ~leaf
    # Each tree's list, shifted to end-to-end node indices, must be its categorical splits in order.
    wrong = per_tree != np.bincount(nodes.tree_of[split_nodes], minlength=count)
    if not wrong.any():
        mismatch = listed + np.repeat(nodes.start, per_tree) != np.flatnonzero(split_nodes)
        wrong = np.bincount(np.repeat(np.arange(count), per_tree)[mismatch], minlength=count) > 0
    if wrong.any():
        raise _Bad(f"{where}[{int(np.argmax(wrong))}].categories_nodes do not list exactly the categorical split nodes")
    for key, counts in (("categories_segments", segment_counts), ("categories_sizes", size_counts)):
        _lengths(counts, per_tree, where, key)
    # Each tree's segments start at 0 and follow one another: the running sum of its sizes.
    ends = np.cumsum(per_tree)
    running = np.concatenate(([0], np.cumsum(np.minimum(np.maximum(sizes, 0), len(categories) + 1))))
    tree_total = running[ends] - running[ends - per_tree]
    expected = running[:-1] - np.repeat(running[ends - per_tree], per_tree)
    if (sizes < 1).any() or not np.array_equal(segments, expected):
        raise _Bad(f"{where}[*].categories_segments and categories_sizes do not tile categories")
    _lengths(category_counts, tree_total, where, "categories")
    _in_range(categories, f"{where}[*].categories", 0, MAX_CATEGORY)

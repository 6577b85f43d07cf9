"""Checking a stored xgboost model document before xgboost reads it.

xgboost's loader trusts the indices in the file: a tree whose child, parent or split-feature index
points outside its arrays loads fine and ``predict`` then reads out of bounds (SIGSEGV in xgboost
3.2), and its UBJSON reader copies strings of any declared length. The document is parsed here
(JSON with Python's parser, UBJSON with the strict reader below, which accepts exactly the
encodings xgboost's reader does), every index that xgboost follows is checked, and anything else
is a :class:`CorruptArtifactError` naming the file and the check.

Only the standard library and numpy (an xgboost dependency) are used.
"""

from __future__ import annotations

import json
import struct
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


class _Bad(Exception):
    """A failed check, turned into a CorruptArtifactError that names the file."""


def validate(data: bytes, kind: str, file: str) -> None:
    """Refuse ``data`` (the bytes of ``file``, ``kind`` "ubjson" or "json") unless every index in it is sane."""
    try:
        doc = read_ubjson(data) if kind == "ubjson" else read_json(data)
        _depth(doc)
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
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, _Bad):
            raise
        raise _Bad(f"it is not JSON ({str(exc)[:120]})") from None


_SCALARS = {"i": ">i1", "U": ">u1", "I": ">i2", "l": ">i4", "L": ">i8", "d": ">f4", "D": ">f8", "C": ">i1"}
_TYPED = {"i", "U", "I", "l", "L", "d", "D"}  # typed-array element types xgboost reads


class _UBJ:
    """UBJSON as xgboost writes and reads it: lengths are int64 ('L'), typed arrays are
    ``[$<type>#L<count>`` followed by big-endian values. Every length is checked against the bytes left."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or n > len(self.data) - self.pos:
            raise _Bad(f"a length at byte {self.pos} runs past the end of the file")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def char(self) -> str:
        return chr(self.take(1)[0])

    def length(self) -> int:
        if self.char() != "L":
            raise _Bad(f"a length at byte {self.pos - 1} is not an int64 ('L'), the only kind xgboost reads")
        return struct.unpack(">q", self.take(8))[0]

    def value(self, marker: str | None = None) -> Any:
        marker = marker or self.char()
        if marker == "{":
            pairs = []
            while self.data[self.pos : self.pos + 1] != b"}":
                key = self.take(self.length())
                try:
                    pairs.append((key.decode("utf-8"), self.value()))
                except UnicodeDecodeError:
                    raise _Bad("an object key is not UTF-8") from None
            self.pos += 1
            return _no_duplicates(pairs)
        if marker == "[":
            return self.array()
        if marker == "S":
            try:
                return self.take(self.length()).decode("utf-8")
            except UnicodeDecodeError:
                raise _Bad("a string is not UTF-8") from None
        if marker in _SCALARS:
            dtype = np.dtype(_SCALARS[marker])
            v = np.frombuffer(self.take(dtype.itemsize), dtype)[0]
            return float(v) if dtype.kind == "f" else int(v)
        if marker in "TFZ":
            return {"T": True, "F": False, "Z": None}[marker]
        raise _Bad(f"byte {self.pos - 1} holds {marker!r}, which is not a UBJSON value xgboost reads")

    def array(self) -> Any:
        head = self.data[self.pos : self.pos + 1]
        if head == b"$":
            self.pos += 1
            kind = self.char()
            if kind not in _TYPED or self.char() != "#":
                raise _Bad(f"a typed array at byte {self.pos} is not one xgboost reads")
            n = self.length()
            dtype = np.dtype(_SCALARS[kind])
            if n < 0 or n > (len(self.data) - self.pos) // dtype.itemsize:
                raise _Bad(f"a typed array at byte {self.pos} declares {n} values, more than the file holds")
            return np.frombuffer(self.take(n * dtype.itemsize), dtype).astype(dtype.newbyteorder("="))
        if head == b"#":
            self.pos += 1
            n = self.length()
            if n < 0 or n > len(self.data) - self.pos:  # every value takes at least one byte
                raise _Bad(f"an array at byte {self.pos} declares {n} values, more than the file holds")
            return [self.value() for _ in range(n)]
        items = []
        while self.data[self.pos : self.pos + 1] != b"]":
            if self.pos >= len(self.data):
                raise _Bad("an array runs past the end of the file")
            items.append(self.value())
        self.pos += 1
        return items


def read_ubjson(data: bytes) -> Any:
    reader = _UBJ(data)
    try:
        doc = reader.value()
    except RecursionError:
        raise
    except (struct.error, IndexError):
        raise _Bad("the file ends inside a value") from None
    if reader.pos != len(data):
        raise _Bad(f"{len(data) - reader.pos} bytes follow the model document")
    return doc


def _depth(value: Any, level: int = 0) -> None:
    if level > MAX_DEPTH:
        raise _Bad(f"the document is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for v in value.values():
            _depth(v, level + 1)
    elif isinstance(value, list):
        for v in value:
            _depth(v, level + 1)


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
    raw = obj.get(key, default)
    if raw is None:
        raise _Bad(f"{where}.{key} is missing")
    if not isinstance(raw, str) or not raw.strip().lstrip("-").isdigit() or len(raw) > 12:
        raise _Bad(f"{where}.{key} is {str(raw)[:40]!r}, not an integer string")
    value = int(raw)
    if not low <= value <= high:
        raise _Bad(f"{where}.{key} is {value}, outside [{low}, {high}]")
    return value


def _ints(value: Any, where: str) -> np.ndarray:
    """An integer array (a typed UBJSON array or a JSON list of integers) as int64."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iu":
            raise _Bad(f"{where} holds {value.dtype} values, not integers")
        if value.dtype == np.uint64 and value.size and value.max() > np.iinfo(np.int64).max:
            raise _Bad(f"{where} holds a value out of range")
        return value.astype(np.int64)
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        raise _Bad(f"{where} is not an array of integers")
    if value and not -(1 << 63) <= min(value) <= max(value) < (1 << 63):
        raise _Bad(f"{where} holds a value out of range")
    return np.array(value, dtype=np.int64)


def _floats(value: Any, where: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        if value.dtype.kind != "f":
            raise _Bad(f"{where} holds {value.dtype} values, not numbers")
        return value
    if not isinstance(value, list) or not all(type(v) in (int, float) for v in value):
        raise _Bad(f"{where} is not an array of numbers")
    return np.array(value, dtype=np.float64)


def _in_range(values: np.ndarray, where: str, low: int, high: int) -> None:
    """Every value in ``[low, high)``."""
    bad = (values < low) | (values >= high)
    if bad.any():
        i = int(np.argmax(bad))
        raise _Bad(f"{where}[{i}] is {int(values[i])}, outside [{low}, {high})")


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
    for t, tree in enumerate(trees):
        tree = _obj(tree, f"{where}.trees[{t}]")
        if tree.get("id") != t or type(tree.get("id")) is not int:
            raise _Bad(f"{where}.trees[{t}].id is {str(tree.get('id'))[:20]}, not {t}")
        check_tree(tree, f"{where}.trees[{t}]", num_feature, n_out, multi_target)
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


def check_tree(tree: dict[str, Any], where: str, num_feature: int, n_out: int, multi_target: bool) -> None:
    tp = _obj(_get(tree, "tree_param", where), f"{where}.tree_param")
    n = _int_str(tp, "num_nodes", f"{where}.tree_param", 1, INT32_MAX)
    tree_features = _int_str(tp, "num_feature", f"{where}.tree_param", 0, INT32_MAX)
    k = _int_str(tp, "size_leaf_vector", f"{where}.tree_param", 1, MAX_CATEGORY)
    _int_str(tp, "num_deleted", f"{where}.tree_param", 0, n - 1, default="0")
    if k > 1 and (not multi_target or k != n_out):
        raise _Bad(f"{where}.tree_param.size_leaf_vector is {k}, but the model has {n_out} targets")

    def arr(key: str, read=_ints, size: int = n) -> np.ndarray:
        values = read(_get(tree, key, where), f"{where}.{key}")
        _length(values, size, f"{where}.{key}")
        return values

    left, right, parents = arr("left_children"), arr("right_children"), arr("parents")
    split, default_left = arr("split_indices"), arr("default_left")
    for key in ("split_conditions", "loss_changes", "sum_hessian"):
        arr(key, _floats)
    arr("base_weights", _floats, n * k)
    _in_range(default_left, f"{where}.default_left", 0, 2)
    _in_range(split, f"{where}.split_indices", 0, INT32_MAX + 1)

    leaf = left == -1
    internal = ~leaf
    # A deleted node (xgboost's pruner leaves them in place) has all split bits set and is unreachable.
    deleted = (split == INT32_MAX) & (default_left == 1)
    _in_range(left[internal], f"{where}.left_children (of a split node)", 1, n)
    _in_range(right[internal], f"{where}.right_children (of a split node)", 1, n)
    if k == 1 and (right[leaf] != -1).any():
        raise _Bad(f"{where}.right_children of a leaf is not -1")
    features = min(num_feature, tree_features)
    live = internal & ~deleted
    bad = live & (split >= features)
    if bad.any():
        i = int(np.argmax(bad))
        raise _Bad(f"{where}.split_indices[{i}] is {int(split[i])}, outside [0, {features}) features")
    if parents[0] not in ROOT_PARENTS:
        raise _Bad(f"{where}.parents[0] is {int(parents[0])}, not the root's marker")
    _in_range(parents[1:], f"{where}.parents (of a non-root node)", 0, n)

    # A proper tree: from the root, every split leads to two nodes seen nowhere else, each of which
    # names the split as its parent; nothing but deleted nodes is left out.
    seen = np.zeros(n, dtype=bool)
    seen[0] = True
    stack = [0]
    while stack:
        node = stack.pop()
        if leaf[node]:
            continue
        if deleted[node]:
            raise _Bad(f"{where} node {node} is deleted but reachable")
        for child in (int(left[node]), int(right[node])):
            if seen[child]:
                raise _Bad(f"{where} node {child} is reached twice (a cycle or a shared child)")
            if parents[child] != node:
                raise _Bad(f"{where}.parents[{child}] is {int(parents[child])}, not its parent {node}")
            seen[child] = True
            stack.append(child)
    missing = ~seen & ~deleted
    if missing.any():
        raise _Bad(f"{where} node {int(np.argmax(missing))} is not reachable from the root")

    if k > 1:
        # Multi-target trees keep leaf values apart: a leaf's right child is its row in leaf_weights.
        n_leaves = int((leaf & seen).sum())
        arr("leaf_weights", _floats, n_leaves * k)
        rows = np.sort(right[leaf & seen])
        if not np.array_equal(rows, np.arange(n_leaves)):
            raise _Bad(f"{where}.right_children of the leaves are not their rows 0..{n_leaves - 1} in leaf_weights")
    if "split_type" in tree:
        _check_categorical(tree, where, n, leaf)


def _check_categorical(tree: dict[str, Any], where: str, n: int, leaf: np.ndarray) -> None:
    split_type = _ints(tree["split_type"], f"{where}.split_type")
    _length(split_type, n, f"{where}.split_type")
    _in_range(split_type, f"{where}.split_type", 0, 2)
    nodes = _ints(_get(tree, "categories_nodes", where), f"{where}.categories_nodes")
    segments = _ints(_get(tree, "categories_segments", where), f"{where}.categories_segments")
    sizes = _ints(_get(tree, "categories_sizes", where), f"{where}.categories_sizes")
    categories = _ints(_get(tree, "categories", where), f"{where}.categories")
    expected = np.flatnonzero((split_type == 1) & ~leaf)
    if not np.array_equal(nodes, expected) or (split_type[leaf] != 0).any():
        raise _Bad(f"{where}.categories_nodes do not list exactly the categorical split nodes")
    _length(segments, len(nodes), f"{where}.categories_segments")
    _length(sizes, len(nodes), f"{where}.categories_sizes")
    if (sizes < 1).any() or not np.array_equal(segments, np.concatenate(([0], np.cumsum(sizes)[:-1])) if len(sizes) else segments):
        raise _Bad(f"{where}.categories_segments and categories_sizes do not tile categories")
    _length(categories, int(sizes.sum()), f"{where}.categories")
    _in_range(categories, f"{where}.categories", 0, MAX_CATEGORY)

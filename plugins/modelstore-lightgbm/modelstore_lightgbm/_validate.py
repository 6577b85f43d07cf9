"""Checking a stored LightGBM text model before LightGBM reads it.

LightGBM's loader (``GBDT::LoadModelFromString``, ``Tree::Tree(const char*)``, LightGBM 4.x) trusts
the file: it seeks to each tree by the offsets in ``tree_sizes`` without checking them against the
buffer, scans a tree line for its ``=`` past the end of the line, parses ``n`` numbers for an array
whatever the line holds (reading past the string), sizes arrays by ``num_leaves`` and
``cat_boundaries`` as written (a negative count is a huge allocation), divides by
``num_tree_per_iteration``, and indexes a parameter line's second ``:``-separated part without
checking there is one. Prediction then follows ``left_child``/``right_child``, ``split_feature``,
the categorical ``threshold`` (an index into ``cat_boundaries``) and the linear leaves'
``leaf_features`` without bounds checks, and a child pointing back up the tree loops for ever.

So the text is parsed here, as LightGBM parses it, and everything LightGBM trusts is checked;
anything else is a :class:`CorruptArtifactError` naming the file and the check. Standard library
only.
"""

from __future__ import annotations

import json
import math
import re

from modelstore_core.plugin_api import CorruptArtifactError

INT32 = (-(1 << 31), (1 << 31) - 1)
UINT32 = (0, (1 << 32) - 1)
#: LightGBM's own upper bound on ``num_leaves``.
MAX_LEAVES = 131072
#: Far deeper than a trained tree gets; LightGBM walks trees recursively (SHAP values, ``dump_model``).
MAX_DEPTH = 1024
#: More classes than any model has; the output of one row is this many numbers.
MAX_CLASSES = 1 << 16

HEADER_KEYS = {
    "version",
    "num_class",
    "num_tree_per_iteration",
    "label_index",
    "max_feature_idx",
    "objective",
    "average_output",
    "feature_names",
    "monotone_constraints",
    "feature_infos",
    "tree_sizes",
}
#: Header keys written alone, without ``=`` (random forests average their trees).
FLAG_KEYS = {"average_output"}
#: Header keys whose value may hold ``=`` (LightGBM splits every other line on it).
FREE_TEXT_KEYS = {"feature_names", "monotone_constraints"}
OBJECTIVES = {
    "regression",
    "regression_l1",
    "quantile",
    "huber",
    "fair",
    "poisson",
    "binary",
    "lambdarank",
    "rank_xendcg",
    "multiclass",
    "multiclassova",
    "cross_entropy",
    "cross_entropy_lambda",
    "mape",
    "gamma",
    "tweedie",
    "custom",
}
MULTICLASS_OBJECTIVES = {"multiclass", "multiclassova"}
#: The lines ``Tree::Tree`` reads (it reads at most 22 of them).
TREE_KEYS = {
    "num_leaves",
    "num_cat",
    "split_feature",
    "split_gain",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "leaf_value",
    "leaf_weight",
    "leaf_count",
    "internal_value",
    "internal_weight",
    "internal_count",
    "is_linear",
    "shrinkage",
    "cat_boundaries",
    "cat_threshold",
    "leaf_const",
    "num_features",
    "leaf_features",
    "leaf_coeff",
}
CATEGORICAL_MASK = 1

_INT = re.compile(r"-?[0-9]{1,11}")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?:inf|nan|Inf|NaN|INF|NAN)")
_PARAMETER = re.compile(r"\[([A-Za-z0-9_]+): ([^\"\\\[\]]*)\]")


class _Bad(Exception):
    """A failed check, turned into a CorruptArtifactError that names the file."""


def validate(data: bytes, file: str) -> str:
    """Return the text of ``data`` (the bytes of ``file``) if it is a LightGBM text model whose
    every index is sane, else raise :class:`CorruptArtifactError`."""
    try:
        text = _decode(data)
        check_model(text)
    except _Bad as exc:
        raise CorruptArtifactError(file, str(exc)) from None
    return text


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad("it is not UTF-8 text") from None
    # LightGBM writes "\n" only; its line readers treat "\r" and NUL in ways of their own.
    for char, name in (("\0", "a NUL byte"), ("\r", "a carriage return")):
        if char in text:
            raise _Bad(f"it holds {name} at character {text.index(char)}, which LightGBM never writes")
    return text


# --- numbers ------------------------------------------------------------------------------


def _int(token: str, where: str, low: int, high: int) -> int:
    if not _INT.fullmatch(token):
        raise _Bad(f"{where} is {token[:40]!r}, not an integer")
    value = int(token)
    if not low <= value <= high:
        raise _Bad(f"{where} is {value}, outside [{low}, {high}]")
    return value


def _ints(value: str, n: int, where: str, low: int = INT32[0], high: int = INT32[1]) -> list[int]:
    tokens = value.split(" ")
    tokens = [t for t in tokens if t]  # linear trees' lines have runs of spaces
    if len(tokens) != n:
        raise _Bad(f"{where} has {len(tokens)} values, not {n}")
    return [_int(t, f"{where}[{i}]", low, high) for i, t in enumerate(tokens)]


def _floats(value: str, n: int, where: str) -> list[float]:
    tokens = [t for t in value.split(" ") if t]
    if len(tokens) != n:
        raise _Bad(f"{where} has {len(tokens)} values, not {n}")
    for i, t in enumerate(tokens):
        if not _FLOAT.fullmatch(t):
            raise _Bad(f"{where}[{i}] is {t[:40]!r}, not a number")
    return [float(t) for t in tokens]


# --- the model ----------------------------------------------------------------------------


def check_model(text: str) -> None:
    lines = text.split("\n")
    if not lines or lines[0] != "tree":
        raise _Bad("it does not start with LightGBM's 'tree' line")
    header: dict[str, str] = {}
    i = 1
    while i < len(lines) and not lines[i].startswith("Tree="):
        line = lines[i]
        i += 1
        if not line:
            continue
        key, eq, value = line.partition("=")
        if (not eq and key not in FLAG_KEYS) or key not in HEADER_KEYS or ("=" in value and key not in FREE_TEXT_KEYS):
            raise _Bad(f"header line {i} ({line[:60]!r}) is not one of LightGBM's 'key=value' lines")
        if key in header:
            raise _Bad(f"header line {i} repeats {key!r}")
        header[key] = value
    if i == len(lines):
        # Without a tree LightGBM reads the whole file as header lines, importances included.
        raise _Bad("it holds no tree ('Tree=0' line)")
    offset = len("\n".join(lines[:i]).encode("utf-8")) + 1  # where LightGBM starts counting tree_sizes

    for key in ("num_class", "label_index", "max_feature_idx", "feature_names", "feature_infos", "tree_sizes"):
        if key not in header:
            raise _Bad(f"the header has no {key}")
    if not re.fullmatch(r"v[2-4]", header.get("version", "")):
        raise _Bad(f"version is {header.get('version', '')[:20]!r}, not a LightGBM text format version (v2 to v4)")
    num_class = _int(header["num_class"], "num_class", 1, MAX_CLASSES)
    per_iteration = _int(header.get("num_tree_per_iteration", header["num_class"]), "num_tree_per_iteration", 1, MAX_CLASSES)
    if per_iteration != num_class:
        raise _Bad(f"num_tree_per_iteration is {per_iteration} but num_class is {num_class}")
    _int(header["label_index"], "label_index", *INT32)
    max_feature = _int(header["max_feature_idx"], "max_feature_idx", 0, INT32[1] - 1)
    n_features = max_feature + 1
    for key in ("feature_names", "feature_infos"):
        tokens = header[key].split(" ")
        if len(tokens) != n_features or not all(tokens):
            raise _Bad(f"{key} does not hold max_feature_idx + 1 = {n_features} names separated by single spaces")
    if "monotone_constraints" in header:
        _ints(header["monotone_constraints"], n_features, "monotone_constraints", -1, 1)
    if "objective" in header:
        _check_objective(header["objective"], num_class)

    sizes = [_int(t, f"tree_sizes[{n}]", 1, INT32[1]) for n, t in enumerate(header["tree_sizes"].split(" "))]
    if len(sizes) % per_iteration:
        raise _Bad(f"there are {len(sizes)} trees, not a multiple of num_tree_per_iteration ({per_iteration})")
    data = text.encode("utf-8")  # tree_sizes count bytes
    for t, size in enumerate(sizes):
        if offset + size > len(data):
            raise _Bad(f"tree_sizes[{t}] ({size}) runs past the end of the file")
        _check_tree_block(data[offset : offset + size], t, n_features)
        offset += size
    rest = data[offset:].decode("utf-8")
    if not rest.startswith("end of trees\n"):
        raise _Bad("the trees that tree_sizes describes are not followed by 'end of trees'")
    _check_tail(rest.split("\n"))


def _check_objective(value: str, num_class: int) -> None:
    tokens = value.split(" ")
    if tokens[0] not in OBJECTIVES:
        raise _Bad(f"objective is {tokens[0][:40]!r}, not one LightGBM knows")
    declared = None
    for token in tokens[1:]:
        name, colon, number = token.partition(":")
        if not re.fullmatch(r"[a-z_]+", name) or (colon and not _FLOAT.fullmatch(number)):
            raise _Bad(f"objective parameter {token[:40]!r} is not 'name' or 'name:number'")
        if name == "num_class":
            declared = _int(number, "objective num_class", 1, MAX_CLASSES)
    if tokens[0] in MULTICLASS_OBJECTIVES:
        # The objective turns each row's outputs into probabilities by its own num_class.
        if declared != num_class:
            raise _Bad(f"objective {tokens[0]} declares num_class {declared} but the model has {num_class}")
    elif tokens[0] != "custom" and num_class != 1:
        raise _Bad(f"objective {tokens[0]} has one output but the model has num_class {num_class}")


def _check_tree_block(block: bytes, t: int, n_features: int) -> None:
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad(f"tree_sizes[{t}] cuts a character in two") from None
    where = f"Tree={t}"
    lines = text.split("\n")
    if lines[0] != where:
        raise _Bad(f"tree_sizes puts tree {t} at a line {lines[0][:30]!r}, not {where!r}")
    fields: dict[str, str] = {}
    end = 1
    while end < len(lines) and lines[end]:
        key, eq, value = lines[end].partition("=")
        if not eq or key not in TREE_KEYS:
            raise _Bad(f"{where}: line {lines[end][:40]!r} is not one of LightGBM's tree lines")
        if key in fields:
            raise _Bad(f"{where} repeats {key}")
        if not value.isascii() or not value.isprintable():
            raise _Bad(f"{where}.{key} holds characters LightGBM never writes")
        fields[key] = value
        end += 1
    # The blank line must lie inside the block: LightGBM reads a tree's lines until a blank one,
    # into the next tree if need be.
    if end >= len(lines) - 1 or any(lines[end:]):
        raise _Bad(f"{where} does not end with an empty line, or tree_sizes[{t}] does not end where it does")
    check_tree(fields, where, n_features)


def check_tree(f: dict[str, str], where: str, n_features: int) -> None:
    for key in ("num_leaves", "num_cat", "leaf_value"):
        if key not in f:
            raise _Bad(f"{where} has no {key}")
    n_leaves = _int(f["num_leaves"], f"{where}.num_leaves", 1, MAX_LEAVES)
    n_inner = n_leaves - 1
    num_cat = _int(f["num_cat"], f"{where}.num_cat", 0, n_inner)
    linear = _int(f.get("is_linear", "0"), f"{where}.is_linear", 0, 1)
    _floats(f["leaf_value"], n_leaves, f"{where}.leaf_value")
    _floats(f.get("shrinkage", "1"), 1, f"{where}.shrinkage")
    if "leaf_count" in f:
        _ints(f["leaf_count"], n_leaves, f"{where}.leaf_count")
    if n_leaves == 1 and not linear:
        return  # LightGBM reads nothing else of a one-leaf tree (it writes the other lines empty)
    if "leaf_weight" in f:
        _floats(f["leaf_weight"], n_leaves, f"{where}.leaf_weight")
    if linear:
        _check_linear(f, where, n_leaves, n_features)
    if n_leaves == 1:
        return

    for key in ("left_child", "right_child", "split_feature", "threshold"):
        if key not in f:
            raise _Bad(f"{where} has no {key}")
    left = _ints(f["left_child"], n_inner, f"{where}.left_child")
    right = _ints(f["right_child"], n_inner, f"{where}.right_child")
    _ints(f["split_feature"], n_inner, f"{where}.split_feature", 0, n_features - 1)  # a split reads the row at this index
    thresholds = _floats(f["threshold"], n_inner, f"{where}.threshold")
    decision = _ints(f["decision_type"], n_inner, f"{where}.decision_type", 0, 15) if "decision_type" in f else [0] * n_inner
    for key in ("split_gain", "internal_value", "internal_weight"):
        if key in f:
            _floats(f[key], n_inner, f"{where}.{key}")
    if "internal_count" in f:
        _ints(f["internal_count"], n_inner, f"{where}.internal_count")

    if num_cat:
        for key in ("cat_boundaries", "cat_threshold"):
            if key not in f:
                raise _Bad(f"{where} has num_cat {num_cat} but no {key}")
        bounds = _ints(f["cat_boundaries"], num_cat + 1, f"{where}.cat_boundaries", 0, INT32[1])
        if bounds[0] != 0 or any(b > a for b, a in zip(bounds, bounds[1:], strict=False)):
            raise _Bad(f"{where}.cat_boundaries do not rise from 0")
        _ints(f["cat_threshold"], bounds[-1], f"{where}.cat_threshold", *UINT32)
    for node in range(n_inner):
        if decision[node] & CATEGORICAL_MASK:
            # A categorical split's threshold is its index into cat_boundaries.
            th = thresholds[node]
            if not (math.isfinite(th) and th == int(th) and 0 <= th < num_cat):
                raise _Bad(f"{where}.threshold[{node}] is {th}, not a category set of the tree's {num_cat}")

    # A proper binary tree: from the root, each split leads to two nodes seen nowhere else; every
    # split and every leaf is reached exactly once; no deeper than MAX_DEPTH.
    seen_inner = [False] * n_inner
    seen_leaf = [False] * n_leaves
    seen_inner[0] = True
    stack = [(0, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _Bad(f"{where} is deeper than {MAX_DEPTH} splits")
        for side, child in (("left_child", left[node]), ("right_child", right[node])):
            if child >= 0:
                if not 1 <= child < n_inner:
                    raise _Bad(f"{where}.{side}[{node}] is {child}, outside the tree's {n_inner} splits")
                if seen_inner[child]:
                    raise _Bad(f"{where} split {child} is reached twice (a cycle or a shared child)")
                seen_inner[child] = True
                stack.append((child, depth + 1))
            else:
                leaf = ~child
                if leaf >= n_leaves:
                    raise _Bad(f"{where}.{side}[{node}] is {child}, leaf {leaf} of a tree of {n_leaves} leaves")
                if seen_leaf[leaf]:
                    raise _Bad(f"{where} leaf {leaf} is reached twice")
                seen_leaf[leaf] = True
    if not all(seen_inner) or not all(seen_leaf):
        raise _Bad(f"{where} has splits or leaves that are not reachable from the root")


def _check_linear(f: dict[str, str], where: str, n_leaves: int, n_features: int) -> None:
    if "leaf_const" in f:
        _floats(f["leaf_const"], n_leaves, f"{where}.leaf_const")
    if "num_features" not in f:
        return  # no leaf has a linear part
    counts = _ints(f["num_features"], n_leaves, f"{where}.num_features", 0, n_features)
    total = sum(counts)
    if total:
        for key in ("leaf_features", "leaf_coeff"):
            if key not in f:
                raise _Bad(f"{where} has linear leaves but no {key}")
    if "leaf_features" in f:
        _ints(f["leaf_features"], total, f"{where}.leaf_features", 0, n_features - 1)
    if "leaf_coeff" in f:
        _floats(f["leaf_coeff"], total, f"{where}.leaf_coeff")


def _check_tail(lines: list[str]) -> None:
    """After the trees: feature importances, the ``parameters:`` section (LightGBM turns it into
    JSON by splitting each line on ``:``), and the Python package's ``pandas_categorical`` line."""
    in_parameters = False
    seen_parameters = False
    for line in lines:
        if line == "parameters:":
            if seen_parameters:
                raise _Bad("the file has two 'parameters:' sections")
            in_parameters = seen_parameters = True
        elif line == "end of parameters":
            in_parameters = False
        elif in_parameters and line and not _PARAMETER.fullmatch(line):
            raise _Bad(f"parameter line {line[:60]!r} is not '[name: value]'")
        elif line.strip().startswith("pandas_categorical:"):  # the Python package reads the last line, stripped
            _check_pandas_categorical(line.strip()[len("pandas_categorical:") :])
    if in_parameters:
        raise _Bad("the 'parameters:' section has no 'end of parameters'")


def _check_pandas_categorical(value: str) -> None:
    try:
        cats = json.loads(value)
    except ValueError:
        raise _Bad("pandas_categorical is not JSON") from None
    if cats is None:
        return
    if not isinstance(cats, list) or not all(
        isinstance(column, list) and all(isinstance(v, (str, int, float, bool)) for v in column) for column in cats
    ):
        raise _Bad("pandas_categorical is not a list of lists of category values")

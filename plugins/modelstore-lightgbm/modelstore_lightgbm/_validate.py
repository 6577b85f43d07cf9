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
anything else is a :class:`CorruptArtifactError` naming the file and the check. The numbers of
all trees are checked a key at a time, with one regular expression and numpy (a lightgbm
dependency), so that the checks cost little next to LightGBM's own parse.
"""

from __future__ import annotations

import json
import math
import re
from itertools import repeat

import numpy as np

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
#: Lines of numbers, separated by "\n" (every line of one key, one per tree): integers as
#: :data:`_INT` and numbers as :data:`_FLOAT` allow, one space between them. Possessive: no backtracking.
_INT_TOKEN = r"-?+[0-9]{1,11}+"
_FLOAT_TOKEN = r"(?>[-+]?+(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][-+]?+[0-9]++)?+|[-+]?+(?:inf|nan|Inf|NaN|INF|NAN))"
_INT_LINES = re.compile(rf"(?:{_INT_TOKEN}(?: {_INT_TOKEN})*+)?+(?:\n(?:{_INT_TOKEN}(?: {_INT_TOKEN})*+)?+)*+")
_FLOAT_LINES = re.compile(rf"(?:{_FLOAT_TOKEN}(?: {_FLOAT_TOKEN})*+)?+(?:\n(?:{_FLOAT_TOKEN}(?: {_FLOAT_TOKEN})*+)?+)*+")
#: :data:`_FLOAT_LINES` for the numbers LightGBM writes (``-1.25e-05``): a subset of what it
#: accepts that the expression engine checks faster; where it fails, :data:`_FLOAT_LINES` decides.
_PLAIN_FLOAT_TOKEN = r"-?+[0-9]++(?:\.[0-9]++)?+(?:e[-+][0-9]++)?+"
_PLAIN_FLOAT_LINES = re.compile(
    rf"(?:{_PLAIN_FLOAT_TOKEN}(?: {_PLAIN_FLOAT_TOKEN})*+)?+(?:\n(?:{_PLAIN_FLOAT_TOKEN}(?: {_PLAIN_FLOAT_TOKEN})*+)?+)*+"
)
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
    end = offset + sum(sizes)
    trees = _all_tree_lines(data[offset:end], sizes) if end <= len(data) else None
    if trees is None:  # the same checks a tree at a time, which name what is wrong
        trees = []
        for t, size in enumerate(sizes):
            if offset + size > len(data):
                raise _Bad(f"tree_sizes[{t}] ({size}) runs past the end of the file")
            trees.append(_tree_lines(data[offset : offset + size], t))
            offset += size
    offset = end
    check_trees(trees, n_features)
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


#: The bytes LightGBM writes in a tree: printable ASCII and "\n".
_TREE_TEXT = bytes(range(0x20, 0x7F)) + b"\n"


def _all_tree_lines(section: bytes, sizes: list[int]) -> list[dict[str, str]] | None:
    """What :func:`_tree_lines` returns for every tree (``section``: the bytes ``tree_sizes``
    cover, ``sizes`` each tree's), read in one pass over the whole section; ``None`` where any
    tree is not as :func:`_tree_lines` accepts it (which then names what is wrong).

    Each tree's block must be its ``Tree=t`` line, ``key=value`` lines of printable ASCII with
    keys from :data:`TREE_KEYS`, none repeated, then one or more empty lines: so every block
    starts and ends at a line boundary of the whole section, and the section is split once."""
    if section.translate(None, _TREE_TEXT):  # what is left is what LightGBM never writes there
        return None
    lines = section.decode("ascii").split("\n")
    lengths = np.fromiter(map(len, lines), np.int64, len(lines))
    line_start = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))  # each line's offset in the section
    block_start = np.concatenate(([0], np.cumsum(sizes)))  # each tree's offset, then the section's end
    first = np.searchsorted(line_start, block_start)  # each block's first line (the end's: the "" after the last "\n")
    if (first >= len(lines)).any() or not np.array_equal(line_start[np.minimum(first, len(lines) - 1)], block_start):
        return None  # a block that does not start at a line, or a section that does not end with "\n"
    empty = np.concatenate(([0], np.cumsum(lengths == 0)))  # empty lines before each line
    head, after = first[:-1], first[1:]
    blank = empty[after] - empty[head + 1]  # the empty lines of each block, after its Tree= line
    # At least one, and all of them at the block's end (LightGBM reads a tree's lines up to the first).
    if (blank < 1).any() or not np.array_equal(empty[after] - empty[after - blank], blank):
        return None
    if [lines[i] for i in head.tolist()] != [f"Tree={t}" for t in range(len(sizes))]:
        return None
    trees = []
    for a, b in zip((head + 1).tolist(), (after - blank).tolist(), strict=True):
        try:
            fields = dict(map(str.split, lines[a:b], repeat("=")))
        except ValueError:  # a line with no "=", or more than one
            return None
        if len(fields) != b - a or not fields.keys() <= TREE_KEYS:
            return None
        trees.append(fields)
    return trees


def _tree_lines(block: bytes, t: int) -> dict[str, str]:
    """The ``key=value`` lines of tree ``t`` (its ``tree_sizes`` bytes), as LightGBM reads them."""
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
    return fields


def check_trees(trees: list[dict[str, str]], n_features: int) -> None:
    """Every tree's lines (``trees[t]`` those of ``Tree=t``), as LightGBM reads and follows them:
    the numbers of every array, index ranges, and that each tree is a proper binary tree. The
    numbers of all trees are checked at once, a key at a time (:class:`_Column`)."""
    for t, f in enumerate(trees):
        for key in ("num_leaves", "num_cat", "leaf_value"):
            if key not in f:
                raise _Bad(f"Tree={t} has no {key}")
    n_leaves = _tree_ints(trees, "num_leaves", 1, MAX_LEAVES)
    n_inner = n_leaves - 1
    num_cat = _tree_ints(trees, "num_cat", 0, n_inner)
    linear = _tree_ints(trees, "is_linear", 0, 1, default="0").astype(bool)
    every = np.ones(len(trees), dtype=bool)
    _Column(trees, "leaf_value", every, n_leaves)
    _Column(trees, "shrinkage", every, 1, default="1")
    _Column(trees, "leaf_count", every, n_leaves, integers=True, optional=True)
    # LightGBM reads nothing else of a one-leaf tree that is not linear (it writes the other lines empty).
    rest = (n_leaves > 1) | linear
    _Column(trees, "leaf_weight", rest, n_leaves, optional=True)
    for t in np.flatnonzero(linear):
        _check_linear(trees[t], f"Tree={t}", int(n_leaves[t]), n_features)

    split = n_leaves > 1
    if not split.any():
        return
    for t in np.flatnonzero(split):
        for key in ("left_child", "right_child", "split_feature", "threshold"):
            if key not in trees[t]:
                raise _Bad(f"Tree={t} has no {key}")
    left = _Column(trees, "left_child", split, n_inner, integers=True)
    right = _Column(trees, "right_child", split, n_inner, integers=True)
    _Column(trees, "split_feature", split, n_inner, integers=True, low=0, high=n_features - 1)  # a split reads the row at this index
    _Column(trees, "threshold", split, n_inner)
    decision = _Column(trees, "decision_type", split, n_inner, integers=True, low=0, high=15, optional=True)
    for key in ("split_gain", "internal_value", "internal_weight"):
        _Column(trees, key, split, n_inner, optional=True)
    _Column(trees, "internal_count", split, n_inner, integers=True, optional=True)

    categorical = (decision.values & CATEGORICAL_MASK) != 0
    # The split trees' categorical splits, counted per tree (their splits lie end to end in ``decision``).
    has_categorical = np.zeros(len(trees), dtype=bool)
    has_categorical[split] = np.add.reduceat(categorical, decision.start[split]) > 0 if len(categorical) else False
    for t in np.flatnonzero(split & ((num_cat > 0) | has_categorical)):
        at = categorical[decision.start[t] :][: n_inner[t]]
        _check_categorical(trees[t], f"Tree={t}", int(n_inner[t]), int(num_cat[t]), at)
    _check_structure(left, right, n_leaves[split], np.flatnonzero(split))


#: One integer per line (each tree's line of a key, one per tree): what :func:`_int` accepts.
_INT_PER_LINE = re.compile(r"-?+[0-9]{1,11}+(?:\n-?+[0-9]{1,11}+)*+")


def _tree_ints(trees: list[dict[str, str]], key: str, low: int, high: int | np.ndarray, default: str | None = None) -> np.ndarray:
    """Each tree's ``key`` line (``default`` where a tree has none) as one integer in ``[low, high]``
    (``high``: one bound, or one per tree), as :func:`_int` checks it: all trees at once."""
    lines = [f.get(key, default) for f in trees]
    highs = np.broadcast_to(np.asarray(high, dtype=np.int64), (len(trees),))
    joined = "\n".join(lines) if None not in lines else ""
    if not _INT_PER_LINE.fullmatch(joined):  # a tree at a time, naming the one that is wrong
        return np.array([_int(line, f"Tree={t}.{key}", low, int(highs[t])) for t, line in enumerate(lines)], dtype=np.int64)
    values = np.fromstring(joined.replace("\n", " "), dtype=np.int64, sep=" ")
    if len(values) != len(trees):  # cannot be, for text the expression took
        raise _Bad(f"{key} holds {len(values)} integers, not one per tree")
    bad = (values < low) | (values > highs)
    if bad.any():
        t = int(np.argmax(bad))
        raise _Bad(f"Tree={t}.{key} is {int(values[t])}, outside [{low}, {int(highs[t])}]")
    return values


def _check_categorical(f: dict[str, str], where: str, n_inner: int, num_cat: int, categorical: np.ndarray) -> None:
    if num_cat:
        for key in ("cat_boundaries", "cat_threshold"):
            if key not in f:
                raise _Bad(f"{where} has num_cat {num_cat} but no {key}")
        bounds = _ints(f["cat_boundaries"], num_cat + 1, f"{where}.cat_boundaries", 0, INT32[1])
        if bounds[0] != 0 or any(b > a for b, a in zip(bounds, bounds[1:], strict=False)):
            raise _Bad(f"{where}.cat_boundaries do not rise from 0")
        _ints(f["cat_threshold"], bounds[-1], f"{where}.cat_threshold", *UINT32)
    thresholds = _floats(f["threshold"], n_inner, f"{where}.threshold")
    for node in np.flatnonzero(categorical):
        # A categorical split's threshold is its index into cat_boundaries.
        th = thresholds[node]
        if not (math.isfinite(th) and th == int(th) and 0 <= th < num_cat):
            raise _Bad(f"{where}.threshold[{node}] is {th}, not a category set of the tree's {num_cat}")


def _check_structure(left: _Column, right: _Column, n_leaves: np.ndarray, tree_ids: np.ndarray) -> None:
    """Each tree a proper binary tree: from the root, each split leads to two nodes seen nowhere
    else; every split and every leaf is reached exactly once; no deeper than MAX_DEPTH. ``left``
    and ``right`` hold the split trees' (``tree_ids``) children end to end.

    A child ``c >= 0`` is split ``c`` of the same tree, ``c < 0`` is leaf ``~c``. Once every split
    but the root and every leaf is named exactly once, what is left to find is a loop of splits
    that the root does not reach: each split's chain of parents must end at the root, followed by
    pointer doubling (log2(depth) passes over all splits), which also gives each split's depth."""
    n_inner = n_leaves - 1
    inner_start = np.concatenate(([0], np.cumsum(n_inner)[:-1]))
    leaf_start = np.concatenate(([0], np.cumsum(n_leaves)[:-1]))
    tree_of = np.repeat(np.arange(len(n_inner)), n_inner)  # the (split) tree of each split, end to end
    local = np.arange(len(tree_of)) - inner_start[tree_of]

    def fail(bad: np.ndarray, message: str) -> None:
        if bad.any():
            i = int(np.argmax(bad))
            t = int(tree_of[i])
            raise _Bad(
                message.format(where=f"Tree={int(tree_ids[t])}", node=int(local[i]), n_inner=int(n_inner[t]), n_leaves=int(n_leaves[t]))
            )

    for side, child in (("left_child", left.values), ("right_child", right.values)):
        fail(
            (child >= 0) & ((child < 1) | (child >= n_inner[tree_of])),
            "{where}." + side + "[{node}] is outside the tree's {n_inner} splits",
        )
        fail((child < 0) & (~child >= n_leaves[tree_of]), "{where}." + side + "[{node}] is a leaf outside the tree's {n_leaves} leaves")
    children = np.concatenate((left.values, right.values))
    parent = np.concatenate((np.arange(len(tree_of)), np.arange(len(tree_of))))
    to_split = children >= 0
    split_child = children[to_split] + inner_start[tree_of[parent[to_split]]]
    named = np.bincount(split_child, minlength=len(tree_of))
    root = local == 0
    fail(named > 1, "{where} split {node} is reached twice (a cycle or a shared child)")
    fail(root & (named > 0), "{where} split {node}, the root, is the child of another")
    fail(~root & (named == 0), "{where} split {node} is not reachable from the root")
    leaf_of = ~children[~to_split] + leaf_start[tree_of[parent[~to_split]]]
    leaves_named = np.bincount(leaf_of, minlength=int(n_leaves.sum()))
    if (leaves_named != 1).any():
        i = int(np.argmax(leaves_named != 1))
        t = int(np.searchsorted(leaf_start, i, side="right") - 1)
        how = "reached twice" if leaves_named[i] > 1 else "not reachable from the root"
        raise _Bad(f"Tree={int(tree_ids[t])} leaf {i - int(leaf_start[t])} is {how}")
    up = np.arange(len(tree_of))
    up[split_child] = parent[to_split]  # each split's parent; the roots point at themselves
    depth = (~root).astype(np.int64)  # splits between a split and where ``up`` points
    for _ in range(int(n_inner.max()).bit_length() + 1):
        depth = depth + depth[up]
        higher = up[up]
        if np.array_equal(higher, up):
            break
        up = higher
    fail(up != inner_start[tree_of], "{where} split {node} is not reachable from the root (a loop of splits)")
    fail(depth + 1 > MAX_DEPTH, "{where} is deeper than " + str(MAX_DEPTH) + " splits")


class _Column:
    """One key's numbers in the selected trees (``chosen``: a mask), end to end, checked: tree ``t``'s
    line must hold ``expected[t]`` numbers (integers in ``[low, high]`` if ``integers``, else
    numbers as LightGBM writes them). A tree without the line reads ``default``; with
    ``optional``, it may have none (its numbers are zeros). ``values`` holds the integers (zeros
    for numbers), ``start[t]`` where tree ``t``'s begin.

    One regular expression checks every line of the key at once; where it fails (a bad number, or
    runs of spaces that linear trees' lines may have) the trees' lines are read one by one by
    :func:`_ints` and :func:`_floats`, which name the tree and the value that is wrong."""

    def __init__(
        self,
        trees: list[dict[str, str]],
        key: str,
        chosen: np.ndarray,
        expected: np.ndarray | int,
        *,
        integers: bool = False,
        low: int = INT32[0],
        high: int = INT32[1],
        default: str | None = None,
        optional: bool = False,
    ):
        ids = np.flatnonzero(chosen)
        counts = np.broadcast_to(np.asarray(expected, dtype=np.int64), chosen.shape)[ids]
        lines = [trees[t].get(key, default) for t in ids.tolist()]
        present = np.array([line is not None for line in lines], dtype=bool)
        if not optional and not present.all():
            raise _Bad(f"Tree={int(ids[np.argmin(present)])} has no {key}")
        self.start = np.zeros(len(trees), dtype=np.int64)
        self.start[ids] = np.concatenate(([0], np.cumsum(counts)[:-1]))
        given, given_ids, given_counts = [line for line in lines if line is not None], ids[present], counts[present]
        joined = "\n".join(given)
        if _INT_LINES.fullmatch(joined) if integers else _PLAIN_FLOAT_LINES.fullmatch(joined) or _FLOAT_LINES.fullmatch(joined):
            spaces = np.fromiter(map(str.count, given, [" "] * len(given)), np.int64, len(given))
            tokens = np.where(np.fromiter(map(len, given), np.int64, len(given)) > 0, spaces + 1, 0)
            wrong = tokens != given_counts
            if wrong.any():
                i = int(np.argmax(wrong))
                raise _Bad(f"Tree={int(given_ids[i])}.{key} has {int(tokens[i])} values, not {int(given_counts[i])}")
            values = np.fromstring(joined.replace("\n", " "), dtype=np.int64, sep=" ") if integers and joined else np.zeros(0, np.int64)
            if integers and len(values) != int(given_counts.sum()):  # cannot be, for text the expression took
                raise _Bad(f"{key} holds {len(values)} integers, not the {int(given_counts.sum())} its lines count")
        else:
            read = _ints if integers else _floats
            parts = [read(line, int(n), f"Tree={t}.{key}") for t, line, n in zip(given_ids, given, given_counts, strict=True)]
            values = np.array([v for part in parts for v in part], dtype=np.int64 if integers else np.float64)
        self.values = np.zeros(int(counts.sum()), dtype=np.int64)  # a tree without the line: zeros
        if integers:
            self.values[np.repeat(present, counts)] = values
            bad = (self.values < low) | (self.values > high)
            if bad.any():
                i = int(np.argmax(bad))
                t = int(np.repeat(ids, counts)[i])
                raise _Bad(f"Tree={t}.{key}[{i - int(self.start[t])}] is {int(self.values[i])}, outside [{low}, {high}]")


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

"""Checks of the arrays that scikit-learn's compiled code indexes without bounds checks.

A ``model.skops`` file is untrusted input. skops audits the *types* it contains; for the types
listed in :data:`CHECKED_TYPES` this module also checks their *contents*, so that they can be
trusted by default:

* ``sklearn.tree._tree.Tree`` (decision trees, forests, extra trees, gradient boosting, isolation
  forests): checked on skops's loaded state, before ``Tree(...)`` and ``Tree.__setstate__`` run
  (the constructor copies ``n_classes[:n_outputs]`` and ``__setstate__`` copies the node arrays);
* ``...predictor.TreePredictor`` (HistGradientBoosting): its ``nodes`` and bitsets, before the
  object is built;
* ``sklearn.neighbors.KDTree`` / ``BallTree`` (nearest neighbours with a tree index) and the
  plain distance metrics they hold (Euclidean, Manhattan, Chebyshev, Minkowski): the data,
  index permutation, node ranges, heap layout and bounds, and the metric's weights, before the
  tree is built.

Then, on the built model and before it is returned, the links between objects that compiled code
relies on (a tree's ``n_features`` against its estimator's ``n_features_in_``, a gradient
boosting's ``estimators_`` shape against ``n_trees_per_iteration_``...).

Each failure is a :class:`CorruptArtifactError` naming the file and the check.
"""

from __future__ import annotations

import math
from typing import Any

from modelstore_core.plugin_api import CorruptArtifactError

TREE = "sklearn.tree._tree.Tree"
TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
BINARY_TREES = {"sklearn.neighbors._kd_tree.KDTree": 2, "sklearn.neighbors._ball_tree.BallTree": 1}  # -> node_bounds rows
#: Metrics whose state is (p, weights, unused matrix): checked with the tree that holds them.
PLAIN_METRICS = tuple(
    f"sklearn.metrics._dist_metrics.{name}{bits}"
    for name in ("EuclideanDistance", "ManhattanDistance", "ChebyshevDistance", "MinkowskiDistance")
    for bits in ("64", "32")
)

#: The types whose contents this module checks: trusted by default.
CHECKED_TYPES: tuple[str, ...] = (TREE, TREE_PREDICTOR, *BINARY_TREES, *PLAIN_METRICS)

_LEAF = -1  # sklearn.tree._tree.TREE_LEAF


class _Check:
    def __init__(self, file: str, where: str):
        self.file, self.where = file, where

    def fail(self, problem: str) -> CorruptArtifactError:
        return CorruptArtifactError(self.file, f"{self.where}: {problem}")

    def require(self, ok: Any, problem: str) -> None:
        if not ok:
            raise self.fail(problem)

    # The messages are formatted only on failure: printing a tree's structured dtype costs more
    # than checking its nodes (these run once per tree, a hundred times for a forest).

    def integer(self, value: Any, name: str, low: int, high: float = math.inf) -> int:
        import numpy as np

        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
            raise self.fail(f"{name} is a {type(value).__name__}, not an integer")
        if not low <= int(value) <= high:
            raise self.fail(f"{name} is {int(value)}, outside [{low}, {high}]")
        return int(value)

    def array(self, value: Any, name: str, dtype: Any, ndim: int) -> Any:
        import numpy as np

        if type(value) is not np.ndarray:
            raise self.fail(f"{name} is a {type(value).__name__}, not a numpy array")
        if value.dtype != dtype:
            raise self.fail(f"{name} has dtype {value.dtype}, expected {np.dtype(dtype)}")
        if value.ndim != ndim:
            raise self.fail(f"{name} has {value.ndim} dimensions, expected {ndim}")
        if not value.flags.c_contiguous:
            raise self.fail(f"{name} is not C-contiguous")
        return value

    def first(self, bad: Any, problem: Any) -> None:
        """Fail with ``problem(i)`` for the first index ``i`` where the boolean array ``bad`` is set."""
        import numpy as np

        if bad.any():
            raise self.fail(problem(int(np.argmax(bad))))


# --- before construction: the loaded state of one object ----------------------------------


def check_tree(file: str, args: Any, state: Any) -> None:
    """``Tree(n_features, n_classes, n_outputs)`` then ``__setstate__(state)``, as skops rebuilds it."""
    import numpy as np
    from sklearn.tree._tree import NODE_DTYPE

    c = _Check(file, "sklearn.tree._tree.Tree")
    c.require(isinstance(args, tuple) and len(args) == 3, "its constructor arguments are not (n_features, n_classes, n_outputs)")
    n_features = c.integer(args[0], "n_features", 1, 2**31 - 1)
    n_outputs = c.integer(args[2], "n_outputs", 1, 2**20)
    n_classes = args[1]
    c.require(
        type(n_classes) is np.ndarray and n_classes.dtype.kind in "iu" and n_classes.ndim == 1, "n_classes is not a 1-d integer array"
    )
    if n_classes.shape[0] != n_outputs:
        raise c.fail(f"n_classes has {n_classes.shape[0]} entries for n_outputs={n_outputs}")
    c.require(bool((n_classes >= 1).all()), "n_classes has an entry below 1")
    max_n_classes = int(n_classes.max())

    c.require(
        isinstance(state, dict) and {"max_depth", "node_count", "nodes", "values"} <= set(state),
        "its state is not a dict with max_depth, node_count, nodes and values",
    )
    nodes = c.array(state["nodes"], "nodes", NODE_DTYPE, 1)
    capacity = nodes.shape[0]
    node_count = c.integer(state["node_count"], "node_count", 1, capacity)
    if node_count != capacity:
        raise c.fail(f"node_count is {node_count} but nodes has {capacity} rows")
    c.integer(state["max_depth"], "max_depth", 0, node_count)
    values = c.array(state["values"], "values", np.float64, 3)
    expected = (node_count, n_outputs, max_n_classes)
    if values.shape != expected:
        raise c.fail(f"values has shape {values.shape}, expected (node_count, n_outputs, max_n_classes) = {expected}")

    left, right, feature = nodes["left_child"], nodes["right_child"], nodes["feature"]
    index = np.arange(node_count)
    leaf = left == _LEAF
    c.require(bool((right[leaf] == _LEAF).all()), "a node has left_child -1 but a right_child (-1 only as a leaf pair)")
    c.require(bool((right[~leaf] != _LEAF).all()), "a node has right_child -1 but a left_child (-1 only as a leaf pair)")
    inner = ~leaf
    for name, child in (("left_child", left), ("right_child", right)):
        c.first(
            inner & ((child <= index) | (child >= node_count)),
            lambda i, name=name, child=child: (
                f"node {i} has {name} {int(child[i])}: children must come after their parent and below node_count={node_count}"
            ),
        )
    c.first(
        inner & ((feature < 0) | (feature >= n_features)),
        lambda i: f"node {i} splits on feature {int(feature[i])}, outside [0, n_features={n_features})",
    )
    c.require(bool(np.isfinite(nodes["threshold"][inner]).all()), "a split node has a threshold that is not finite")


def check_tree_predictor(file: str, state: Any) -> None:
    """The attributes of a HistGradientBoosting ``TreePredictor`` (set without ``__init__``)."""
    import numpy as np
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE, X_BITSET_INNER_DTYPE

    c = _Check(file, TREE_PREDICTOR)
    c.require(
        isinstance(state, dict) and {"nodes", "binned_left_cat_bitsets", "raw_left_cat_bitsets"} <= set(state),
        "its state lacks nodes or its categorical bitsets",
    )
    nodes = c.array(state["nodes"], "nodes", PREDICTOR_RECORD_DTYPE, 1)
    n = nodes.shape[0]
    c.require(n >= 1, "nodes is empty")
    bitsets = {}
    for name in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        bitsets[name] = c.array(state[name], name, X_BITSET_INNER_DTYPE, 2)
        c.require(bitsets[name].shape[1] == 8, f"{name} has shape {bitsets[name].shape}, expected (n, 8)")
    index = np.arange(n)
    inner = nodes["is_leaf"] == 0
    c.require(bool(np.isin(nodes["is_leaf"], (0, 1)).all()), "is_leaf is not 0 or 1")
    for name in ("left", "right"):
        child = nodes[name].astype(np.int64)
        bad = inner & ((child <= index) | (child >= n))
        c.require(
            not bad.any(),
            f"node {int(np.argmax(bad))} has {name} {int(child[np.argmax(bad)])}: children must come after their parent and below {n}",
        )
    bad = inner & (nodes["feature_idx"] < 0)
    c.require(not bad.any(), f"node {int(np.argmax(bad))} has a negative feature_idx")
    categorical = inner & (nodes["is_categorical"] != 0)
    for name, table in bitsets.items():
        bad = categorical & (nodes["bitset_idx"] >= table.shape[0])
        c.require(
            not bad.any(),
            f"node {int(np.argmax(bad))} has bitset_idx {int(nodes['bitset_idx'][np.argmax(bad)])}, "
            f"beyond the {table.shape[0]} rows of {name}",
        )


def check_binary_tree(file: str, name: str, state: Any) -> None:
    """``KDTree``/``BallTree.__setstate__(state)``: the arrays its queries index without bounds checks."""
    import numpy as np

    c = _Check(file, name)
    c.require(isinstance(state, tuple) and len(state) == 13, "its state is not the 13-item tuple scikit-learn writes")
    data, idx_array, node_data, node_bounds = state[:4]
    leaf_size, n_levels, n_nodes, *counters = state[4:11]
    metric, sample_weight = state[11], state[12]
    data = c.array(data, "data", np.float64, 2)
    n_samples, n_features = data.shape
    c.require(n_samples >= 1 and n_features >= 1, f"data has shape {data.shape}")
    idx_array = c.array(idx_array, "idx_array", np.intp, 1)
    c.require(
        idx_array.shape[0] == n_samples and bool((np.sort(idx_array) == np.arange(n_samples)).all()),
        f"idx_array is not a permutation of the {n_samples} samples",
    )
    c.integer(leaf_size, "leaf_size", 1, 2**31 - 1)
    levels = c.integer(n_levels, "n_levels", 1, 62)
    nodes = c.integer(n_nodes, "n_nodes", 1, 2**levels - 1)
    for i, counter in enumerate(counters):
        c.integer(counter, ("n_trims", "n_leaves", "n_splits", "n_calls")[i], 0, 2**62)
    c.require(
        type(node_data) is np.ndarray
        and node_data.ndim == 1
        and node_data.shape[0] == nodes
        and node_data.dtype.names == ("idx_start", "idx_end", "is_leaf", "radius"),
        f"node_data is not {nodes} records of (idx_start, idx_end, is_leaf, radius)",
    )
    start, end, leaf = (node_data[f].astype(np.int64) for f in ("idx_start", "idx_end", "is_leaf"))
    bad = (start < 0) | (start > end) | (end > n_samples)
    c.require(not bad.any(), f"node {int(np.argmax(bad))} covers samples outside [0, {n_samples}]")
    c.require(bool(np.isin(leaf, (0, 1)).all()), "is_leaf is not 0 or 1")
    inner = np.flatnonzero(leaf == 0)
    c.require(
        not inner.size or 2 * int(inner.max()) + 2 < nodes,
        f"node {int(inner.max()) if inner.size else 0} is not a leaf but its children would be past n_nodes={nodes}",
    )
    c.require(bool(np.isfinite(node_data["radius"]).all()), "a node radius is not finite")
    bounds = c.array(node_bounds, "node_bounds", np.float64, 3)
    rows = BINARY_TREES[name]
    c.require(bounds.shape == (rows, nodes, n_features), f"node_bounds has shape {bounds.shape}, expected {(rows, nodes, n_features)}")
    if sample_weight is not None:
        weights = c.array(sample_weight, "sample_weight", np.float64, 1)
        c.require(weights.shape[0] == n_samples, f"sample_weight has {weights.shape[0]} entries for {n_samples} samples")
    check_metric(file, metric, n_features)


def check_metric(file: str, metric: Any, n_features: int) -> None:
    """A plain distance metric: a positive ``p`` and, for Minkowski (the only one that reads them),
    weights for exactly ``n_features`` or none."""
    import numpy as np

    name = f"{type(metric).__module__}.{type(metric).__qualname__}"
    if name not in PLAIN_METRICS:
        return  # not trusted by default: it only got here because the caller named it in trusted_types=
    c = _Check(file, name)
    p, vec, _ = metric.__getstate__()
    c.require(isinstance(p, float) and p > 0 and (math.isfinite(p) or "Chebyshev" in name), f"p is {p!r}")
    vec = c.array(np.asarray(vec), "w", np.float64, 1)
    if "Minkowski" in name:
        c.require(vec.shape[0] in (0, n_features), f"w has {vec.shape[0]} weights for {n_features} features")


def check_loaded_state(file: str, root: Any) -> None:
    """Walk skops's audited node tree and check each :data:`CHECKED_TYPES` object's state before
    anything is built. Building the state (plain dicts, tuples, numbers and ``.npy`` arrays,
    already audited) is what skops would do next anyway; nodes are memoized, so the model reuses
    what was built here."""
    from skops.io._audit import Node

    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if not isinstance(node, Node) or id(node) in seen:
            continue
        seen.add(id(node))
        name = f"{node.module_name}.{node.class_name}"
        if name == TREE:
            check_tree(file, node.children["args"].construct(), node.children["attrs"].construct())
            continue  # its children were just checked as a whole
        if name == TREE_PREDICTOR:
            attrs = node.children.get("attrs")
            check_tree_predictor(file, attrs.construct() if attrs is not None else None)
            continue
        if name in BINARY_TREES:
            attrs = node.children.get("attrs")
            check_binary_tree(file, name, attrs.construct() if attrs is not None else None)
            continue  # its metric was checked with it
        for child in node.children.values():
            if isinstance(child, list):
                stack.extend(child)
            elif isinstance(child, dict):
                stack.extend(child.values())
            else:
                stack.append(child)


# --- after construction: links between objects, before the model is returned --------------


def check_model(file: str, model: Any) -> None:
    """The invariants between objects that compiled code assumes on ``predict``."""
    import sys

    import numpy as np
    from sklearn.base import BaseEstimator

    # Not imported for a model without trees: no Tree can exist before its module is imported.
    tree_module = sys.modules.get("sklearn.tree._tree")
    Tree = tree_module.Tree if tree_module is not None else ()  # noqa: N806 - the class, or no class for isinstance
    seen: set[int] = set()
    stack = [model]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
        elif isinstance(obj, BaseEstimator):
            _check_estimator(file, obj, Tree)
            stack.extend(vars(obj).values())


def _check_estimator(file: str, est: Any, tree_type: type) -> None:
    import numpy as np

    c = _Check(file, type(est).__name__)
    n_in = getattr(est, "n_features_in_", None)
    tree = getattr(est, "tree_", None)
    if isinstance(tree, tree_type):
        c.require(
            n_in is not None and int(n_in) == tree.n_features, f"n_features_in_ is {n_in} but its tree_ has n_features={tree.n_features}"
        )
    module = type(est).__module__
    members = getattr(est, "estimators_", None)
    if module in ("sklearn.ensemble._forest", "sklearn.ensemble._gb", "sklearn.ensemble._iforest") and members is not None:
        # These call their trees' compiled code on their own validated X, skipping the trees' checks.
        if module == "sklearn.ensemble._gb":
            c.require(isinstance(members, np.ndarray) and members.ndim == 2, "estimators_ is not a 2-d array")
            k = getattr(est, "n_trees_per_iteration_", None)
            c.require(members.shape[1] == k, f"estimators_ has {members.shape[1]} columns but n_trees_per_iteration_ is {k}")
            members = members.ravel().tolist()
        features = getattr(est, "estimators_features_", None) if module == "sklearn.ensemble._iforest" else None
        subsample = features is not None and getattr(est, "_max_features", n_in) != n_in
        c.require(
            isinstance(members, list) and (features is None or len(features) == len(members)),
            "estimators_ does not match estimators_features_",
        )
        for i, member in enumerate(members):
            width = len(features[i]) if subsample else n_in
            member_tree = getattr(member, "tree_", None)
            c.require(
                isinstance(member_tree, tree_type) and member_tree.n_features == width,
                f"estimators_[{i}] does not hold a tree over {width} features",
            )
    predictors = getattr(est, "_predictors", None)
    if module == "sklearn.ensemble._hist_gradient_boosting.gradient_boosting" and predictors is not None:
        k = getattr(est, "n_trees_per_iteration_", None)
        for i, stage in enumerate(predictors):
            c.require(isinstance(stage, list) and len(stage) == k, f"_predictors[{i}] does not hold n_trees_per_iteration_={k} trees")
            for p in stage:
                inner = p.nodes["is_leaf"] == 0
                bad = inner & (p.nodes["feature_idx"] >= n_in)
                c.require(not bad.any(), f"a node of _predictors[{i}] splits on a feature beyond n_features_in_={n_in}")

"""Crafted tree files: a real fitted model's skops archive with one ``.npy`` array edited, stored
back with a consistent record (new sha256 and size), as anyone with write access to the store
could. Each is refused with CorruptArtifactError naming the file and the check, before scikit-learn
builds or runs the tree; the crash tests show what the same file does without the checks."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier

from modelstore_core import CorruptArtifactError, CorruptRecordError
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.flavors import open_store

X, Y = make_classification(n_samples=200, n_features=5, random_state=0)


def _writable(path: Path) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def _record_path(tmp_path: Path, domain: str, version: int) -> Path:
    return tmp_path / "store" / "domains" / domain / "versions" / f"{version:010d}.json"


def _object_path(tmp_path: Path, sha256: str) -> Path:
    return tmp_path / "store" / "objects" / "sha256" / sha256[:2] / sha256


def _nodes_of(schema, class_name: str) -> list[dict]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("__class__") == class_name:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    return found


def _array_file(node: dict, key: str) -> str:
    """The ``.npy`` member holding attribute ``key`` of a Tree (its ``__reduce__`` state) or of an object."""
    content = node["content"]
    return content["content"][key]["file"]


def craft(tmp_path: Path, model, edit, *, domain: str = "m", cls: str = "Tree", key: str = "nodes") -> Path:
    """Upload ``model``, apply ``edit(array)`` to array ``key`` of the first ``cls`` object in its
    archive, store the result with a consistent record. Returns the crafted archive's path."""
    v = open_store(tmp_path).upload(domain, model=model)
    with zipfile.ZipFile(_object_path(tmp_path, v.files[0].sha256)) as src:
        members = {name: src.read(name) for name in src.namelist()}
    member = _array_file(_nodes_of(json.loads(members["schema.json"]), cls)[0], key)
    array = np.load(io.BytesIO(members[member]), allow_pickle=False)
    array = edit(array.copy())
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    members[member] = buf.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)
    data = out.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    target = _object_path(tmp_path, sha)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    record_path = _record_path(tmp_path, domain, v.version)
    record = json.loads(record_path.read_text())
    record["files"] = [{"path": "model.skops", "size": len(data), "sha256": sha}]
    _writable(record_path)
    record_path.write_text(json.dumps(record))
    crafted = tmp_path / "crafted.skops"
    crafted.write_bytes(data)
    return crafted


def forest():
    return RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X, Y)


def _set(field, value, row=0):
    def edit(nodes):
        nodes[field][row] = value
        return nodes

    return edit


def _first_inner(field, value):
    def edit(nodes):
        nodes[field][np.flatnonzero(nodes["left_child"] != -1)[-1]] = value
        return nodes

    return edit


TREE_CASES = {
    "left-child-out-of-range": (_set("left_child", 10**9), "left_child 1000000000"),
    "right-child-cycle": (_set("right_child", 0), "children must come after their parent"),
    "half-leaf": (_set("right_child", -1), "-1 only as a leaf pair"),
    "feature-beyond-n-features": (_first_inner("feature", 5), "outside [0, n_features=5)"),
    "negative-feature": (_first_inner("feature", -7), "outside [0, n_features=5)"),
    "nan-threshold": (_first_inner("threshold", np.nan), "threshold that is not finite"),
    "truncated-nodes": (lambda nodes: nodes[:-1], "node_count is"),
    "wrong-dtype": (lambda nodes: nodes[["left_child", "right_child"]].copy(), "dtype"),
}


@pytest.mark.parametrize("case", sorted(TREE_CASES))
def test_crafted_forest_is_refused_naming_file_and_check(tmp_path, case):
    edit, check = TREE_CASES[case]
    craft(tmp_path, forest(), edit)
    with pytest.raises(CorruptArtifactError) as err:
        open_store(tmp_path, cache="reader").load("m")
    assert err.value.file == "model.skops" and "sklearn.tree._tree.Tree" in err.value.problem
    assert check in err.value.problem


def test_crafted_tree_values_shape_is_refused(tmp_path):
    craft(tmp_path, forest(), lambda values: values[:, :, :1].copy(), key="values")
    with pytest.raises(CorruptArtifactError, match=r"values has shape .*max_n_classes"):
        open_store(tmp_path, cache="reader").load("m")


def test_crafted_tree_is_refused_even_when_the_caller_trusts_all_types(tmp_path):
    """The checks are not a trust decision: trust=True allows types, never out-of-bounds indices."""
    craft(tmp_path, forest(), _set("left_child", 10**9))
    with pytest.raises(CorruptArtifactError):
        open_store(tmp_path, cache="reader").load("m", trust=True)


def test_estimator_narrower_than_its_tree_is_refused(tmp_path):
    """``predict`` checks X against n_features_in_ and the tree then reads X[:, feature]: a smaller
    n_features_in_ would let it read past each row."""
    model = forest()
    model.estimators_[1].n_features_in_ = 2
    open_store(tmp_path).upload("m", model=model)
    with pytest.raises(CorruptArtifactError, match="n_features_in_ is 2 but its tree_ has n_features=5"):
        open_store(tmp_path, cache="reader").load("m")


def test_forest_wider_than_its_trees_is_refused(tmp_path):
    """A forest runs its trees on its own validated X without their checks."""
    model = forest()
    model.n_features_in_ = 9
    open_store(tmp_path).upload("m", model=model)
    with pytest.raises(CorruptArtifactError, match=r"estimators_\[0\] does not hold a tree over 9 features"):
        open_store(tmp_path, cache="reader").load("m")


def test_gradient_boosting_with_more_tree_columns_than_outputs_is_refused(tmp_path):
    """predict_stages writes out[i * K + k] for k below estimators_.shape[1]."""
    model = GradientBoostingClassifier(n_estimators=3).fit(X, Y)
    model.estimators_ = np.concatenate([model.estimators_, model.estimators_], axis=1)
    open_store(tmp_path).upload("m", model=model)
    with pytest.raises(CorruptArtifactError, match="n_trees_per_iteration_ is 1"):
        open_store(tmp_path, cache="reader").load("m")


def hgb():
    return HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, Y)


PREDICTOR = "TreePredictor"
PREDICTOR_CASES = {
    "left-out-of-range": (_set("left", 10**6), "left 1000000"),
    "right-cycle": (_set("right", 0), "children must come after their parent"),
    "bitset-index": (
        lambda n: (n.__setitem__("is_categorical", np.where(n["is_leaf"] == 0, 1, 0)) or n.__setitem__("bitset_idx", 3)) or n,
        "beyond the 0 rows",
    ),
}


@pytest.mark.parametrize("case", sorted(PREDICTOR_CASES))
def test_crafted_hist_gradient_boosting_is_refused(tmp_path, case):
    edit, check = PREDICTOR_CASES[case]
    craft(tmp_path, hgb(), edit, cls=PREDICTOR)
    with pytest.raises(CorruptArtifactError) as err:
        open_store(tmp_path, cache="reader").load("m")
    assert err.value.file == "model.skops" and "TreePredictor" in err.value.problem and check in err.value.problem


def test_hist_gradient_boosting_feature_beyond_n_features_in_is_refused(tmp_path):
    craft(tmp_path, hgb(), _set("feature_idx", 50), cls=PREDICTOR)
    with pytest.raises(CorruptArtifactError, match="beyond n_features_in_=5"):
        open_store(tmp_path, cache="reader").load("m")


def test_record_naming_another_file_is_refused_through_model_file(tmp_path):
    v = open_store(tmp_path).upload("m", model=forest())
    record_path = _record_path(tmp_path, "m", v.version)
    record = json.loads(record_path.read_text())
    record["flavor"]["options"]["file"] = "../../../../etc/passwd"
    _writable(record_path)
    record_path.write_text(json.dumps(record))
    with pytest.raises(CorruptRecordError, match=r"flavor\.options\.file"):
        open_store(tmp_path, cache="reader").load("m")


# --- crash tests: the risky call runs in a child process ------------------------------------


def _run_child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=HANG_TIMEOUT)


def test_crafted_forest_crashes_without_the_checks_and_not_through_modelstore(tmp_path):
    crafted = craft(tmp_path, forest(), _root_far_away)

    raw = _run_child(f"""
        import numpy as np, skops.io as sio
        path = {str(crafted)!r}
        model = sio.load(path, trusted=sio.get_untrusted_types(file=path))  # full trust, no checks
        model.predict(np.zeros((50, 5)))
        print("survived")
    """)
    assert raw.returncode < 0, f"expected a crash by signal, got rc={raw.returncode} {raw.stdout} {raw.stderr[-500:]}"

    guarded = _run_child(f"""
        from modelstore_core import CorruptArtifactError
        from modelstore_core.testing.flavors import open_store
        from pathlib import Path
        try:
            open_store(Path({str(tmp_path)!r}), cache="child").load("m", trust=True)
        except CorruptArtifactError as exc:
            print("refused:", exc.file, exc.problem)
    """)
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    assert "refused: model.skops" in guarded.stdout and "left_child" in guarded.stdout


def _root_far_away(nodes):
    """Both children of the root point far past the array: predict follows them into unmapped memory."""
    nodes["left_child"][0] = 2**40
    nodes["right_child"][0] = 2**40
    return nodes


# --- nearest neighbours with a tree index ---------------------------------------------------------


def knn(algorithm="kd_tree", **kwargs):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(algorithm=algorithm, leaf_size=5, **kwargs).fit(X, Y)


def _node_field(field, value):
    def edit(nodes):
        nodes[field][0] = value
        return nodes

    return edit


TREE_INDEX_CASES = {
    # state: (data, idx_array, node_data, node_bounds, ...); edits of real arrays
    "idx-out-of-range": ("KDTree", 1, lambda a: np.where(np.arange(a.size) == 0, 10**9, a), "not a permutation"),
    "idx-repeated": ("BallTree", 1, lambda a: np.where(np.arange(a.size) == 1, a[0], a), "not a permutation"),
    "node-range-past-samples": ("KDTree", 2, _node_field("idx_end", 10**6), "covers samples outside"),
    "node-range-negative": ("BallTree", 2, _node_field("idx_start", -3), "covers samples outside"),
    "leaf-flag": ("KDTree", 2, _node_field("is_leaf", 7), "is_leaf is not 0 or 1"),
    "bounds-shape": ("KDTree", 3, lambda a: a[:, :1, :].copy(), "node_bounds has shape"),
    "data-narrower": ("BallTree", 0, lambda a: a[:, :1].copy(), "node_bounds has shape"),
}


@pytest.mark.parametrize("case", sorted(TREE_INDEX_CASES))
def test_crafted_tree_index_is_refused(tmp_path, case):
    cls, index, edit, check = TREE_INDEX_CASES[case]
    algorithm = "kd_tree" if cls == "KDTree" else "ball_tree"
    craft(tmp_path, knn(algorithm), edit, cls=cls, key=index)
    with pytest.raises(CorruptArtifactError, match=check) as err:
        open_store(tmp_path, cache="reader").load("m", trust=True)  # trust does not skip the checks
    assert "model.skops" in str(err.value) and cls in str(err.value)


def test_crafted_metric_weights_are_refused(tmp_path):
    model = knn("ball_tree", metric="minkowski", metric_params={"w": np.ones(X.shape[1])})
    craft(tmp_path, model, lambda w: np.ones(1000), cls="MinkowskiDistance64", key=1)
    with pytest.raises(CorruptArtifactError, match="w has 1000 weights"):
        open_store(tmp_path, cache="reader").load("m")

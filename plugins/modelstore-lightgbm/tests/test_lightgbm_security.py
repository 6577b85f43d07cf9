"""A stored LightGBM model is untrusted: what LightGBM's loader and predictor follow without
checking is checked before LightGBM reads the file, and a record cannot point the loader at another
file or hand the estimator a thread count that kills the process.

Each hostile file is a real model's text, edited, with ``tree_sizes`` made to agree again (so only
the edit is wrong), stored with a record whose sha256 and size agree: what anyone with write
access to the bucket can do."""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
import textwrap

import lightgbm as lgb
import numpy as np
import pytest

from modelstore_core import CorruptArtifactError, CorruptRecordError
from modelstore_core.protocol import keys
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.flavors import open_store
from modelstore_core.testing.tamper_contract import edit_record, put

RS = np.random.RandomState(0)
X = RS.rand(80, 3)
Y = (X[:, 0] > 0.5).astype(int)


def booster(**params):
    return lgb.train({"num_leaves": 4, "num_threads": 1, "verbose": -1, **params}, lgb.Dataset(X, Y), 3)


def fix_sizes(text: str) -> str:
    """``tree_sizes`` recomputed from the trees as they now are."""
    head, _, rest = text.partition("\nTree=0\n")
    trees, end, tail = ("Tree=0\n" + rest).partition("end of trees\n")
    blocks = ["Tree=" + b for b in trees.split("Tree=")[1:]]
    sizes = " ".join(str(len(b.encode())) for b in blocks)
    return re.sub(r"tree_sizes=[^\n]*", lambda _: "tree_sizes=" + sizes, head) + "\n" + trees + end + tail


def tree_line(key: str, value: str, tree: int = 0):
    """Replace line ``key`` of tree ``tree``."""

    def edit(text: str) -> str:
        start = text.index(f"Tree={tree}\n")
        line = re.compile(rf"^{key}=[^\n]*$", re.M).search(text, start)
        return text[: line.start()] + f"{key}={value}" + text[line.end() :]

    return edit


def header_line(key: str, value: str):
    return lambda text: re.sub(rf"^{key}=[^\n]*$", lambda _: f"{key}={value}", text, count=1, flags=re.M)


def replace(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)

    return edit


CRAFTS = {
    "left child far outside the tree": tree_line("left_child", "1000000 -2 -1"),
    "leaf index far outside the tree": tree_line("left_child", "-1000000 -2 -1"),
    "leaf index 2**31 - 1": tree_line("left_child", "-2147483648 -2 -1"),
    "child pointing back at the root (cycle)": tree_line("left_child", "0 -2 -1"),
    "both children the same split": tree_line("right_child", "1 1 -3"),
    "split feature past max_feature_idx": tree_line("split_feature", "3 0 0"),
    "split feature far outside the row": tree_line("split_feature", "1000000 0 0"),
    "negative num_leaves": tree_line("num_leaves", "-5"),
    "num_leaves larger than the arrays": tree_line("num_leaves", "40"),
    "left_child one short": tree_line("left_child", "1"),
    "leaf_value one short": tree_line("leaf_value", "0.1 0.2"),
    "a tree line without '='": tree_line("shrinkage", "1\nshrinkage"),
    "a repeated tree line": tree_line("shrinkage", "1\nshrinkage=2"),
    "num_cat with no cat_boundaries": tree_line("num_cat", "1"),
    "decision type out of range": tree_line("decision_type", "2 2 99"),
    "categorical split without categories": tree_line("decision_type", "3 2 2"),
    "num_tree_per_iteration 0 (division by zero)": header_line("num_tree_per_iteration", "0"),
    "num_class disagreeing with the trees per iteration": header_line("num_class", "3"),
    "empty objective": header_line("objective", ""),
    "multiclass objective with another num_class": header_line("objective", "multiclass num_class:7"),
    "feature_names one short": header_line("feature_names", "Column_0 Column_1"),
    "parameter line without ':'": replace("[boosting: gbdt]", "[boosting]"),
    "pandas_categorical not JSON": replace("pandas_categorical:null", "pandas_categorical:{"),
}


def store_text(store, version: int, text: str) -> None:
    """Replace the version's model file with ``text``, object and record consistent."""
    data = text.encode()
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)
    edit_record(store, "m", version, lambda doc: doc["files"][0].update(sha256=sha, size=len(data)))


def upload_crafted(tmp_path, model, craft, sizes: bool = True) -> str:
    store = open_store(tmp_path)
    v = store.upload("m", model=model)
    real = (model if isinstance(model, lgb.Booster) else model.booster_).model_to_string(num_iteration=-1)
    text = craft(real)
    assert text != real
    text = fix_sizes(text) if sizes else text
    store_text(store, v.version, text)
    return text


def test_untouched_models_pass_the_checks(tmp_path):
    """Every kind of tree LightGBM writes passes: numerical, categorical, linear, multiclass, rf, dart."""
    import pandas as pd

    frame = pd.DataFrame({"a": X[:, 0], "c": pd.Categorical(RS.choice(list("pqrs"), 80))})
    label = frame["a"] + (frame["c"] == "q")
    cat_params = {"num_leaves": 4, "min_data_per_group": 2, "cat_smooth": 1, "verbose": -1}
    multiclass = {"objective": "multiclass", "num_class": 3, "verbose": -1}
    models = {
        "categorical": (lgb.train(cat_params, lgb.Dataset(frame, label), 3), frame),
        "linear": (booster(linear_tree=True), X),
        "multiclass": (lgb.train(multiclass, lgb.Dataset(X, RS.randint(0, 3, 80)), 2), X),
        "rf": (booster(boosting="rf", bagging_freq=1, bagging_fraction=0.5), X),
        "dart": (booster(boosting="dart"), X),
        "one-leaf": (booster(min_data_in_leaf=1000), X),
    }
    store = open_store(tmp_path)
    for name, (model, data) in models.items():
        store.upload(name, model=model)
        loaded = open_store(tmp_path, cache=f"reader-{name}").load(name)
        np.testing.assert_array_equal(loaded.predict(data), model.predict(data))
    assert "cat_threshold" in models["categorical"][0].model_to_string()


@pytest.mark.parametrize("craft", list(CRAFTS), ids=list(CRAFTS))
def test_crafted_model_is_refused_naming_the_file(tmp_path, craft):
    upload_crafted(tmp_path, booster(), CRAFTS[craft])
    with pytest.raises(CorruptArtifactError) as err:
        open_store(tmp_path, cache="reader").load("m")
    assert err.value.file == "model.txt"


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace("tree_sizes=", "tree_sizes=100000000 ", 1),  # LightGBM seeks past the buffer
        lambda text: re.sub(r"tree_sizes=(\d+)", lambda m: f"tree_sizes={int(m.group(1)) - 3}", text, count=1),
        lambda text: text[: len(text) // 2],
        lambda text: "",
        lambda text: text.replace("\n", "\r\n"),
        lambda text: text.replace("version=v4", "version=v4\x00"),
        lambda text: text.replace("Tree=0", "Tree=0\n", 1),
    ],
    ids=["size-past-the-end", "size-cuts-a-tree", "truncated", "empty", "crlf", "nul", "blank-line-in-a-tree"],
)
def test_damaged_text_is_refused(tmp_path, damage):
    upload_crafted(tmp_path, booster(), damage, sizes=False)
    with pytest.raises(CorruptArtifactError):
        open_store(tmp_path, cache="reader").load("m")


def test_crafted_categorical_and_linear_trees_are_refused(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"a": X[:, 0], "c": pd.Categorical(RS.choice(list("pqrs"), 80))})
    label = frame["a"] + (frame["c"] == "q") * 3
    params = {"num_leaves": 4, "min_data_per_group": 2, "cat_smooth": 1, "verbose": -1, "num_threads": 1}
    categorical = lgb.train(params, lgb.Dataset(frame, label), 2)
    text = categorical.model_to_string()
    tree = next(int(m.group(1)) for m in re.finditer(r"Tree=(\d+)\nnum_leaves=\d+\nnum_cat=([1-9])", text))
    upload_crafted(tmp_path, categorical, tree_line("cat_boundaries", "0 1000000", tree))
    with pytest.raises(CorruptArtifactError, match="cat_"):
        open_store(tmp_path, cache="reader").load("m")

    linear = booster(linear_tree=True)
    features = re.search(r"leaf_features=([^\n]*)", linear.model_to_string(num_iteration=-1).split("Tree=1")[1]).group(1)
    assert features.split(), "the linear tree has no linear leaves to tamper with"
    bad = features.replace(features.split()[0], "999", 1)
    upload_crafted(tmp_path / "linear", linear, tree_line("leaf_features", bad, 1))
    with pytest.raises(CorruptArtifactError, match="leaf_features"):
        open_store(tmp_path / "linear", cache="reader").load("m")


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "extras/notes.txt", "notes.txt", None])
def test_record_naming_another_file_is_refused(tmp_path, name):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    store = open_store(tmp_path)
    v = store.upload("m", model=booster(), extras=[notes])
    edit_record(store, "m", v.version, lambda doc: doc["flavor"]["options"].update(file=name))
    with pytest.raises(CorruptRecordError, match="flavor.options.file"):
        open_store(tmp_path, cache="reader").load("m")


@pytest.mark.parametrize(
    "field, value",
    [
        pytest.param("params", {"n_jobs": 100000}, id="huge-n_jobs"),  # each a thread: lightgbm 4.7 dies with SIGSEGV in predict
        pytest.param("params", {"num_threads": "many"}, id="num_threads-string"),
        pytest.param("fitted", {"n_features_in": 7}, id="n_features_in"),
        pytest.param("fitted", {"classes": ["a", "b", "c"]}, id="3-classes-for-binary"),
        pytest.param("fitted", {"classes": ["a", "a"]}, id="repeated-class"),
        pytest.param("fitted", {"classes": [{"x": 1}, "b"]}, id="class-object"),
        pytest.param("fitted", {"classes": ["a", 1]}, id="mixed-classes"),
        pytest.param("best_iteration", "3", id="best-iteration"),
    ],
)
def test_record_with_a_bad_estimator_state_is_refused(tmp_path, field, value):
    store = open_store(tmp_path)
    clf = lgb.LGBMClassifier(n_estimators=2, num_leaves=4, n_jobs=1, verbose=-1).fit(X, Y)
    v = store.upload("m", model=clf)

    def edit(doc):
        options = doc["flavor"]["options"]
        if isinstance(value, dict):
            options[field].update(value)
        else:
            options[field] = value

    edit_record(store, "m", v.version, edit)
    with pytest.raises(CorruptRecordError, match=f"flavor.options.{field}"):
        open_store(tmp_path, cache="reader").load("m")


# --- the crash is real --------------------------------------------------------------------

DIRECT = """
import sys, numpy as np, lightgbm as lgb
b = lgb.Booster(model_str=open(sys.argv[1]).read())
b.predict(np.random.RandomState(0).rand(20, 3))
print("predicted")
"""

THROUGH_MODELSTORE = """
import sys
from modelstore_core import CorruptArtifactError, ModelStore
try:
    ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/child-cache").load("m")
except CorruptArtifactError as exc:
    print("refused:", exc)
"""


def _child(code: str, arg) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(arg)], capture_output=True, text=True, timeout=HANG_TIMEOUT)


# Out-of-bounds reads are undefined behaviour: a child index that lands in mapped memory can loop
# instead of crashing. These two fail the same way every time: a leaf index of 2**31 - 1 reads
# 16 GiB past the leaf values, and no tree per iteration is an integer division by zero.
@pytest.mark.parametrize(
    "craft, sig",
    [
        ("leaf index 2**31 - 1", signal.SIGSEGV),
        ("num_tree_per_iteration 0 (division by zero)", signal.SIGFPE),
    ],
)
def test_crafted_file_kills_lightgbm_directly_but_modelstore_refuses_it(tmp_path, craft, sig):
    text = upload_crafted(tmp_path, booster(), CRAFTS[craft])
    crafted = tmp_path / "crafted.txt"
    crafted.write_text(text)

    direct = _child(DIRECT, crafted)
    # lightgbm 4.7 dies of the signal; a version that checks would exit normally or raise.
    assert direct.returncode == -sig, (direct.returncode, direct.stdout, direct.stderr[-2000:])

    guarded = _child(THROUGH_MODELSTORE, tmp_path)
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    assert "refused:" in guarded.stdout and "model.txt" in guarded.stdout

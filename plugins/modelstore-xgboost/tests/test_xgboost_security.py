"""A stored xgboost model is untrusted: indices that xgboost follows without checking are checked
before it reads the file, and a record cannot point the loader at another file.

Each hostile file is a real model's document, edited and written back in the same encoding, stored
with a record whose sha256 and size agree (what anyone with write access to the bucket can do)."""

from __future__ import annotations

import hashlib
import json
import signal
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import xgboost as xgb
from modelstore_xgboost._validate import read_ubjson

from modelstore_core import CorruptArtifactError, CorruptRecordError
from modelstore_core.protocol import keys
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.flavors import open_store
from modelstore_core.testing.tamper_contract import edit_record, put

RS = np.random.RandomState(0)
X = RS.rand(60, 3)
Y = (X[:, 0] > 0.5).astype(int)


def booster(**params):
    return xgb.train({"max_depth": 2, "nthread": 1, **params}, xgb.DMatrix(X, label=Y), num_boost_round=2)


def write_ubjson(value) -> bytes:
    """xgboost's UBJSON: int64 lengths, typed arrays for numeric arrays (as the reader returned them)."""
    if isinstance(value, dict):
        return b"{" + b"".join(b"L" + struct.pack(">q", len(k.encode())) + k.encode() + write_ubjson(v) for k, v in value.items()) + b"}"
    if isinstance(value, np.ndarray):
        code = {"f4": b"d", "f8": b"D", "i1": b"i", "u1": b"U", "i2": b"I", "i4": b"l", "i8": b"L"}[value.dtype.str[1:]]
        return b"[$" + code + b"#L" + struct.pack(">q", len(value)) + value.astype(value.dtype.newbyteorder(">")).tobytes()
    if isinstance(value, list):
        return b"[" + b"".join(write_ubjson(v) for v in value) + b"]"
    if isinstance(value, str):
        return b"SL" + struct.pack(">q", len(value.encode())) + value.encode()
    if isinstance(value, bool):
        return b"T" if value else b"F"
    if isinstance(value, int):
        return b"L" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"D" + struct.pack(">d", value)
    assert value is None
    return b"Z"


def set_item(array, i, value):
    """Set ``array[i]`` in a JSON list or a typed (numpy) array, widening the type if needed."""
    if isinstance(array, np.ndarray):
        # Keep xgboost's element type (it reads int32 children only as int32) unless the value needs more.
        info = np.iinfo(array.dtype) if array.dtype.kind in "iu" else None
        array = array.astype(np.int64) if info and not info.min <= value <= info.max else array.copy()
    array[i] = value
    return array


def tree0(doc):
    return doc["learner"]["gradient_booster"]["model"]["trees"][0]


def edit_tree(key, i, value):
    def edit(doc):
        tree = tree0(doc)
        tree[key] = set_item(tree[key], i, value)

    return edit


def drop_last(path):
    def edit(doc):
        *parents, last = path
        obj = doc
        for p in parents:
            obj = obj[p]
        obj[last] = obj[last][:-1]

    return edit


CRAFTS = {
    "left child far outside the tree": edit_tree("left_children", 0, 10**9),
    "split feature 2**31-1": edit_tree("split_indices", 0, 2**31 - 1),
    "split feature == num_feature": edit_tree("split_indices", 0, 3),
    "left child is the root (cycle)": edit_tree("left_children", 0, 0),
    "both children the same node": edit_tree("right_children", 0, 1),
    "parent outside the tree": edit_tree("parents", 1, 999),
    "negative right child of a split": edit_tree("right_children", 0, -5),
    "split_indices one short": lambda doc: drop_last(["learner", "gradient_booster", "model", "trees", 0, "split_indices"])(doc),
    "tree_info one short": drop_last(["learner", "gradient_booster", "model", "tree_info"]),
    "tree_info names a missing output group": lambda doc: doc["learner"]["gradient_booster"]["model"].__setitem__(
        "tree_info", set_item(doc["learner"]["gradient_booster"]["model"]["tree_info"], 0, 7)
    ),
    "num_nodes larger than the arrays": lambda doc: tree0(doc)["tree_param"].__setitem__("num_nodes", "1000"),
    "feature_names longer than num_feature": lambda doc: doc["learner"].__setitem__("feature_names", ["a", "b", "c", "d"]),
}


def parse(data: bytes, fmt: str):
    return with_arrays(read_ubjson(data)) if fmt == "ubj" else json.loads(data)


def with_arrays(value):
    """``read_ubjson``'s document with each typed array (kept as ``(dtype, raw bytes)``) as a numpy array."""
    if isinstance(value, dict):
        return {k: with_arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_arrays(v) for v in value]
    if isinstance(value, tuple):
        dtype, raw = value
        return np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))
    return value


def encode(doc, fmt: str) -> bytes:
    return write_ubjson(doc) if fmt == "ubj" else json.dumps(doc).encode()


def store_bytes(store, domain: str, version: int, data: bytes, **flavor_options) -> None:
    """Replace the version's model file with ``data``, object and record consistent."""
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)

    def edit(doc):
        doc["files"][0].update(sha256=sha, size=len(data))
        doc["flavor"]["options"].update(flavor_options)

    edit_record(store, domain, version, edit)


def upload_crafted(tmp_path, model, fmt: str, craft) -> tuple[object, bytes]:
    store = open_store(tmp_path)
    v = store.upload("m", model=model, format=fmt)
    path = tmp_path / "orig"
    model.save_model(str(path) + "." + fmt)
    doc = parse((tmp_path / f"orig.{fmt}").read_bytes(), fmt)
    craft(doc)
    data = encode(doc, fmt)
    store_bytes(store, "m", v.version, data)
    return store, data


@pytest.mark.parametrize("fmt", ["ubj", "json"])
def test_untouched_documents_pass_the_checks_for_every_booster_kind(tmp_path, fmt):
    import pandas as pd

    cats = pd.DataFrame({"a": pd.Categorical(RS.choice(["x", "y", "z"], 60)), "b": X[:, 1]})
    models = {
        "gbtree": booster(),
        "multiclass": xgb.train(
            {"objective": "multi:softprob", "num_class": 3, "max_depth": 2}, xgb.DMatrix(X, label=RS.randint(0, 3, 60)), 2
        ),
        "gblinear": booster(booster="gblinear"),
        "dart": booster(booster="dart", rate_drop=0.5),
        "categorical": xgb.train({"max_depth": 2, "max_cat_to_onehot": 1}, xgb.DMatrix(cats, label=Y, enable_categorical=True), 2),
        "multi_output_tree": xgb.train({"multi_strategy": "multi_output_tree", "max_depth": 2}, xgb.DMatrix(X, label=RS.rand(60, 2)), 2),
    }
    store = open_store(tmp_path)
    for name, model in models.items():
        store.upload(name, model=model, format=fmt)
        loaded = open_store(tmp_path, cache=f"reader-{name}").load(name)
        data = xgb.DMatrix(cats if name == "categorical" else X, enable_categorical=True)
        np.testing.assert_array_equal(loaded.predict(data), model.predict(data))


@pytest.mark.parametrize("fmt", ["ubj", "json"])
@pytest.mark.parametrize("craft", list(CRAFTS), ids=list(CRAFTS))
def test_crafted_booster_is_refused_naming_the_file(tmp_path, fmt, craft):
    store, _ = upload_crafted(tmp_path, booster(), fmt, CRAFTS[craft])
    with pytest.raises(CorruptArtifactError) as err:
        open_store(tmp_path, cache="reader").load("m")
    assert err.value.file == f"model.{fmt}"


@pytest.mark.parametrize("fmt", ["ubj", "json"])
def test_crafted_classifier_is_refused(tmp_path, fmt):
    clf = xgb.XGBClassifier(n_estimators=2, max_depth=2, n_jobs=1).fit(X, Y)
    upload_crafted(tmp_path, clf, fmt, edit_tree("split_indices", 0, 2**31 - 1))
    with pytest.raises(CorruptArtifactError, match="split_indices"):
        open_store(tmp_path, cache="reader").load("m")


def test_categorical_split_with_a_negative_category_is_refused(tmp_path):
    import pandas as pd

    a = np.random.RandomState(1).choice(["x", "y", "z"], 60)
    cats = pd.DataFrame({"a": pd.Categorical(a), "b": X[:, 1]})
    model = xgb.train({"max_depth": 2, "max_cat_to_onehot": 1}, xgb.DMatrix(cats, label=(a == "y"), enable_categorical=True), 2)

    def edit(doc):
        tree = next(t for t in doc["learner"]["gradient_booster"]["model"]["trees"] if len(t["categories"]))
        tree["categories"] = set_item(tree["categories"], 0, -(2**20))

    upload_crafted(tmp_path, model, "ubj", edit)
    with pytest.raises(CorruptArtifactError, match="categories"):
        open_store(tmp_path, cache="reader").load("m")


def test_gblinear_with_too_few_weights_is_refused(tmp_path):
    upload_crafted(tmp_path, booster(booster="gblinear"), "json", drop_last(["learner", "gradient_booster", "model", "weights"]))
    with pytest.raises(CorruptArtifactError, match="weights"):
        open_store(tmp_path, cache="reader").load("m")


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-7],  # ends inside a value
        lambda data: data + b"Z",  # trailing bytes
        lambda data: data.replace(b"SL", b"Sl", 1),  # a length xgboost's reader does not take
        lambda data: data.replace(b"L\x00\x00\x00\x00\x00\x00\x00\x07learner", b"L\x00\x00\x00\x00\x7f\x00\x00\x07learner", 1),
    ],
    ids=["truncated", "trailing", "int32-length", "huge-key-length"],
)
def test_malformed_ubjson_is_refused(tmp_path, damage):
    store = open_store(tmp_path)
    v = store.upload("m", model=booster())
    store_bytes(store, "m", v.version, damage(_saved(booster())))
    with pytest.raises(CorruptArtifactError):
        open_store(tmp_path, cache="reader").load("m")


def _saved(model) -> bytes:
    return bytes(model.save_raw("ubj"))


def test_duplicate_keys_are_refused(tmp_path):
    """xgboost's UBJSON reader keeps the first of two equal keys, Python the last: refused outright."""
    store = open_store(tmp_path)
    v = store.upload("m", model=booster(), format="json")
    text = json.dumps(json.loads(_saved_json(booster())))
    data = text.replace('"learner": {', '"learner": {"feature_names": [], ', 1).encode()
    store_bytes(store, "m", v.version, data)
    with pytest.raises(CorruptArtifactError, match="repeats a key"):
        open_store(tmp_path, cache="reader").load("m")


@pytest.mark.parametrize(("fmt", "prefix"), [("json", b" "), ("json", b"\n"), ("ubj", b"N")])
def test_a_document_that_does_not_start_as_xgboost_writes_it_is_refused(tmp_path, fmt, prefix):
    """xgboost reads a model from memory in the encoding its first bytes suggest: a valid JSON
    document after whitespace (or UBJSON after a no-op) is refused, not read as something else."""
    store = open_store(tmp_path)
    v = store.upload("m", model=booster(), format=fmt)
    store_bytes(store, "m", v.version, prefix + bytes(booster().save_raw("ubj" if fmt == "ubj" else "json")))
    with pytest.raises(CorruptArtifactError, match=f"model.{fmt}.*does not start like"):
        open_store(tmp_path, cache="reader").load("m")


def _saved_json(model) -> bytes:
    return bytes(model.save_raw("json"))


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "extras/notes.txt", "model.json", 7])
def test_record_naming_another_file_is_refused(tmp_path, name):
    store = open_store(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    v = store.upload("m", model=booster(), extras=[notes])
    edit_record(store, "m", v.version, lambda doc: doc["flavor"]["options"].update(file=name))
    with pytest.raises(CorruptRecordError, match="flavor.options.file"):
        open_store(tmp_path, cache="reader").load("m")


# --- the crash is real --------------------------------------------------------------------

DIRECT = """
import sys, numpy as np, xgboost as xgb
b = xgb.Booster(); b.load_model(sys.argv[1])
b.predict(xgb.DMatrix(np.random.RandomState(0).rand(20, 3)))
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


@pytest.mark.parametrize("fmt", ["ubj", "json"])
def test_crafted_file_kills_xgboost_directly_but_modelstore_refuses_it(tmp_path, fmt):
    _, data = upload_crafted(tmp_path, booster(), fmt, CRAFTS["left child far outside the tree"])
    crafted = tmp_path / f"crafted.{fmt}"
    crafted.write_bytes(data)

    direct = _child(DIRECT, crafted)
    # xgboost 3.2 dies with SIGSEGV in predict; a version that catches it would exit normally.
    assert direct.returncode == -signal.SIGSEGV, (direct.returncode, direct.stdout, direct.stderr[-2000:])

    guarded = _child(THROUGH_MODELSTORE, tmp_path)
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    assert "refused:" in guarded.stdout and f"model.{fmt}" in guarded.stdout

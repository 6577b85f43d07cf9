"""The plugin's own skops reader and writer (``_skops_reader``, ``_skops_writer``) against skops
itself: for the common estimators they write the bytes skops writes (canonicalized), build the
objects skops builds, leave everything else to skops, and keep skops.io out of a process that
only stores and loads those estimators."""

from __future__ import annotations

import copy
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from modelstore_sklearn import _skops_reader, _skops_writer
from modelstore_sklearn._persist import canonical_skops, types_to_trust
from sklearn.cluster import Birch, KMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (
    LogisticRegression,
    LogisticRegressionCV,
    PoissonRegressor,
    Ridge,
    SGDClassifier,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeRegressor

from modelstore_core import UntrustedArtifactError
from modelstore_core.testing.flavors import open_store, run_python_json

X, Y = make_classification(n_samples=120, n_features=5, random_state=0)
XR, YR = make_regression(n_samples=120, n_features=5, random_state=0)


def frame_pipeline():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.normal(40, 10, 60), "city": rng.choice(["paris", "lyon", "nice"], 60)})
    pre = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age"]), ("cat", OneHotEncoder(), ["city"])])
    return Pipeline([("pre", pre), ("ridge", Ridge())]).fit(df, df["age"].to_numpy()), df


#: name -> (model, input): what the plugin's own writer and reader handle.
NATIVE = {
    "logistic": lambda: (LogisticRegression().fit(X, Y), X),
    "logistic-string-labels": lambda: (LogisticRegression().fit(X, np.array(["no", "yes"])[Y]), X),
    "logistic-cv-integer-keys": lambda: (LogisticRegressionCV(cv=3).fit(X, Y), X),
    "sgd-loss-object": lambda: (SGDClassifier(random_state=0).fit(X, Y), X),
    "poisson-link-and-loss": lambda: (PoissonRegressor().fit(X, np.abs(Y)), X),
    "unfitted": lambda: (LogisticRegression(C=2.0), None),
    "tree-multioutput": lambda: (DecisionTreeRegressor(max_depth=4).fit(XR, np.c_[YR, -YR]), XR),
    "forest": lambda: (RandomForestClassifier(n_estimators=4, random_state=0).fit(X, Y), X),
    "forest-random-state-object": lambda: (RandomForestClassifier(n_estimators=2, random_state=np.random.RandomState(0)).fit(X, Y), X),
    "extra-trees": lambda: (ExtraTreesRegressor(n_estimators=3, random_state=0).fit(XR, YR), XR),
    "isolation-forest": lambda: (IsolationForest(n_estimators=3, max_features=3, random_state=0).fit(X), X),
    "gradient-boosting": lambda: (GradientBoostingClassifier(n_estimators=3).fit(X, Y), X),
    "pipeline": lambda: (make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y), X),
    "column-transformer-on-a-frame": frame_pipeline,
    "svc": lambda: (SVC().fit(X, Y), X),
    "kmeans": lambda: (KMeans(n_clusters=3, n_init=2, random_state=0).fit(X), X),
    "pca": lambda: (PCA(2).fit(X), X),
    "mlp-optimizer": lambda: (MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0).fit(X, Y), X),
}

#: Models holding an object the plugin leaves to skops: a checked type other than Tree, a type skops
#: refuses, a function.
TO_SKOPS = {
    "hist-gradient-boosting": lambda: HistGradientBoostingRegressor(max_iter=3).fit(XR, YR),
    "kd-tree": lambda: KNeighborsClassifier(algorithm="kd_tree").fit(X, Y),
    "function": lambda: FunctionTransformer(np.log1p).fit(X),
}


def outputs(model, data):
    for method in ("predict_proba", "predict", "transform", "score_samples"):
        if hasattr(model, method):
            return getattr(model, method)(data)
    raise AssertionError(f"{type(model).__name__} has no method to compare")


@pytest.fixture(autouse=True)
def _quiet(recwarn):
    """MLP with 20 iterations warns that it did not converge: irrelevant here."""


@pytest.mark.parametrize("case", sorted(NATIVE))
def test_writer_writes_skops_bytes_and_reader_builds_what_skops_builds(case):
    model, data = NATIVE[case]()
    written = _skops_writer.archive(model)
    assert written is not None, "the plugin's writer left this model to skops"
    data_bytes = written.to_bytes()
    assert data_bytes == canonical_skops(sio.dumps(model)), "not the bytes skops writes, canonicalized"
    assert types_to_trust(data_bytes) == []  # skops itself, with the plugin's defaults, trusts every type

    by_plugin = _skops_reader.read(data_bytes, "model.skops")
    by_skops = sio.loads(data_bytes, trusted=sio.get_untrusted_types(data=data_bytes))
    assert type(by_plugin) is type(model) is type(by_skops)
    assert by_plugin.get_params(deep=False).keys() == by_skops.get_params(deep=False).keys()
    if data is not None:
        np.testing.assert_array_equal(outputs(by_plugin, data), outputs(model, data))
        np.testing.assert_array_equal(outputs(by_plugin, data), outputs(by_skops, data))


@pytest.mark.parametrize("case", sorted(TO_SKOPS))
def test_other_models_are_left_to_skops_and_still_round_trip(tmp_path, case):
    model = TO_SKOPS[case]()
    assert _skops_writer.archive(model) is None
    assert _skops_reader.read(canonical_skops(sio.dumps(model)), "model.skops") is _skops_reader.NOT_HANDLED
    v = open_store(tmp_path).upload("m", model=model)
    assert v.flavor.format == "skops"
    trusted = v.flavor.options["types_to_trust"]
    loaded = open_store(tmp_path, cache="reader").load("m", trusted_types=trusted)
    np.testing.assert_array_equal(
        outputs(loaded, X if case != "hist-gradient-boosting" else XR), outputs(model, X if case != "hist-gradient-boosting" else XR)
    )


def test_a_model_skops_refuses_is_refused_by_the_writer_too():
    """Birch is a public estimator that skops will not write: the plugin's writer leaves it to
    skops, whose refusal sends it to the pickle fallback."""
    assert _skops_writer.archive(Birch(n_clusters=2).fit(X)) is None


def _edit_schema(data: bytes, edit) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        members = {name: src.read(name) for name in src.namelist()}
    schema = json.loads(members["schema.json"])
    edit(schema)
    members["schema.json"] = json.dumps(schema).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name, member in members.items():
            dst.writestr(name, member)
    return out.getvalue()


def test_a_type_outside_the_defaults_goes_to_skops_and_is_refused(tmp_path):
    """A LogisticRegression archive whose root claims another class: the plugin's reader does not
    build it, skops's audit refuses it, and nothing is imported or run."""
    model = LogisticRegression().fit(X, Y)
    v = open_store(tmp_path).upload("m", model=model)
    path = tmp_path / "store" / "objects" / "sha256" / v.files[0].sha256[:2] / v.files[0].sha256
    crafted = _edit_schema(path.read_bytes(), lambda s: s.update({"__module__": "subprocess", "__class__": "Popen"}))
    assert _skops_reader.read(crafted, "model.skops") is _skops_reader.NOT_HANDLED
    with pytest.raises(UntrustedArtifactError, match="subprocess.Popen"):
        from modelstore_sklearn._persist import load_skops

        load_skops("model.skops", crafted, {})


def test_a_node_that_contains_itself_is_left_to_skops():
    model = LogisticRegression().fit(X, Y)
    data = _skops_writer.archive(model).to_bytes()

    def loop(schema):  # the root's attribute dict names the root's own id
        schema["content"]["content"]["C"] = {"__id__": schema["__id__"], "__loader__": "JsonNode"}

    assert _skops_reader.read(_edit_schema(data, loop), "model.skops") is _skops_reader.NOT_HANDLED


def test_a_later_node_with_a_known_id_is_the_first_one_as_in_skops():
    """skops builds the first node seen with an ``__id__`` wherever the id appears again: so does the reader."""
    model = LogisticRegression(C=3.0, tol=1e-3).fit(X, Y)
    data = _skops_writer.archive(model).to_bytes()

    def alias(schema):
        attrs = schema["content"]["content"]
        attrs["tol"] = {**attrs["C"], "content": "123.0"}  # C's id, other content: skops uses C's node

    crafted = _edit_schema(data, alias)
    assert _skops_reader.read(crafted, "model.skops").tol == sio.loads(crafted).tol == 3.0


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12.0).reshape(3, 4),
        np.asfortranarray(np.arange(12).reshape(3, 4)),
        np.float32(2.5) * np.ones(()),
        np.zeros((0, 3)),
        np.array(["a", "bcd"]),
        np.arange(5, dtype=">i4"),
        np.zeros(3, dtype=[("a", "<i8"), ("b", "u1")]),
    ],
    ids=["2d", "fortran", "0d", "empty", "unicode", "big-endian", "structured"],
)
def test_npy_members_read_as_numpy_reads_them(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    got = _skops_reader.read_npy(memoryview(buffer.getvalue()))
    expected = np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False)
    assert got.dtype == expected.dtype and got.shape == expected.shape and got.flags.writeable
    np.testing.assert_array_equal(got, expected)


def test_npy_member_holding_objects_is_not_read_without_pickle():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(_skops_reader.Unhandled):
        _skops_reader.read_npy(memoryview(buffer.getvalue()))


def test_tree_padding_bytes_do_not_change_the_archive():
    """A tree's node records have 7 unused bytes each, left as they were in memory: two equal trees
    with other garbage there still give the same bytes."""
    model = DecisionTreeRegressor(max_depth=4, random_state=0).fit(XR, YR)
    other = copy.deepcopy(model)
    nodes = other.tree_.__getstate__()["nodes"]  # a view of the tree's own memory
    nodes.view(np.uint8).reshape(len(nodes), -1)[:, -7:] = 0xAB
    assert other.tree_.__getstate__()["nodes"].tobytes() != model.tree_.__getstate__()["nodes"].tobytes()
    assert _skops_writer.archive(other).to_bytes() == _skops_writer.archive(model).to_bytes()
    assert canonical_skops(sio.dumps(other)) == canonical_skops(sio.dumps(model))


def test_storing_and_loading_common_models_does_not_import_skops_io(tmp_path):
    """skops.io costs 0.2 to 2 s to import: a process that only stores and loads linear models,
    pipelines and forests never imports it."""
    imported = run_python_json(
        """
        import json, sys
        from sklearn.datasets import make_classification
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from modelstore_core import ModelStore

        X, Y = make_classification(n_samples=60, n_features=4, random_state=0)
        store = ModelStore(sys.argv[1], cache_dir=sys.argv[2])
        for name, model in {"lr": LogisticRegression(), "pipe": make_pipeline(StandardScaler(), LogisticRegression()),
                            "rf": RandomForestClassifier(n_estimators=3, random_state=0)}.items():
            store.upload(name, model=model.fit(X, Y))
            assert (store.load(name).predict(X) == model.predict(X)).all()
        print(json.dumps(sorted(m for m in ("skops.io", "sklearn.cluster") if m in sys.modules)))
        """,
        tmp_path,
        args=[tmp_path / "store", tmp_path / "cache"],
    )
    assert imported == []


def _with_member(data: bytes, edit, compression: int) -> bytes:
    """``data`` (a LogisticRegression archive) with its ``coef_`` member replaced by ``edit(member)``."""
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        members = {name: src.read(name) for name in src.namelist()}
    coef = json.loads(members["schema.json"])["content"]["content"]["coef_"]["file"]
    members[coef] = edit(members[coef])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as dst:
        for name, member in members.items():
            dst.writestr(name, member)
    return out.getvalue()


def _npy(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


READERS = {"plugin": zipfile.ZIP_STORED, "skops": zipfile.ZIP_DEFLATED}  # a compressed member: the plugin's reader leaves it to skops


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize(
    ("case", "edit", "problem"),
    [
        ("cut-short", lambda member: member[:-8], "EOF: reading array data"),
        ("pickled-objects", lambda member: _npy(np.array([[{"a": 1}] * 5], dtype=object), allow_pickle=True), "allow_pickle=False"),
    ],
)
def test_an_array_member_numpy_refuses_is_a_corrupt_artifact(reader, case, edit, problem):
    """A ``.npy`` member cut short, or holding pickled objects: the plugin's reader does not build
    it, skops's numpy refuses it, and the caller gets CorruptArtifactError naming the file (not
    numpy's ValueError), nothing unpickled."""
    from modelstore_sklearn._persist import load_skops

    from modelstore_core import CorruptArtifactError

    crafted = _with_member(_skops_writer.archive(LogisticRegression().fit(X, Y)).to_bytes(), edit, READERS[reader])
    assert _skops_reader.read(crafted, "model.skops") is _skops_reader.NOT_HANDLED
    with pytest.raises(CorruptArtifactError, match=problem) as err:
        load_skops("model.skops", crafted, {})
    assert err.value.file == "model.skops"


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize(
    ("case", "edit"),
    [("float32", lambda member: _npy(np.zeros((1, 5), np.float32))), ("narrower", lambda member: _npy(np.zeros((1, 3))))],
)
def test_a_linear_model_array_of_another_dtype_or_shape_is_built_as_skops_builds_it(reader, case, edit):
    """A linear model's arrays are only read by numpy, which checks shapes itself: the plugin's
    reader builds the same model skops builds (no compiled code indexes them unchecked), and a
    coefficient vector narrower than the input is refused by numpy on predict, not read past."""
    from modelstore_sklearn._persist import load_skops

    crafted = _with_member(_skops_writer.archive(LogisticRegression().fit(X, Y)).to_bytes(), edit, READERS[reader])
    loaded = load_skops("model.skops", crafted, {})
    by_skops = sio.loads(crafted, trusted=sio.get_untrusted_types(data=crafted))
    assert loaded.coef_.dtype == by_skops.coef_.dtype and loaded.coef_.shape == by_skops.coef_.shape
    if case == "float32":
        np.testing.assert_array_equal(loaded.predict(X), by_skops.predict(X))
    else:
        with pytest.raises(ValueError, match="mismatch"):
            loaded.predict(X)
